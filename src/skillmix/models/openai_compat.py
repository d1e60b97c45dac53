"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server, Ollama, ...) over aiohttp.

Spec: `openai:MODEL` or `openai:MODEL@BASE_URL`. The base URL otherwise comes from
SKILLMIX_OPENAI_BASE_URL or OPENAI_BASE_URL, the key from SKILLMIX_OPENAI_API_KEY or
OPENAI_API_KEY (optional for local servers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
from typing import Any

import aiohttp

from skillmix.models.base import ChatRequest, ChatResponse, ModelError, UnknownModelError

DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUSES = {408, 409, 429, 500, 502, 503, 504}


class OpenAICompatModel:
    provider = "openai"

    def __init__(
        self,
        name: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_concurrency: int = 16,
        timeout_s: float = 120.0,
        max_retries: int = 6,
        backoff_s: float = 1.0,
    ):
        if not name:
            raise UnknownModelError("openai provider needs a model name: openai:MODEL")
        self.name = name
        self.base_url = (
            base_url
            or os.environ.get("SKILLMIX_OPENAI_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL")
            or DEFAULT_BASE_URL
        ).rstrip("/")
        self.api_key = (
            api_key
            or os.environ.get("SKILLMIX_OPENAI_API_KEY")
            or os.environ.get("OPENAI_API_KEY")
            or ""
        )
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.supports_structured = True  # turned off if the server rejects json_schema
        self.retries = 0
        self._session: aiohttp.ClientSession | None = None

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def identity(self) -> str:
        return f"{self.spec}@{self.base_url}"

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    def _body(self, request: ChatRequest, structured: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.name,
            "messages": list(request.messages),
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.seed is not None:
            body["seed"] = (request.seed + 7919 * request.sample) % (2**31 - 1)
        if structured and request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": request.json_schema, "strict": True},
            }
        return body

    async def complete(self, request: ChatRequest) -> ChatResponse:
        structured = self.supports_structured and request.json_schema is not None
        attempt = 0
        while True:
            try:
                return await self._post(request, structured)
            except _SchemaRejected:
                self.supports_structured = False
                structured = False
            except ModelError as err:
                if not err.retryable or attempt >= self.max_retries:
                    raise
                delay = getattr(err, "retry_after", None)
                if delay is None:
                    delay = self.backoff_s * (2**attempt) * (0.5 + random.random())
                attempt += 1
                self.retries += 1
                await asyncio.sleep(min(delay, 60.0))

    async def _post(self, request: ChatRequest, structured: bool) -> ChatResponse:
        url = f"{self.base_url}/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = self._body(request, structured)
        session = self._session_for_loop()
        try:
            async with session.post(
                url,
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as resp:
                raw = await resp.text()
                if resp.status != 200:
                    raise self._http_error(resp.status, raw, resp.headers.get("Retry-After"))
        except TimeoutError as err:
            raise ModelError(
                f"{self.spec}: no answer within {self.timeout_s:.0f}s", retryable=True
            ) from err
        except aiohttp.ClientConnectorError as err:
            raise ModelError(
                f"{self.spec}: cannot connect to {self.base_url} ({err.os_error}); "
                "is the server running and the base URL right?",
                retryable=True,
            ) from err
        except aiohttp.ClientError as err:
            raise ModelError(f"{self.spec}: connection error: {err}", retryable=True) from err
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as err:
            raise ModelError(
                f"{self.spec}: malformed response from {url}: {raw[:200]!r}", retryable=True
            ) from err
        usage = data.get("usage") or {}
        return ChatResponse(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            structured=structured,
            finish_reason=str(choice.get("finish_reason") or ""),
        )

    def _http_error(self, status: int, raw: str, retry_after: str | None) -> Exception:
        detail = raw[:300].strip()
        if status == 400 and "response_format" in raw:
            return _SchemaRejected()
        if status in (401, 403):
            return ModelError(
                f"{self.spec}: HTTP {status} from {self.base_url}: check OPENAI_API_KEY "
                f"(or SKILLMIX_OPENAI_API_KEY). Server said: {detail}"
            )
        if status == 404:
            return UnknownModelError(
                f"{self.spec}: HTTP 404 from {self.base_url}: unknown model '{self.name}' or "
                f"wrong base URL. Server said: {detail}"
            )
        err = ModelError(
            f"{self.spec}: HTTP {status} from {self.base_url}: {detail}",
            retryable=status in RETRY_STATUSES,
        )
        if retry_after:
            with contextlib.suppress(ValueError):
                err.retry_after = float(retry_after)  # type: ignore[attr-defined]
        return err

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


class _SchemaRejected(Exception):
    """The server does not accept `response_format: json_schema`; fall back to text."""
