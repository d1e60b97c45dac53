"""The OpenAI-compatible provider against a real local server that misbehaves on purpose."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from scripted_server import Reply, ScriptedServer
from skillmix.models import ChatRequest, ModelError, UnknownModelError
from skillmix.models.openai_compat import OpenAICompatModel

REQUEST = ChatRequest(({"role": "user", "content": "hi"},), 0.0, 8, 1)


def complete(model: OpenAICompatModel, request: ChatRequest = REQUEST):
    async def go():
        try:
            return await model.complete(request)
        finally:
            await model.aclose()

    return asyncio.run(go())


def test_retries_500_429_hang_and_garbage_then_answers():
    script = iter(
        [
            Reply(status=500, raw='{"error": "boom"}'),
            Reply(status=429, raw='{"error": "slow down"}', headers={"Retry-After": "0"}),
            Reply("late", delay_s=1.0),  # longer than the timeout
            Reply(status=200, raw="not json"),
        ]
    )
    answers = itertools.chain(script, itertools.repeat(Reply("hello")))
    with ScriptedServer(lambda body: next(answers)) as server:
        model = OpenAICompatModel(
            "scripted", base_url=server.base_url, timeout_s=0.3, backoff_s=0.01
        )
        response = complete(model)
    assert response.text == "hello"
    assert model.retries == 4


def test_gives_up_with_a_clear_error_after_max_retries():
    with ScriptedServer(lambda body: Reply(status=503, raw="down")) as server:
        model = OpenAICompatModel(
            "scripted", base_url=server.base_url, max_retries=2, backoff_s=0.01
        )
        with pytest.raises(ModelError, match="HTTP 503") as info:
            complete(model)
    assert info.value.retryable and len(server.requests) == 3


def test_unknown_model_and_auth_errors_are_not_retried():
    with ScriptedServer() as server:
        with pytest.raises(UnknownModelError, match="unknown model 'other'"):
            complete(OpenAICompatModel("other", base_url=server.base_url))
        assert len(server.requests) == 1
    with (
        ScriptedServer(lambda body: Reply(status=401, raw="no key")) as server,
        pytest.raises(ModelError, match="check the API key"),
    ):
        complete(OpenAICompatModel("scripted", base_url=server.base_url))


def test_server_without_json_schema_falls_back_to_text():
    def policy(body):
        if "response_format" in body:
            return Reply(status=400, raw='{"error": "response_format is not supported"}')
        return Reply('{"x": 1}')

    schema = {"type": "object", "properties": {"x": {"enum": [0, 1]}}}
    with ScriptedServer(policy) as server:
        model = OpenAICompatModel("scripted", base_url=server.base_url)
        response = complete(model, ChatRequest(REQUEST.messages, json_schema=schema))
    assert response.text == '{"x": 1}' and not response.structured
    assert not model.supports_structured


def test_connection_refused_is_actionable():
    model = OpenAICompatModel("m", base_url="http://127.0.0.1:9/v1", max_retries=0)
    with pytest.raises(ModelError, match=r"cannot connect to http://127\.0\.0\.1:9/v1"):
        complete(model)
