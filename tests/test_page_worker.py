"""The page's item data built by a worker process (`skillmix run` starts one beside its run):
the same data as the page builds itself, and a worker that fails, is killed or is not needed
costs nothing but time. Real processes, real stored runs (report_fixtures)."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import Markup

from report_fixtures import TwoRuns, two_student_runs, without_times
from skillmix.cli._page_worker import (
    _WAITING,
    WORKER_RECORDS,
    ItemsWorker,
    _Following,
    _Lines,
    page_worker,
)
from skillmix.errors import InputError
from skillmix.report.build import build_report
from skillmix.report.html import write_page
from skillmix.report.html.page import build_page
from skillmix.report.html.view.common import page_runs
from skillmix.report.html.view.items import ItemData, item_data, page_items
from skillmix.report.names import short_model
from skillmix.scoring.results import RunRows, score_run
from skillmix.store import Store


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoRuns]:
    with two_student_runs(tmp_path_factory.mktemp("worker")) as built:
        yield built


@pytest.fixture
def store(runs: TwoRuns) -> Iterator[Store]:
    opened = Store(runs.store_path)
    yield opened
    opened.close()


def _label(store: Store, run_id: str) -> str:
    return short_model(store.get_run(run_id)["config"]["student"])


def _here(store: Store, run_id: str) -> ItemData:
    """The item data as the page builds them in its own process."""
    return item_data(store, [(run_id, _label(store, run_id), score_run(store, run_id))])


def _page(store: Store, run_id: str, path: Path, worker: ItemsWorker | None = None) -> str:
    """The page, its times written as <time> (it says when it was made, to the minute)."""
    report = build_report(store, run_id)
    page = write_page(store, [report], path, worker).read_text(encoding="utf-8")
    return without_times(page)


def test_the_worker_builds_what_the_page_would(runs: TwoRuns, store: Store, tmp_path: Path):
    """The sloppy run's answers carry markup and scripts: the worker's encoding is the
    page's own, byte for byte, and the page it goes into is the same page."""
    run_id = runs.sloppy
    with ItemsWorker() as worker:
        worker.ask(store, run_id, "max", _label(store, run_id))
        built = worker.result()
    assert worker.failure is None
    assert built == _here(store, run_id)
    assert built.runs == ((run_id, _label(store, run_id)),)
    assert "<script>" not in built.encoded and "\\u003cscript\\u003e" in built.encoded
    assert isinstance(built.encoded, Markup)  # inlined as it is, not escaped again
    with ItemsWorker() as worker:
        worker.ask(store, run_id, "max", _label(store, run_id))
        with_worker = _page(store, run_id, tmp_path / "worker.html", worker)
    assert worker.failure is None
    assert with_worker == _page(store, run_id, tmp_path / "here.html")
    # The file holds the records' bytes as they came, in the text the page is made of.
    assert with_worker == without_times(build_page(store, [build_report(store, run_id)]))


