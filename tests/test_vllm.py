"""vLLM in-process batch inference.

The real thing runs only where vLLM imports, a CUDA GPU is visible and
SKILLMIX_VLLM_TEST_MODEL names a small local chat model (e.g. a download of
HuggingFaceTB/SmolLM2-135M-Instruct). Everywhere else: the error without vLLM, lazy imports,
and the batcher driven through a stand-in for the three pieces of vLLM's API it uses
(`LLM.chat`, `SamplingParams`, `StructuredOutputsParams` / `GuidedDecodingParams`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import types
from typing import Any

import pytest

from skillmix.models import ChatRequest, ChatResponse, ModelError, resolve_model
from skillmix.models.vllm_batch import VLLMBatchModel

VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"enum": [0, 1]},
        "confidence": {"type": "integer", "minimum": 0, "maximum": 9},
    },
    "required": ["verdict", "confidence"],
    "additionalProperties": False,
}


def ask(text: str, **settings: Any) -> ChatRequest:
    return ChatRequest(({"role": "user", "content": text},), **settings)


def answer_all(model: VLLMBatchModel, requests: list[ChatRequest]) -> list[Any]:
    """Send every request at once; each result is a ChatResponse or the ModelError raised."""

    async def go() -> list[Any]:
        try:
            return await asyncio.gather(
                *(model.complete(r) for r in requests), return_exceptions=True
            )
        finally:
            await model.aclose()

    return asyncio.run(go())


# -- the real engine -------------------------------------------------------------------


def _why_no_gpu_vllm() -> str | None:
    if importlib.util.find_spec("vllm") is None:
        return "vLLM needs an NVIDIA GPU: vllm is not installed (pip install 'skillmix[vllm]')"
    import torch

    if not torch.cuda.is_available():
        return "vLLM needs an NVIDIA GPU: torch.cuda.is_available() is False here"
    return None


def test_real_vllm_batches_and_follows_the_schema():
    reason = _why_no_gpu_vllm()
    if reason:
        pytest.skip(reason)
    path = os.environ.get("SKILLMIX_VLLM_TEST_MODEL")
    if not path:
        pytest.skip("set SKILLMIX_VLLM_TEST_MODEL to a small local chat model to run this test")
    model = VLLMBatchModel(path, gpu_memory_utilization=0.3, max_model_len=2048)
    requests = []
    for i in range(64):
        if i % 2:
            prompt = f"Is {i} an even number? Answer in JSON with a verdict (1 yes, 0 no)."
            requests.append(ask(prompt, max_tokens=128, seed=i, json_schema=VERDICT_SCHEMA))
        else:
            requests.append(ask(f"Write one sentence about the number {i}.", max_tokens=48, seed=i))
    responses = answer_all(model, requests)
    for request, response in zip(requests, responses, strict=True):
        assert isinstance(response, ChatResponse), response
        assert response.text.strip()
        assert response.prompt_tokens > 0
        assert 0 < response.completion_tokens <= request.max_tokens
        assert response.structured == (request.json_schema is not None)
        if request.json_schema is not None:
            data = json.loads(response.text)
            assert set(data) == {"verdict", "confidence"}
            assert data["verdict"] in (0, 1) and 0 <= data["confidence"] <= 9
    assert sum(model.batch_sizes) == 64
    assert max(model.batch_sizes) >= 32  # sent together, answered together


# -- everywhere ------------------------------------------------------------------------


def test_without_vllm_complete_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` now fails
    model = VLLMBatchModel("some/model")
    [first, second] = answer_all(model, [ask("hi"), ask("hello")])
    for err in (first, second):
        assert isinstance(err, ModelError)
        assert "pip install 'skillmix[vllm]' on a machine with an NVIDIA GPU" in str(err)
    [again] = answer_all(model, [ask("again")])
    assert str(again) == str(first)  # later calls fail with the same advice


def test_optional_providers_import_lazily():
    code = (
        "import sys, skillmix, skillmix.cli, skillmix.models.vllm_batch, "
        "skillmix.models.litellm_provider; "
        "print(sorted(m for m in ('vllm', 'litellm', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    model = resolve_model("vllm:HuggingFaceTB/SmolLM2-135M-Instruct")
    assert isinstance(model, VLLMBatchModel)
    assert model.identity == "vllm:HuggingFaceTB/SmolLM2-135M-Instruct"


class FakeLLM:
    """Answers like `vllm.LLM.chat`: each output echoes its prompt and sampling settings."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def chat(self, conversations: list[Any], sampling_params: list[Any], use_tqdm: bool) -> Any:
        self.calls.append(len(conversations))
        if any(c[-1]["content"] == "too long" for c in conversations):
            raise ValueError("The decoder prompt is longer than the maximum model length")
        outputs = []
        for conversation, params in zip(conversations, sampling_params, strict=True):
            text = json.dumps({"prompt": conversation[-1]["content"], **params.settings})
            completion = types.SimpleNamespace(text=text, token_ids=[0] * 3, finish_reason="stop")
            outputs.append(types.SimpleNamespace(prompt_token_ids=[0] * 7, outputs=[completion]))
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch):
    """Make `import vllm` give the stand-in API (newest structured-output names)."""

    class SamplingParams:
        def __init__(self, **kwargs: Any) -> None:
            self.settings = {
                k: (v.__class__.__name__ if k in ("structured_outputs", "guided_decoding") else v)
                for k, v in kwargs.items()
            }

    class StructuredOutputsParams:
        def __init__(self, json: dict[str, Any]) -> None:
            self.json = json

    vllm = types.ModuleType("vllm")
    vllm.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    sampling_params = types.ModuleType("vllm.sampling_params")
    sampling_params.StructuredOutputsParams = StructuredOutputsParams  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sampling_params)
    return sampling_params


