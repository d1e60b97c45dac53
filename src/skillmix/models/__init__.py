"""Model providers, addressed as `provider:model`, imported lazily."""

from __future__ import annotations

from skillmix.models.base import (
    ChatRequest,
    ChatResponse,
    Model,
    ModelError,
    UnknownModelError,
)
from skillmix.models.settings import Settings, load_settings

PROVIDERS = ("embedded", "openai", "vllm", "litellm")


def resolve_model(spec: str, settings: Settings | None = None) -> Model:
    """Build a model from `provider:model` (`embedded`, `openai:gpt-4o@http://host/v1`).

    Providers are imported only when used, so optional dependencies stay optional.
    """
    provider, _, rest = spec.partition(":")
    provider = provider.strip().lower()
    name, base_url = rest, ""
    head, sep, tail = rest.rpartition("@")
    if sep and tail.startswith(("http://", "https://")):  # model names may hold "@" too
        name, base_url = head, tail
    model_settings = (settings or Settings()).for_model(spec)
    if provider == "embedded":
        from skillmix.models.embedded import EmbeddedModel

        return EmbeddedModel(rest)
    if provider == "openai":
        from skillmix.models.openai_compat import OpenAICompatModel

        return OpenAICompatModel(name, base_url=base_url or None, settings=model_settings)
    if provider == "vllm":
        from skillmix.models.vllm_batch import VLLMBatchModel

        return VLLMBatchModel(name, **model_settings.engine_args)
    if provider == "litellm":
        from skillmix.models.litellm_provider import LiteLLMModel

        return LiteLLMModel(
            name,
            base_url=base_url or model_settings.base_url,
            api_key=model_settings.api_key(),
        )
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
    "Settings",
    "UnknownModelError",
    "load_settings",
    "resolve_model",
]
