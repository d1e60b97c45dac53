"""The one small async interface every provider implements."""

from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from skillmix.errors import ModelError

Message = dict[str, str]
# What a local model samples at when no temperature is set: the published runs' setting
# for local models. Hosted APIs get no temperature at all and use their own default.
LOCAL_DEFAULT_TEMPERATURE = 0.7


class UnknownModelError(ModelError):
    """A model spec names no model we can build (unknown provider, bad spec or base URL)."""


@dataclass(frozen=True)
class ChatRequest:
    """Everything that determines a model's answer. Its `key` addresses the response cache."""

    messages: tuple[Message, ...]
    temperature: float | None = None  # None: not sent, the provider's default applies
    max_tokens: int = 512
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    sample: int = 0  # distinguishes repeated draws with otherwise identical settings
    # Images shown with the last message, as URLs (https:, data:). Only providers that send
    # `messages_json` (the OpenAI-compatible one) send them; without images, the messages,
    # their JSON and the cache key are exactly those of a text request.
    images: tuple[str, ...] = ()

    def settings(self) -> dict[str, Any]:
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "json_schema": self.json_schema,
            "sample": self.sample,
        }

    @functools.cached_property
    def messages_json(self) -> str:
        if self.images:
            return _messages_json(self.wire_messages())
        return _messages_json(self.messages)

    def following(self, earlier: ChatRequest) -> ChatRequest:
        """This request, its messages' JSON made from `earlier`'s (the same conversation's
        previous turn, whose messages begin this one's) and the new messages' alone: a
        second turn does not encode the long first prompt again. Returns `self`."""
        shared = len(earlier.messages)
        if (
            0 < shared < len(self.messages)
            and not self.images
            and not earlier.images
            and self.messages[:shared] == earlier.messages
        ):
            rest = _messages_json(self.messages[shared:])
            # `[a, b]` is `[a` + `, ` + `b]`; the cached property's own slot, as it fills it.
            self.__dict__["messages_json"] = f"{earlier.messages_json[:-1]}, {rest[1:]}"
        return self

    def wire_messages(self) -> list[dict[str, Any]]:
        """The messages in the OpenAI chat format: with `images`, the last message's content
        becomes a text part followed by one `image_url` part per image."""
        if not self.images:
            return [dict(m) for m in self.messages]
        *head, last = self.messages
        parts: list[dict[str, Any]] = [{"type": "text", "text": last["content"]}]
        parts += [{"type": "image_url", "image_url": {"url": url}} for url in self.images]
        return [*(dict(m) for m in head), {**last, "content": parts}]

    @functools.cached_property
    def _setting_fields(self) -> dict[str, str]:
        """Each setting's value as JSON (keys sorted, no spaces), encoded once: a judge's
        request carries a JSON schema that the key and the store would each encode again."""
        return {name: _setting_json(value) for name, value in self.settings().items()}

    @property
    def settings_json(self) -> str:
        """`settings()` as JSON with sorted keys and no spaces (how the store keeps it)."""
        return _json_object(self._setting_fields)

    def key(self, model_identity: str) -> str:
        """The cache address: SHA-256 of the model identity and settings (one JSON object,
        sorted keys, no spaces), a newline, and the messages' JSON."""
        settings = _json_object({**self._setting_fields, "model": _json_string(model_identity)})
        blob = f"{settings}\n{self.messages_json}"
        return hashlib.sha256(blob.encode()).hexdigest()


# The encoders of `json.dumps(value, ensure_ascii=False)` and `json.dumps(value,
# sort_keys=True, separators=(",", ":"))`, made once: `json.dumps` with options builds a new
# encoder on every call. The cache key depends on these exact bytes.
_messages_json = json.JSONEncoder(ensure_ascii=False).encode
_sorted_json = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
_SCALARS = {None: "null", True: "true", False: "false"}


def _setting_json(value: Any) -> str:
    """`value` as `_sorted_json` writes it; the common scalars without an encoder (JSON
    writes a finite float as its `repr`)."""
    if value is None or value is True or value is False:
        return _SCALARS[value]
    if type(value) is int:
        return int.__repr__(value)
    if type(value) is float and math.isfinite(value):
        return float.__repr__(value)
    return _sorted_json(value)


def _json_object(fields: dict[str, str]) -> str:
    """A JSON object from already-encoded values, keys sorted: what `json.dumps(...,
    sort_keys=True, separators=(",", ":"))` writes for the same object."""
    return "{" + ",".join([head + fields[name] for name, head in _heads(tuple(fields))]) + "}"


@functools.lru_cache(maxsize=64)
def _heads(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Each name of an object's fields with its JSON head (`"name":`), in sorted order: a
    request's settings have the same few names every time."""
    return tuple((name, f"{json.dumps(name)}:") for name in sorted(names))


@functools.lru_cache(maxsize=64)
def _json_string(text: str) -> str:
    """`json.dumps(text)`, for the few model identities of a run."""
    return json.dumps(text)


def effective_temperature(model: object, request: ChatRequest) -> float | None:
    """The temperature a request runs at on `model`: the one it sets, else the model's
    `default_temperature` (local models), else None: nothing is sent and the server's own
    default applies (unknown to us, so recorded as None)."""
    if request.temperature is not None:
        return request.temperature
    default = getattr(model, "default_temperature", None)
    return None if default is None else float(default)


@dataclass
class ChatResponse:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # How the output was constrained: "" (free text), or the mechanism ("json_schema",
    # "json_object", "grammar", "guided"); providers may also set True for "constrained".
    structured: str | bool = ""
    finish_reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Model(Protocol):
    provider: str
    name: str
    max_concurrency: int

    @property
    def supports_structured(self) -> bool:
        """Whether requests with a JSON schema get constrained decoding."""
        ...

    @property
    def spec(self) -> str: ...

    @property
    def identity(self) -> str:
        """What addresses the response cache: provider, model and, for HTTP, the endpoint."""
        ...

    async def complete(self, request: ChatRequest) -> ChatResponse: ...

    async def aclose(self) -> None: ...
