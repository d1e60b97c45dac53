"""The page's item data, built by a second process while the first builds the rest.

The item records of a page (every prompt, reply and verdict of a run, encoded for its
script) are the largest part of writing a report: about half of it for a 4,352-item run.
They need nothing but the store and the run's scores, so `skillmix run` starts this worker
when its run starts: the worker imports what it needs while the run waits for answers,
then follows the run: every `FOLLOW_INTERVAL_S` it reads the texts of the calls the run has
stored since (a stored call never changes), the largest read of the page's data, and on
SQLite the run's items, generations and grades stored since (`store.follow`). When the
run is over, the command asks it for the run's item data and builds the rest of the report
meanwhile, on the other core; the page then takes the worker's data (`write_report(...,
item_source=worker)`).

The worker scores the run again (it shares no memory with the command), from the rows it
followed, checked against the store, or read whole on a connection of its own. It writes
nothing: a worker that fails or is killed costs only time, because the page then builds
the data itself (and `failure` says why).

A worker pays for itself on large runs only (its imports and its second scoring are work
too, and a model running in this process wants the cores), so `page_worker` starts one
for runs of at least `WORKER_RECORDS` item records; `SKILLMIX_PAGE_WORKER=on` or `off`
starts one always or never.

The worker (`python -m skillmix.cli._page_worker`) reads JSON lines on its stdin: at most
one `follow` request (which run to follow, in which store), then the request for the data,
and writes its answer, pickled, on its stdout: the item data's parts (the encoded records
as bytes) and how many call texts it had followed.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import pickle
import select
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import skillmix
from skillmix.errors import InputError, SkillmixError

# The skillmix a process runs: a worker built by another copy could encode its data otherwise.
_PACKAGE = str(Path(skillmix.__file__).resolve().parent)

if TYPE_CHECKING:  # the report's modules: imported by the worker, not at the command's start
    from skillmix.report.html.view.items import ItemData
    from skillmix.scoring.results import RunRows
    from skillmix.store import Store


# Item records (items x generation rounds) from which a run starts a worker: about a tenth
# of a second of the report's work on the machines measured (bench/README.md).
WORKER_RECORDS = 1000

# How often a worker following a run reads what it stored since (seconds): on SQLite a
# read with nothing new takes about 3 ms (the run's ledger, items, generations and grades
# after the last row read of each); on PostgreSQL it lists the run's call keys again
# (about 20 ms for 13,000) and reads the rows when asked.
FOLLOW_INTERVAL_S = 0.5


@contextlib.contextmanager
def page_worker(records: int) -> Iterator[ItemsWorker | None]:
    """A worker for the page of a run of `records` item records, or None where one does not
    pay (see the module); stopped on leaving the block if its data were not taken."""
    setting = os.environ.get("SKILLMIX_PAGE_WORKER", "auto").strip().lower()
    if setting not in ("auto", "on", "off"):
        raise InputError(f"SKILLMIX_PAGE_WORKER is {setting!r}: set it to on, off or auto")
    if setting == "off" or (setting == "auto" and records < WORKER_RECORDS):
        yield None
        return
    with ItemsWorker() as worker:
        yield worker


class ItemsWorker:
    """A worker process for the item data of one run's page (see the module).

    Use it as a context manager: leaving the block stops a worker whose data were not
    taken, so an error or Ctrl-C leaves no process behind.
    """

    def __init__(self) -> None:
        self.failure: str | None = None  # why the worker gave no data, when it did not
        # How many call texts it had read while following the run, when it answered.
        self.followed: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None  # takes the answer as it comes (`ask`)
        self._out = b""
        # What it says if it fails (a traceback); closed with the worker (`_end`).
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errors,
            )
        except OSError as err:  # no process to be had: the page builds its data itself
            self._errors.close()
            self.failure = f"cannot start: {err}"

    def follow(self, store: Store, run_id: str) -> None:
        """Read the texts of `run_id`'s calls (a full id) while it runs, until `ask`."""
        self._send({"follow": {"store": store.address, "run_id": run_id}}, last=False)

    def ask(self, store: Store, run_id: str, aggregation: str, label: str) -> None:
        """Ask for the item data of `run_id` (a full id) as a page labels it `label`."""
        self._send(
            {
                "store": store.address,
                "run_id": run_id,
                "aggregation": aggregation,
                "label": label,
                "package": _PACKAGE,
            },
            last=True,
        )
        proc = self._proc
        if proc is not None and proc.stdout is not None and self._reader is None:
            # Take the answer as it comes: a worker whose answer waited for the command to
            # read it would stay blocked on its pipe (64 KB at a time) until the page wants
            # the data, and spend some 50 ms more on sending its 12 MB after that.
            self._reader = threading.Thread(
                target=self._take, args=(proc.stdout,), name="skillmix-page-answer", daemon=True
            )
            self._reader.start()

    def _take(self, answer: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):  # the worker was stopped meanwhile
            self._out = answer.read()

    def _send(self, request: dict[str, object], *, last: bool) -> None:
        if self._proc is None or self._proc.stdin is None or self._proc.stdin.closed:
            return
        try:
            self._proc.stdin.write(json.dumps(request).encode() + b"\n")
            if last:
                self._proc.stdin.close()
            else:
                self._proc.stdin.flush()
        except OSError as err:  # it has already died: `result` says so
            self.failure = f"the worker could not be asked: {err}"

    def result(self) -> ItemData | None:
        """The data asked for, once the worker has built them; None if it could not (then
        `failure` says why). Each worker answers once."""
        if self._proc is None:
            return None
        proc = self._proc
        assert proc.stdout is not None
        try:
            if self._reader is not None:
                self._reader.join()
                out, self._out = self._out, b""  # held here only, until decoded
            else:
                out = proc.stdout.read()
            if proc.wait() == 0:
                return self._answer(out)
            self._errors.seek(0)
            said = self._errors.read().decode(errors="replace").strip().splitlines()
            self.failure = self.failure or (
                f"exit status {proc.returncode}" + (f": {said[-1]}" if said else "")
            )
            return None
        finally:
            self._end()

    def _answer(self, out: bytes) -> ItemData | None:
        from skillmix.report.html.view.items import ItemData, ItemFilters

        try:
            answer = pickle.loads(out)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:  # truncated
            self.failure = f"unreadable answer: {exc}"
            return None
        match answer:
            case (tuple() as runs, bytes() as script, ItemFilters() as filters, int(followed)):
                self.followed = followed
                return ItemData(runs, script, filters)
        self.failure = f"unexpected answer: {type(answer).__name__}"
        return None

    def close(self) -> None:
        """Stop the worker if its data were not taken (it writes nothing, so at once)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            if self._reader is not None:  # it reads to the end of the killed worker's output
                self._reader.join()
            self.failure = self.failure or "stopped before it answered"
            self._end()

    def _end(self) -> None:
        assert self._proc is not None
        for pipe in (self._proc.stdin, self._proc.stdout, self._errors):
            if pipe is not None:
                pipe.close()
        self._proc = None

    def __enter__(self) -> ItemsWorker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def serve() -> None:
    """The worker: import what it needs (while the run goes on), follow the run if asked
    to, wait for the request, answer it on stdout, exit."""
    from skillmix.report.html.view.items import item_parts
    from skillmix.scoring.results import score_run
    from skillmix.store import Store

    lines = _Lines(sys.stdin.fileno())
    request = lines.next()
    following = None
    if request is not None and "follow" in request:
        following = _Following.start(request["follow"])
        request = following.until_asked(lines) if following is not None else lines.next()
    texts = following.texts if following is not None else {}
    followed_texts = len(texts)
    if request is None:  # the command ended without asking
        return
    if request["package"] != _PACKAGE:  # its sys.path found another copy of skillmix
        sys.exit(f"this worker runs {_PACKAGE}, the command {request['package']}")
    # A short-lived process: its objects go with it, so the cycle collector would only
    # walk them (about a tenth of its time on a large run).
    gc.disable()
    rows = following.finish(request) if following is not None else None
    store = Store(request["store"], read_only=True)
    try:
        scores = score_run(store, request["run_id"], request["aggregation"], rows)
        run_id = scores.run["id"]
        if following is None or not following.caught_up:
            texts.update(store.call_texts(run_id, have=texts))
        runs, script, filters = item_parts(store, [(run_id, request["label"], scores)], texts)
    finally:
        store.close()
    # The encoded records as the UTF-8 bytes they were made as: pickle copies them at
    # memory speed, where their text took 20-40 ms to encode again (and 10 to decode).
    write_answer((runs, script, filters, followed_texts), sys.stdout.fileno())
    os._exit(0)  # without freeing the records one by one


def write_answer(answer: object, fd: int) -> None:
    """`answer`, pickled, written whole to the file descriptor `fd`.

    Through a buffered writer of its own: under PYTHONUNBUFFERED (which many containers
    and CI images set) `sys.stdout.buffer` is the raw file, whose `write` may take only
    part of what it is given when the process is stopped and continued meanwhile (Ctrl-Z
    and `fg`, a debugger, a profiler), and pickle does not look at how much it took: the
    command would then get a cut answer (CPython gh-85393). A buffered writer writes the
    rest.
    """
    with open(fd, "wb", closefd=False) as out:
        pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)


class _Following:
    """What a worker reads of the run it follows while it waits to be asked: the texts of
    its calls, and its items, generations and grades (`store.follow.RunFollower`).

    Reading ahead only saves time: a read that fails ends it, and the request is served
    as if nothing had been read since (its own reads say what is wrong, if anything is).
    """

    def __init__(self, store: Store, run_id: str) -> None:
        from skillmix.store.follow import RunFollower

        self.store, self.run_id = store, run_id
        self.texts: dict[str, tuple[str, str]] = {}
        self.follower: RunFollower | None = RunFollower(store, run_id)
        self._row = 0  # the last row of the run's ledger read (SQLite)
        self.caught_up = False  # whether `texts` holds every call of the run (`finish`)

    @classmethod
    def start(cls, follow: dict[str, str]) -> _Following | None:
        """Follow the run `follow` names; None if its store cannot be opened."""
        from skillmix.store import Store

        try:
            return cls(Store(follow["store"], read_only=True), follow["run_id"])
        except _READ_ERRORS:  # reading ahead failed: wait for the request without it
            return None

    def until_asked(self, lines: _Lines) -> dict[str, Any] | None:
        """Read what is new until the next request comes (returned): first at once (a
        worker asked at once has read once all the same), then after every
        `FOLLOW_INTERVAL_S` without one."""
        while True:
            try:
                self._read()
            except _READ_ERRORS:  # reading ahead failed: it stops here
                self.follower = None
                return lines.next()
            if (request := lines.next(timeout=FOLLOW_INTERVAL_S)) is not _WAITING:
                return request

    def _read(self) -> None:
        after = self.store.call_texts_after(self.run_id, self._row)  # SQLite: new rows only
        if after is None:
            self.texts.update(self.store.call_texts(self.run_id, have=self.texts))
        else:
            new, self._row = after
            self.texts.update(new)
        if self.follower is not None:
            self.follower.read()

    def finish(self, request: dict[str, Any]) -> RunRows | None:
        """Read the run asked for to its end, if it is the run followed: its call texts
        (`caught_up` then says so) and its rows, checked (returned). None if it is another
        run, or if reading fails: then the rows are read whole, and the texts the worker
        lacks by their keys."""
        from skillmix.scoring.results import RunRows

        try:
            same = (request["store"], request["run_id"]) == (self.store.address, self.run_id)
            if not same or self.follower is None:
                return None
            self._read()
            # On SQLite the ledger's new rows are all there is to read: its rows are never
            # deleted, so none can come back with an old row number; were one missed, the
            # page reads that call by its key (`item_details`).
            self.caught_up = True
            return RunRows(*self.follower.tables()) if self.follower.can_follow else None
        except _READ_ERRORS:
            return None
        finally:
            with contextlib.suppress(*_READ_ERRORS):
                self.store.close()


# What a store that cannot be opened or read raises (PostgreSQL's lost connections come
# as `StoreError`); anything else is a fault of the worker's, and the page falls back.
_READ_ERRORS = (SkillmixError, sqlite3.Error, OSError)

_WAITING: dict[str, Any] = {}  # `_Lines.next`: no line came in time


class _Lines:
    """JSON lines from a file descriptor, each awaited for a time or for ever."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._ended = False

    def next(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next request; `_WAITING` if none came within `timeout` seconds; None at the
        end of the input (the command closed it, or ended)."""
        while b"\n" not in self._buffer and not self._ended:
            ready, _, _ = select.select([self._fd], [], [], timeout)
            if not ready:
                return _WAITING
            chunk = os.read(self._fd, 1 << 16)
            self._ended = not chunk
            self._buffer += chunk
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer[:] = rest
        return json.loads(line) if line.strip() else None


if __name__ == "__main__":
    serve()
