"""Two runs share a store and send the same request: the first answer stored counts.

Runs sharing a store share its cache, so two of them can ask the same request at once.
Both pay for an answer, but only the first one stored is kept, and the run whose answer
lost must use the stored one too: its item is graded on the text the store holds, and its
usage counts the stored call. The two writers here are two `Store`s on one database (two
connections, as two processes hold), on SQLite and PostgreSQL; the server holds the first
request's answer until the second writer has stored its own, so the order is forced, not
timed.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable

import pytest

from scripted_server import Reply, ScriptedServer
from skillmix.catalog.load import load_catalog
from skillmix.models import resolve_model
from skillmix.models.base import ChatRequest
from skillmix.runtime.calls import CallCache
from skillmix.store import Store

REQUEST = ChatRequest(messages=({"role": "user", "content": "Write one sentence."},), seed=7)
FIRST = ("sent first", 11, 3)  # the answer's text, prompt and completion tokens
SECOND = ("sent second", 20, 9)


class FirstWaitsForSecond:
    """Answers the first request only once `go` is set (with FIRST), later ones at once
    (with SECOND)."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.go = threading.Event()
        self._count = 0
        self._lock = threading.Lock()

    def __call__(self, body: dict) -> Reply:
        with self._lock:
            self._count += 1
            first = self._count == 1
        if first:
            self.arrived.set()
            self.go.wait(60)
        text, prompt, completion = FIRST if first else SECOND
        choice = {"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        usage = {"prompt_tokens": prompt, "completion_tokens": completion}
        return Reply(raw=json.dumps({"choices": [choice], "usage": usage}))


def run_on(location: str, run_id: str) -> tuple[Store, CallCache]:
    """A store that made run `run_id` and keeps its rows (as `skillmix run` does)."""
    store = Store(location)
    catalog = load_catalog()
    store.put_catalog(catalog)
    store.keep_rows(run_id)
    store.ensure_run(run_id, {}, catalog.content_hash, "v1")
    return store, CallCache(store, run_id=run_id)


@pytest.mark.parametrize("grouped", [True, False], ids=["group-commit", "written-at-once"])
def test_the_run_whose_answer_lost_uses_the_stored_one(
    store_at: Callable[[str], str], grouped: bool
):
    policy = FirstWaitsForSecond()
    location = store_at("shared")
    with ScriptedServer(policy) as server:
        model = resolve_model(server.spec())
        first, first_calls = run_on(location, "first")
        second, second_calls = run_on(location, "second")

        async def first_run():
            if not grouped:  # outside a pool: each write is committed at once
                return await first_calls.call(model, "student", REQUEST)
            with first.group_commits():
                return await first_calls.call(model, "student", REQUEST)

        async def race():
            sent = asyncio.create_task(first_run())
            assert await asyncio.to_thread(policy.arrived.wait, 60)  # its answer is held
            with second.group_commits():
                stored = await second_calls.call(model, "student", REQUEST)
            policy.go.set()
            try:
                return stored, await sent
            finally:
                await model.aclose()

        stored, got = asyncio.run(race())

    assert len(server.requests) == 2  # both were sent (and paid for)
    assert stored.response == got.response == SECOND[0]
    assert (got.prompt_tokens, got.completion_tokens) == SECOND[1:]
    # What the first run paid for is its own answer's tokens ...
    assert first_calls.stats.sent == 1
    assert first_calls.stats.role("student").prompt_tokens == FIRST[1]
    # ... while its usage, as kept for its report and as read back, counts the stored call.
    reader = Store(location, read_only=True)
    kept = reader.get_call(got.key)
    assert kept is not None and kept.response == SECOND[0]
    usage = reader.usage("first")
    assert [(u["calls"], u["prompt_tokens"], u["completion_tokens"]) for u in usage] == [
        (1, SECOND[1], SECOND[2])
    ]
    assert first.usage("first") == usage
    for store in (first, second, reader):
        store.close()


def test_a_lone_writer_looks_for_earlier_answers_only_after_another_connection_wrote(
    tmp_path,
):
    """The look for answers stored first costs a query per commit only when SQLite's
    data_version says another connection committed since the last one; a writer alone
    commits its answers without it."""
    location = str(tmp_path / "s.sqlite")
    policy = FirstWaitsForSecond()
    policy.go.set()
    with ScriptedServer(policy) as server:
        model = resolve_model(server.spec())
        store, calls = run_on(location, "alone")
        looked: list[str] = []
        execute = store.db.execute

        def counting(sql: str, params=()):
            if sql.startswith("SELECT * FROM calls WHERE key IN"):
                looked.append(sql)
            return execute(sql, params)

        store.db.execute = counting  # type: ignore[method-assign]

        async def ask(*seeds: int) -> None:
            with store.group_commits():
                for seed in seeds:
                    await calls.call(model, "student", ChatRequest(REQUEST.messages, seed=seed))

        async def session() -> list[int]:
            counts = []
            await ask(1)  # the first commit cannot know what came before it
            counts.append(len(looked))
            await ask(2, 3)
            counts.append(len(looked))
            other.set_run_status("alone", "running")  # another connection commits
            await ask(4)
            counts.append(len(looked))
            await model.aclose()
            return counts

        other = Store(location)
        first, alone, after_other = asyncio.run(session())
        assert first == 1
        assert alone == first
        assert after_other == first + 1
        other.close()
        store.close()
