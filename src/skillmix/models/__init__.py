"""Model providers, addressed as `provider:model`, imported lazily."""

from __future__ import annotations

from skillmix.models.base import (
    ChatRequest,
    ChatResponse,
    Model,
    ModelError,
    UnknownModelError,
)

PROVIDERS = ("embedded", "openai")


def resolve_model(spec: str) -> Model:
    """Build a model from `provider:model` (`embedded`, `openai:gpt-4o@http://host/v1`)."""
    provider, _, rest = spec.partition(":")
    provider = provider.strip().lower()
    if provider == "embedded":
        from skillmix.models.embedded import EmbeddedModel

        return EmbeddedModel(rest)
    if provider == "openai":
        from skillmix.models.openai_compat import OpenAICompatModel

        name, _, base_url = rest.partition("@")
        return OpenAICompatModel(name, base_url=base_url or None)
    raise UnknownModelError(
        f"unknown model '{spec}': use provider:model with provider one of "
        f"{', '.join(PROVIDERS)} (e.g. 'embedded' or 'openai:gpt-4o-mini')"
    )


__all__ = [
    "PROVIDERS",
    "ChatRequest",
    "ChatResponse",
    "Model",
    "ModelError",
    "UnknownModelError",
    "resolve_model",
]
