"""The one small async interface every provider implements."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]


class ModelError(RuntimeError):
    """A model could not answer; `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


class UnknownModelError(ModelError):
    pass


@dataclass(frozen=True)
class ChatRequest:
    """Everything that determines a model's answer. Its `key` addresses the response cache."""

    messages: tuple[Message, ...]
    temperature: float = 0.7
    max_tokens: int = 512
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    sample: int = 0  # distinguishes repeated draws with otherwise identical settings

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
        return json.dumps(self.messages, ensure_ascii=False)

    def key(self, model_identity: str) -> str:
        settings = json.dumps(
            {"model": model_identity, **self.settings()}, sort_keys=True, separators=(",", ":")
        )
        blob = f"{settings}\n{self.messages_json}"
        return hashlib.sha256(blob.encode()).hexdigest()


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