def test_an_answer_of_another_shape_or_cut_short_is_not_used(runs: TwoRuns, store: Store):
    """The command takes only an answer of the shape it asked for, whole."""
    data = _here(store, runs.sloppy)
    whole = pickle.dumps((data.runs, data.script, data.filters, 3))
    worker = ItemsWorker.__new__(ItemsWorker)  # no process: the answer alone
    worker.failure, worker.followed = None, None
    assert worker._answer(whole) == data and worker.followed == 3
    assert worker._answer(whole[: len(whole) // 2]) is None
    assert worker.failure is not None and worker.failure.startswith("unreadable answer")
    worker.failure = None
    assert worker._answer(pickle.dumps((data, 3))) is None  # the shape of an older worker
    assert worker.failure == "unexpected answer: tuple"


def test_a_worker_that_follows_a_run_reads_its_texts_before_it_is_asked(
    runs: TwoRuns, store: Store, tmp_path: Path
):
    """Following a run, the worker reads the texts of its calls before it waits (so even
    when asked at once) and after each wait; asked for this run or another, its data are
    those the page would build."""
    for followed, asked in ((runs.sloppy, runs.sloppy), (runs.careful, runs.sloppy)):
        with ItemsWorker() as worker:
            worker.follow(store, followed)
            worker.ask(store, asked, "max", _label(store, asked))
            built = worker.result()
        assert worker.failure is None
        assert worker.followed == len(store.call_texts(followed)) > 0
        assert built == _here(store, asked)

    # Reading ahead only saves time: a worker that cannot read the run it follows (here
    # its store is not there) reads everything when asked, as one that never followed.
    with ItemsWorker() as worker:
        missing = {"store": str(tmp_path / "missing.sqlite"), "run_id": runs.sloppy}
        worker._send({"follow": missing}, last=False)
        worker.ask(store, runs.sloppy, "max", _label(store, runs.sloppy))
        built = worker.result()
    assert worker.failure is None and worker.followed == 0
    assert built == _here(store, runs.sloppy)


def test_a_worker_scores_the_run_it_followed_from_the_rows_it_read(runs: TwoRuns, store: Store):
    """Following a run, the worker reads its rows too: asked for that run, it scores it
    from them, rows equal to the store's own reads; asked for another, it reads that one."""
    for followed, asked in ((runs.sloppy, runs.sloppy), (runs.careful, runs.sloppy)):
        following = _Following.start({"store": store.address, "run_id": followed})
        assert following is not None
        read_end, write_end = os.pipe()
        request = {"store": store.address, "run_id": asked, "aggregation": "max"}
        os.write(write_end, json.dumps(request).encode() + b"\n")
        try:
            assert following.until_asked(_Lines(read_end)) == request
        finally:
            os.close(read_end)
            os.close(write_end)
        rows = following.finish(request)
        assert following.caught_up == (followed == asked)
        if followed != asked:
            assert rows is None
            continue
        assert following.texts == store.call_texts(asked)
        held = store.generations(asked)
        assert rows == RunRows(store.items(asked), held, store.grades(asked, held))
        assert rows is not None and rows.grades and rows.generations
        followed_scores = score_run(store, asked, "max", rows)
        assert followed_scores.items == score_run(store, asked).items
        assert followed_scores.rows is rows


def test_request_lines_are_read_whole_and_waited_for_in_time():
    read_end, write_end = os.pipe()
    lines = _Lines(read_end)
    try:
        assert lines.next(timeout=0) is _WAITING
        os.write(write_end, b'{"follow": 1}\n{"ask"')  # two requests, the second torn
        assert lines.next(timeout=0) == {"follow": 1}
        assert lines.next(timeout=0) is _WAITING
        os.write(write_end, b": 2}\n")
        assert lines.next() == {"ask": 2}
        os.close(write_end)
        assert lines.next() is None  # the command closed its end
    finally:
        os.close(read_end)


def test_a_worker_that_fails_says_why_and_the_page_builds_the_data(
    runs: TwoRuns, store: Store, tmp_path: Path
):
    with ItemsWorker() as worker:
        worker.ask(store, "run-not-there", "max", "x")
        assert worker.result() is None
    assert worker.failure is not None
    assert "exit status 1" in worker.failure and "no run 'run-not-there'" in worker.failure

    with ItemsWorker() as worker:  # a worker that found another copy of skillmix says no
        request = {"store": store.address, "run_id": runs.careful, "aggregation": "max"}
        worker._send({**request, "label": "x", "package": "/elsewhere/skillmix"}, last=True)
        assert worker.result() is None
    assert worker.failure is not None and "the command /elsewhere/skillmix" in worker.failure

    with ItemsWorker() as worker:  # asked for one run, the page is of another
        worker.ask(store, runs.careful, "max", "x")
        with_worker = _page(store, runs.sloppy, tmp_path / "worker.html", worker)
    assert with_worker == _page(store, runs.sloppy, tmp_path / "here.html")


def test_a_killed_worker_costs_only_time(runs: TwoRuns, store: Store, tmp_path: Path):
    with ItemsWorker() as worker:
        assert worker._proc is not None
        os.kill(worker._proc.pid, signal.SIGKILL)
        worker._proc.wait()
        worker.ask(store, runs.careful, "max", _label(store, runs.careful))
        with_worker = _page(store, runs.careful, tmp_path / "worker.html", worker)
    assert worker.failure is not None and (
        "exit status -9" in worker.failure or "could not be asked" in worker.failure
    )
    assert with_worker == _page(store, runs.careful, tmp_path / "here.html")


def test_an_answer_is_written_whole_when_the_worker_is_stopped_and_continued():
    """Under PYTHONUNBUFFERED (set by many containers and CI images) a process's stdout is
    the raw file, whose `write` takes only part of its bytes when the process is stopped
    (SIGSTOP, as Ctrl-Z, a debugger or a profiler do) and continued in the middle of it:
    pickled straight to it, the answer came out cut short every time here. The worker's
    writer finishes the write. A worker of 12 MB, stopped and continued every couple of
    milliseconds while the pipe is read; whatever the timing, the answer must be whole."""
    code = (
        "import sys\n"
        "from skillmix.cli._page_worker import write_answer\n"
        "write_answer(('runs', bytes(range(256)) * 47_000, 3), sys.stdout.fileno())\n"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
        done = threading.Event()
        poker = threading.Thread(target=_stop_and_continue, args=(proc.pid, done))
        poker.start()
        try:
            assert proc.stdout is not None
            out = proc.stdout.read()
        finally:
            done.set()
            poker.join()
            proc.stdout.close()
        assert proc.wait() == 0
        assert pickle.loads(out) == ("runs", bytes(range(256)) * 47_000, 3)


def _stop_and_continue(pid: int, done: threading.Event) -> None:
    """Stop process `pid` and continue it again, every 1.5 ms, until `done`."""
    while not done.is_set():
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.0005)
        os.kill(pid, signal.SIGCONT)  # always: it is never left stopped
        time.sleep(0.001)


def test_leaving_the_block_stops_a_worker_that_was_not_asked():
    with ItemsWorker() as worker:
        assert worker._proc is not None
        proc = worker._proc
    assert proc.returncode is not None  # stopped and reaped: no process is left behind
    assert worker.failure == "stopped before it answered"
    assert worker.result() is None


def test_data_of_other_runs_are_not_used(runs: TwoRuns, store: Store):
    """Item data built for one page (its runs and labels) are not taken by another."""
    report = build_report(store, runs.careful)
    [view] = page_runs([report])
    relabelled = item_data(store, [(runs.careful, "another label", report.scores)])

    class Source:
        def result(self) -> ItemData | None:
            return relabelled

    assert page_items(store, [view], Source()) == _here(store, runs.careful)
    assert page_items(store, [view], None) == _here(store, runs.careful)


def test_a_worker_is_started_for_large_runs_or_when_asked(monkeypatch: pytest.MonkeyPatch):
    """Its imports and second scoring pay off on large runs only (and a model running in
    the command wants the cores): `SKILLMIX_PAGE_WORKER` says on or off instead."""
    monkeypatch.delenv("SKILLMIX_PAGE_WORKER", raising=False)
    for records, started in ((6, False), (WORKER_RECORDS - 1, False), (WORKER_RECORDS, True)):
        with page_worker(records) as worker:
            assert (worker is not None) == started
    for setting, started in (("on", True), ("off", False), (" AUTO ", False)):
        monkeypatch.setenv("SKILLMIX_PAGE_WORKER", setting)
        with page_worker(6 if setting != "off" else 10 * WORKER_RECORDS) as worker:
            assert (worker is not None) == started
    monkeypatch.setenv("SKILLMIX_PAGE_WORKER", "sometimes")
    with pytest.raises(InputError, match="SKILLMIX_PAGE_WORKER is 'sometimes'"), page_worker(6):
        pass
