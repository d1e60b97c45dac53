"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server, Ollama, ...).

Spec: `openai:MODEL` or `openai:MODEL@BASE_URL`. Base URL, key and headers come from the
model's settings (skillmix.toml), else SKILLMIX_OPENAI_BASE_URL / OPENAI_BASE_URL and
SKILLMIX_OPENAI_API_KEY / OPENAI_API_KEY (a key is optional for local servers).

The transport is `models.http.HttpClient`, a small keep-alive HTTP/1.1 client: against a
local server answering in 200 ms, httpx-based clients top out near 50-80 requests/s on 2
cores whatever the concurrency, and aiohttp keeps up but spends several times the CPU per
request of a client that only posts JSON (bench/throughput.py measures all three).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import orjson

from skillmix.models.base import ChatRequest, ChatResponse, ModelError, UnknownModelError
from skillmix.models.http import ConnectError, HttpClient, HttpError
from skillmix.models.retry import RETRY_STATUSES, Retryable, RetryingClient, SchemaRejected
from skillmix.models.settings import ModelSettings

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAICompatModel(RetryingClient):
    provider = "openai"

    def __init__(
        self,
        name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        settings: ModelSettings | None = None,
        max_concurrency: int | None = None,
        timeout_s: float | None = None,
        max_retries: int | None = None,
        backoff_s: float | None = None,
    ):
        if not name:
            raise UnknownModelError("openai provider needs a model name: openai:MODEL")
        s = settings or ModelSettings()
        self.name = name
        self.base_url = (
            base_url
            or s.base_url
            or os.environ.get("SKILLMIX_OPENAI_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL")
            or DEFAULT_BASE_URL
        ).rstrip("/")
        self.api_key = (
            api_key
            or s.api_key()
            or os.environ.get("SKILLMIX_OPENAI_API_KEY")
            or os.environ.get("OPENAI_API_KEY")
            or ""
        )
        self.headers = dict(s.headers)
        self.timeout_s = timeout_s or s.timeout_s
        super().__init__(
            max_concurrency=max_concurrency or s.max_concurrency,
            max_retries=s.max_retries if max_retries is None else max_retries,
            backoff_s=s.backoff_s if backoff_s is None else backoff_s,
        )
        # Structured-output dialects to try, best first; a server that rejects one moves on to
        # the next (llama.cpp's server takes json_object + schema, not json_schema).
        self.structured_modes = ["json_schema", "json_object"]
        self._http: HttpClient | None = None
        self._headers: dict[str, str] | None = None

    @property
    def identity(self) -> str:
        return f"{self.spec}@{self.base_url}"

    def _client(self) -> HttpClient:
        if self._http is None:
            try:
                self._http = HttpClient(self.base_url)
            except ValueError as err:
                raise ModelError(
                    f"{self.spec}: the base URL {self.base_url!r} is not an http(s) URL; "
                    "set base_url in skillmix.toml or OPENAI_BASE_URL"
                ) from err
        return self._http

    def _body(self, request: ChatRequest, mode: str) -> dict[str, Any]:
        """The request body as sent (see `_payload` for its bytes)."""
        return {"messages": request.wire_messages(), **self._options(request, mode)}

    def _payload(self, request: ChatRequest, mode: str) -> bytes:
        """`_body` as JSON bytes, reusing the messages' JSON that the cache key already made
        (the messages are most of the body; encoding them again cost more CPU per request
        than anything else in the client)."""
        options = orjson.dumps(self._options(request, mode))
        try:
            return b'{"messages":' + request.messages_json.encode() + b"," + options[1:]
        except UnicodeEncodeError:  # a lone surrogate: let json escape it
            return json.dumps(self._body(request, mode)).encode()

    def _options(self, request: ChatRequest, mode: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.name, "max_tokens": request.max_tokens}
        if request.temperature is not None:  # else the server's default, as published
            body["temperature"] = request.temperature
        if request.seed is not None:
            body["seed"] = (request.seed + 7919 * request.sample) % (2**31 - 1)
        if mode == "json_schema" and request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": request.json_schema, "strict": True},
            }
        elif mode == "json_object" and request.json_schema is not None:
            body["response_format"] = {"type": "json_object", "schema": request.json_schema}
        return body

    def _request_headers(self) -> dict[str, str]:
        if self._headers is None:  # built once: settings do not change during a run
            headers = {"Content-Type": "application/json", **self.headers}
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            self._headers = headers
        return self._headers

    async def _attempt(self, request: ChatRequest, mode: str) -> ChatResponse:
        url = f"{self.base_url}/chat/completions"
        try:
            resp = await self._client().post(
                "/chat/completions",
                self._payload(request, mode),
                self._request_headers(),
                self.timeout_s,
            )
        except TimeoutError as err:
            raise Retryable(
                f"{self.spec}: no answer within {self.timeout_s:g}s", "timeout"
            ) from err
        except ConnectError as err:
            raise Retryable(
                f"{self.spec}: cannot connect to {self.base_url} ({err.os_error}); "
                "is the server running and the base URL right?",
                "connect",
            ) from err
        except HttpError as err:
            raise Retryable(
                f"{self.spec}: the connection to {self.base_url} broke without an answer "
                f"({type(err).__name__}: {err})",
                "connection",
            ) from err
        raw = resp.text()
        if resp.status != 200:
            if mode and resp.status in (400, 422, 500) and "response_format" in raw:
                raise SchemaRejected()
            raise self._http_error(resp.status, raw, resp.headers.get("retry-after"))
        try:
            data = _loads(resp.body, raw)
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as err:
            raise Retryable(
                f"{self.spec}: malformed response from {url}: {raw[:200]!r}", "malformed"
            ) from err
        usage = data.get("usage") or {}
        return ChatResponse(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            structured=mode,
            finish_reason=str(choice.get("finish_reason") or ""),
        )

    def _http_error(self, status: int, raw: str, retry_after: str | None) -> Exception:
        detail = raw[:300].strip()
        if status in (401, 403):
            return ModelError(
                f"{self.spec}: HTTP {status} from {self.base_url}: check the API key "
                f"(OPENAI_API_KEY, SKILLMIX_OPENAI_API_KEY or api_key_env in skillmix.toml). "
                f"Server said: {detail}"
            )
        if status == 404:
            return UnknownModelError(
                f"{self.spec}: HTTP 404 from {self.base_url}: unknown model '{self.name}' or "
                f"wrong base URL. Server said: {detail}"
            )
        if status in RETRY_STATUSES:
            delay = None
            if retry_after:
                with contextlib.suppress(ValueError):
                    delay = max(0.0, float(retry_after))
            return Retryable(
                f"{self.spec}: HTTP {status} from {self.base_url}: {detail}", str(status), delay
            )
        return ModelError(f"{self.spec}: HTTP {status} from {self.base_url}: {detail}")

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _loads(body: bytes, text: str) -> Any:
    """A response's JSON: orjson for the bytes (several times faster on every answer), the
    standard module for what orjson refuses (lone surrogates, NaN, invalid UTF-8, which
    `text` holds replaced), so both read the same answers."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(text)