def test_batcher_groups_requests_and_maps_answers_back(fake_vllm):
    llm = FakeLLM()
    model = VLLMBatchModel("fake", llm=llm, max_batch_size=128)
    requests = [
        ask(f"q{i}", seed=10, sample=i % 3, json_schema=VERDICT_SCHEMA if i % 2 else None)
        for i in range(300)
    ]
    responses = answer_all(model, requests)
    assert model.batch_sizes == llm.calls == [128, 128, 44]
    for i, (request, response) in enumerate(zip(requests, responses, strict=True)):
        sent = json.loads(response.text)
        assert sent["prompt"] == f"q{i}"
        assert sent["seed"] == (10 + 7919 * request.sample) % (2**31 - 1)
        assert (sent["temperature"], sent["max_tokens"]) == (0.7, 512)
        assert sent.get("structured_outputs") == ("StructuredOutputsParams" if i % 2 else None)
        assert response.structured == bool(i % 2)
        assert (response.prompt_tokens, response.completion_tokens) == (7, 3)
        assert response.finish_reason == "stop"


def test_batcher_flushes_when_requests_stop_coming(fake_vllm):
    model = VLLMBatchModel("fake", llm=FakeLLM(), batch_wait_s=0.02)

    async def trickle() -> None:
        first = [asyncio.ensure_future(model.complete(ask(f"a{i}"))) for i in range(5)]
        await asyncio.sleep(0.2)  # the first five are answered alone
        second = [asyncio.ensure_future(model.complete(ask(f"b{i}"))) for i in range(3)]
        await asyncio.gather(*first, *second)
        await model.aclose()

    asyncio.run(trickle())
    assert model.batch_sizes == [5, 3]


def test_one_bad_request_fails_alone(fake_vllm):
    llm = FakeLLM()
    model = VLLMBatchModel("fake", llm=llm)
    requests = [ask(f"q{i}") for i in range(15)] + [ask("too long")]
    *good, bad = answer_all(model, requests)
    assert all(isinstance(r, ChatResponse) for r in good)
    assert isinstance(bad, ModelError) and "longer than the maximum model length" in str(bad)
    assert len(llm.calls) <= 2 * 5  # halving finds it in a handful of calls


def test_older_vllm_uses_guided_decoding(fake_vllm, monkeypatch):
    class GuidedDecodingParams:
        def __init__(self, json: dict[str, Any]) -> None:
            self.json = json

    del fake_vllm.StructuredOutputsParams
    fake_vllm.GuidedDecodingParams = GuidedDecodingParams
    model = VLLMBatchModel("fake", llm=FakeLLM())
    [response] = answer_all(model, [ask("q", json_schema=VERDICT_SCHEMA)])
    assert json.loads(response.text)["guided_decoding"] == "GuidedDecodingParams"
