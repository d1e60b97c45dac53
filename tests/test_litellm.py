"""The LiteLLM provider against a real local OpenAI-compatible server (its `openai/` route)."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from typing import Any

import pytest

# LiteLLM downloads its model cost map from GitHub at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
pytest.importorskip(
    "litellm", reason="the litellm extra is not installed: pip install 'skillmix[litellm]'"
)

from scripted_server import Reply, ScriptedServer
from skillmix.models import (
    ChatRequest,
    ChatResponse,
    ModelError,
    UnknownModelError,
    resolve_model,
)
from skillmix.models.litellm_provider import LiteLLMModel

REQUEST = ChatRequest(({"role": "user", "content": "hi"},), temperature=0.0, max_tokens=8, seed=1)
SCHEMA = {
    "type": "object",
    "properties": {"x": {"enum": [0, 1]}},
    "required": ["x"],
    "additionalProperties": False,
}


def complete(model: LiteLLMModel, *requests: ChatRequest) -> list[ChatResponse]:
    """Answer the requests (by default REQUEST) in one event loop, then close the model."""

    async def go() -> list[ChatResponse]:
        try:
            return [await model.complete(r) for r in requests or (REQUEST,)]
        finally:
            await model.aclose()

    return asyncio.run(go())


def scripted(server: ScriptedServer, **kwargs: Any) -> LiteLLMModel:
    return LiteLLMModel("openai/scripted", base_url=server.base_url, api_key="x", **kwargs)


def test_answers_and_sends_settings_and_schema():
    def policy(body):
        return Reply('{"x": 1}' if "response_format" in body else "hello")

    with ScriptedServer(policy) as server:
        model = scripted(server)
        plain, structured = complete(
            model,
            REQUEST,
            ChatRequest(REQUEST.messages, max_tokens=16, seed=5, sample=2, json_schema=SCHEMA),
        )
    assert (plain.text, plain.prompt_tokens, plain.completion_tokens) == ("hello", 10, 5)
    assert plain.finish_reason == "stop" and not plain.structured
    assert structured.text == '{"x": 1}' and structured.structured
    first, second = server.requests
    assert first["model"] == "scripted" and first["messages"] == [{"role": "user", "content": "hi"}]
    assert (first["temperature"], first["max_tokens"], first["seed"]) == (0.0, 8, 1)
    assert "response_format" not in first
    assert second["seed"] == 5 + 7919 * 2
    assert second["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "verdict", "schema": SCHEMA, "strict": True},
    }
    assert model.identity == f"litellm:openai/scripted@{server.base_url}"


def test_server_errors_are_retryable_and_retried():
    with ScriptedServer(lambda body: Reply(status=500, raw='{"error": "boom"}')) as server:
        with pytest.raises(ModelError, match="HTTP 500") as info:
            complete(scripted(server, max_retries=0))
        assert info.value.retryable and len(server.requests) == 1

    script = iter(
        [
            Reply(status=500, raw='{"error": "boom"}'),
            Reply(status=429, raw='{"error": "slow down"}', headers={"Retry-After": "0"}),
            Reply(status=503, raw="down"),
        ]
    )
    answers = itertools.chain(script, itertools.repeat(Reply("hello")))
    with ScriptedServer(lambda body: next(answers)) as server:
        model = scripted(server, backoff_s=0.01)
        [response] = complete(model)
    assert response.text == "hello" and len(server.requests) == 4
    assert dict(model.retry_causes) == {"500": 1, "429": 1, "503": 1}


def test_unknown_model_and_bad_key_are_not_retried():
    with ScriptedServer() as server:
        with pytest.raises(UnknownModelError, match="unknown model 'openai/other'"):
            complete(LiteLLMModel("openai/other", base_url=server.base_url, api_key="x"))
        assert len(server.requests) == 1
    with (
        ScriptedServer(lambda body: Reply(status=401, raw='{"error": "no key"}')) as server,
        pytest.raises(ModelError, match="refused the credentials") as info,
    ):
        complete(scripted(server))
    assert not info.value.retryable and len(server.requests) == 1
    with pytest.raises(UnknownModelError, match="PROVIDER/MODEL"):
        complete(LiteLLMModel("no-such-provider-model", max_retries=0))


def test_provider_without_json_schema_falls_back_to_text():
    def policy(body):
        if "response_format" in body:
            return Reply(status=400, raw='{"error": {"message": "response_format unsupported"}}')
        return Reply('{"x": 1}')

    with ScriptedServer(policy) as server:
        model = scripted(server)
        [response] = complete(model, ChatRequest(REQUEST.messages, json_schema=SCHEMA))
    assert response.text == '{"x": 1}' and not response.structured
    assert not model.supports_structured


def test_connection_refused_is_actionable():
    model = LiteLLMModel("openai/m", base_url="http://127.0.0.1:9/v1", api_key="x", max_retries=0)
    with pytest.raises(ModelError, match=r"cannot connect to http://127\.0\.0\.1:9/v1") as info:
        complete(model)
    assert info.value.retryable


def test_resolve_model_builds_a_litellm_model():
    model = resolve_model("litellm:openai/scripted@http://127.0.0.1:1/v1")
    assert isinstance(model, LiteLLMModel)
    assert model.identity == "litellm:openai/scripted@http://127.0.0.1:1/v1"
    assert resolve_model("litellm:anthropic/claude-3-5-sonnet-20240620").identity == (
        "litellm:anthropic/claude-3-5-sonnet-20240620"
    )


def test_missing_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "litellm", None)
    with pytest.raises(ModelError, match=r"pip install 'skillmix\[litellm\]'"):
        complete(LiteLLMModel("openai/m"))
