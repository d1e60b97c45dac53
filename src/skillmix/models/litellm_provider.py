"""Any model LiteLLM can call (Anthropic, Gemini, Bedrock, Mistral, ...), through its SDK.

Spec: `litellm:PROVIDER/MODEL` in LiteLLM's own naming, e.g.
`litellm:anthropic/claude-3-5-sonnet-20240620`; keys come from the environment variables
LiteLLM documents for each provider (ANTHROPIC_API_KEY, ...) unless given here. Needs the
`litellm` extra (`pip install 'skillmix[litellm]'`).

LiteLLM's own retries are turned off: as in the OpenAI-compatible provider, retries happen
here, so they are counted (`retry_causes`) and rate limits shrink the concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import threading
from typing import Any

from skillmix.models.base import ChatRequest, ChatResponse, ModelError, UnknownModelError
from skillmix.models.retry import RETRY_STATUSES, Retryable, RetryingClient, SchemaRejected

INSTALL_HINT = "pip install 'skillmix[litellm]'"

_IMPORT_LOCK = threading.Lock()


def _import_litellm() -> Any:
    """Import LiteLLM quietly: no cost-map download at import, no "Give Feedback" banners."""
    with _IMPORT_LOCK:
        # skillmix prices calls itself; LiteLLM would otherwise fetch its cost map from
        # GitHub on import (and retry for seconds when offline).
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        try:
            litellm: Any = importlib.import_module("litellm")
        except ImportError as err:
            raise ModelError(f"the litellm provider needs LiteLLM; {INSTALL_HINT}") from err
        litellm.suppress_debug_info = True
        return litellm


class LiteLLMModel(RetryingClient):
    """A chat model called through `litellm.acompletion`."""

    provider = "litellm"

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
            raise UnknownModelError(
                "litellm provider needs a model: litellm:PROVIDER/MODEL "
                "(e.g. litellm:anthropic/claude-3-5-sonnet-20240620)"
            )
        self.name = name
        self.base_url = base_url.rstrip("/") if base_url else None
        self.api_key = api_key
        self.timeout_s = timeout_s
        super().__init__(
            max_concurrency=max_concurrency, max_retries=max_retries, backoff_s=backoff_s
        )
        self.structured_modes = ["json_schema"]
        self._litellm: Any = None

    @property
    def identity(self) -> str:
        return f"{self.spec}@{self.base_url}" if self.base_url else self.spec

    @property
    def endpoint(self) -> str:
        """The base URL, else LiteLLM's provider (its default host): `anthropic`."""
        return self.base_url or self.name.partition("/")[0]

    async def _attempt(self, request: ChatRequest, mode: str) -> ChatResponse:
        if self._litellm is None:
            self._litellm = await asyncio.to_thread(_import_litellm)
        return await self._call(request, mode == "json_schema")

    def _kwargs(self, request: ChatRequest, structured: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.name,
            "messages": list(request.messages),
            "max_tokens": request.max_tokens,
            "timeout": self.timeout_s,
            "num_retries": 0,  # retries happen in complete(), where they are counted
        }
        if request.temperature is not None:  # else the API's default, as published
            kwargs["temperature"] = request.temperature
        if self.base_url:
            kwargs["api_base"] = self.base_url
        if self.api_key:
            kwargs["api_key"] = self.api_key
        if request.seed is not None:
            kwargs["seed"] = (request.seed + 7919 * request.sample) % (2**31 - 1)
        if structured and request.json_schema is not None:
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": request.json_schema, "strict": True},
            }
        return kwargs

    async def _call(self, request: ChatRequest, structured: bool) -> ChatResponse:
        try:
            response = await self._litellm.acompletion(**self._kwargs(request, structured))
        except Exception as err:
            raise self._error(err, structured) from err
        try:
            choice = response.choices[0]
            text = choice.message.content or ""
        except (AttributeError, IndexError, TypeError) as err:
            raise Retryable(
                f"{self.spec}: malformed response: {response!r:.200}", "malformed"
            ) from err
        usage = getattr(response, "usage", None)
        return ChatResponse(
            text=text,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            structured="json_schema" if structured else "",
            finish_reason=str(getattr(choice, "finish_reason", "") or ""),
        )

    def _error(self, err: Exception, structured: bool) -> Exception:
        """Map a LiteLLM exception to a ModelError that says whether to retry."""
        litellm = self._litellm
        where = f" at {self.base_url}" if self.base_url else ""
        detail = str(err)[:300].strip()
        status = getattr(err, "status_code", None)
        if isinstance(err, litellm.Timeout):
            return Retryable(f"{self.spec}: no answer within {self.timeout_s:g}s{where}", "timeout")
        refused = _connection_failure(err)
        if refused is not None:
            # LiteLLM reports an unreachable host as an HTTP 500; the cause says what happened.
            return Retryable(
                f"{self.spec}: cannot connect to {self.base_url or 'the provider'} ({refused}); "
                "is the server running and the base URL right?",
                "connect",
            )
        if isinstance(err, litellm.RateLimitError):
            return Retryable(
                f"{self.spec}: rate limited{where}: {detail}", "429", _retry_after(err)
            )
        if isinstance(err, litellm.NotFoundError) or _names_bad_model(detail):
            return UnknownModelError(
                f"{self.spec}: unknown model '{self.name}'{where}: use LiteLLM's naming, "
                f"PROVIDER/MODEL (e.g. anthropic/claude-3-5-sonnet-20240620). {detail}"
            )
        if isinstance(err, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
            return ModelError(
                f"{self.spec}: the provider refused the credentials{where}: set the API key "
                f"variable LiteLLM expects for this provider (e.g. ANTHROPIC_API_KEY). {detail}"
            )
        if structured and (
            isinstance(err, litellm.UnsupportedParamsError)
            or (isinstance(err, litellm.BadRequestError) and "response_format" in detail)
        ):
            return SchemaRejected()
        if isinstance(status, int) and status in RETRY_STATUSES:
            return Retryable(f"{self.spec}: HTTP {status}{where}: {detail}", str(status))
        if isinstance(
            err,
            (
                litellm.InternalServerError,
                litellm.ServiceUnavailableError,
                litellm.BadGatewayError,
                litellm.APIConnectionError,
            ),
        ):
            return Retryable(f"{self.spec}: provider error{where}: {detail}", "server")
        if isinstance(err, ModelError):
            return err
        return ModelError(f"{self.spec}: {type(err).__name__}{where}: {detail}")

    async def aclose(self) -> None:
        return None


def _names_bad_model(detail: str) -> bool:
    lowered = detail.lower()
    return "llm provider not provided" in lowered or "model not found" in lowered


def _connection_failure(err: BaseException) -> str | None:
    """The network error (refused, unreachable, DNS) at the root of `err`, if there is one."""
    found = None
    seen: set[int] = set()
    link: BaseException | None = err
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, OSError) and not isinstance(link, TimeoutError):
            found = str(link)  # keep going: the deepest one says it most plainly
        link = link.__cause__ or link.__context__
    return found


def _retry_after(err: Exception) -> float | None:
    """Seconds from the Retry-After header of the HTTP response behind `err`, if any."""
    response = getattr(err, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if value is None:
        return None
    with contextlib.suppress(ValueError, TypeError):
        return max(0.0, float(value))
    return None
