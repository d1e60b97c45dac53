"""Image generation through an OpenAI-compatible `/images/generations` endpoint.

Spec: `openai-images:MODEL` or `openai-images:MODEL@BASE_URL` (hosted APIs, or a local
server that speaks the same API). Base URL, key, headers, timeouts and concurrency come
from the same places as for `openai:` chat models (skillmix.toml under the spec,
OPENAI_BASE_URL, OPENAI_API_KEY, ...), and requests use the same keep-alive client
(`models.http`) and retry policy (`models.retry`: 429, 5xx, time-outs and dropped
connections are retried with backoff; a bad key or unknown model is reported at once).

The body is `{"model", "prompt", "n": 1, "size", "response_format": "b64_json"}`
(`response_format` is left out for `gpt-image-*` models, which always answer in base64).
The decoded image goes into the image store and the call's answer is its SHA-256, so the
call is cached like any other: a re-run finds the hash and sends nothing. No seed is sent
(the API takes none); repeated draws differ by `ChatRequest.sample`, which is in the key.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from skillmix.image.image_store import ImageStore, NotAnImage
from skillmix.models.base import ChatRequest, ChatResponse, ModelError
from skillmix.models.http import ConnectError, HttpError
from skillmix.models.openai_compat import OpenAICompatModel
from skillmix.models.retry import Retryable
from skillmix.models.settings import ModelSettings

PROVIDER = "openai-images"
DEFAULT_SIZE = "1024x1024"


class OpenAIImagesModel(OpenAICompatModel):
    """An image model behind an OpenAI-compatible images API (see the module docstring)."""

    provider = PROVIDER

    def __init__(
        self,
        name: str,
        images: ImageStore,
        *,
        size: str = DEFAULT_SIZE,
        base_url: str | None = None,
        settings: ModelSettings | None = None,
        **kwargs: Any,
    ):
        super().__init__(name, base_url=base_url, settings=settings, **kwargs)
        self.images = images
        self.size = size
        self.structured_modes = []  # no structured output: the answer is an image

    @property
    def identity(self) -> str:
        """Provider, model, endpoint and image size: everything that shapes the image."""
        return f"{self.spec}@{self.base_url}?size={self.size}"

    def _body(self, request: ChatRequest, mode: str = "") -> dict[str, Any]:
        """The request body as sent: the prompt is the last message's text."""
        body: dict[str, Any] = {
            "model": self.name,
            "prompt": request.messages[-1]["content"],
            "n": 1,
            "size": self.size,
        }
        if not self.name.startswith("gpt-image"):
            body["response_format"] = "b64_json"
        return body

    async def _attempt(self, request: ChatRequest, mode: str) -> ChatResponse:
        url = f"{self.base_url}/images/generations"
        try:
            resp = await self._client().post(
                "/images/generations",
                json.dumps(self._body(request)).encode(),
                self._request_headers(),
                self.timeout_s,
            )
        except TimeoutError as err:
            raise Retryable(
                f"{self.spec}: no image within {self.timeout_s:g}s (raise timeout_s in "
                "skillmix.toml for slow image models)",
                "timeout",
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
            raise self._http_error(resp.status, raw, resp.headers.get("retry-after"))
        try:
            answer = json.loads(raw)
            item = answer["data"][0]
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise Retryable(
                f"{self.spec}: malformed answer from {url}: {raw[:200]!r}", "malformed"
            ) from err
        try:
            info = self.images.put(_decoded(self.spec, url, item))
        except NotAnImage as err:
            raise Retryable(f"{self.spec}: the answer from {url} is {err}", "malformed") from err
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
        return ChatResponse(
            text=info.sha256,
            prompt_tokens=_tokens(usage, "input_tokens"),
            completion_tokens=_tokens(usage, "output_tokens"),
            finish_reason="stop",
            extra={"revised_prompt": str(item.get("revised_prompt") or ""), "mime": info.mime},
        )


def _decoded(spec: str, url: str, item: Any) -> bytes:
    """The image of one `data` entry of an images API answer, decoded from `b64_json`."""
    if not isinstance(item, dict) or not item.get("b64_json"):
        if isinstance(item, dict) and item.get("url"):
            raise ModelError(
                f"{spec}: {url} answered with an image URL, not the image itself",
                hint="the server ignored response_format=b64_json; configure it to return "
                "base64 images",
            )
        raise Retryable(f"{spec}: no b64_json image in the answer from {url}", "malformed")
    try:
        return base64.b64decode(item["b64_json"], validate=True)
    except (binascii.Error, ValueError, TypeError) as err:
        raise Retryable(f"{spec}: the b64_json from {url} is not base64", "malformed") from err


def _tokens(usage: dict[str, Any], key: str) -> int:
    """Tokens the answer reports (gpt-image-1 does), else 0."""
    try:
        return int(usage.get(key) or 0)
    except (TypeError, ValueError):
        return 0
