"""Model providers, addressed as `provider:model`, imported lazily."""

from __future__ import annotations

import re
from dataclasses import dataclass

from skillmix.models.base import (
    ChatRequest,
    ChatResponse,
    Model,
    ModelError,
    UnknownModelError,
)
from skillmix.models.settings import BaseURLError, Settings, check_base_url, load_settings

PROVIDERS = ("embedded", "openai", "vllm", "litellm")
# Providers that talk to an endpoint, so a spec may name its base URL after "@".
ENDPOINT_PROVIDERS = ("openai", "litellm")
SPEC_RULE = (
    "a model spec is provider:MODEL or provider:MODEL@BASE_URL, where BASE_URL starts with "
    "http:// or https://; an '@' not followed by a URL is allowed only in litellm model "
    "names (e.g. litellm:vertex_ai/claude-3-5-sonnet@20240620)"
)
_USERINFO = re.compile(r"(://)[^/?#@\s]*@")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed `provider:model[@base_url]`."""

    provider: str
    name: str
    base_url: str = ""


def parse_spec(spec: str) -> ModelSpec:
    """Split a model spec strictly, or raise `UnknownModelError` naming the problem.

    The base URL starts at the last '@' before the first `scheme://` and must be a plain
    http(s) URL without credentials (`check_base_url`). A spec with no `://` has no base
    URL: there an '@' is part of the model name for litellm (Vertex AI version pins) and
    an error for the openai provider, so that `openai:gpt@notaurl` is never sent to the
    default host with its key. In-process providers take no base URL.
    """
    provider, _, rest = spec.strip().partition(":")
    provider = provider.strip().lower()
    if provider not in PROVIDERS:
        raise UnknownModelError(
            f"unknown model {_shown(spec)}: use provider:model with provider one of "
            f"{', '.join(PROVIDERS)} (e.g. 'embedded' or 'openai:gpt-4o-mini')"
        )
    scheme_at = rest.find("://")
    if scheme_at < 0:
        if "@" in rest and provider == "openai":
            name, _, tail = rest.partition("@")
            raise UnknownModelError(
                f"model spec {_shown(spec)}: {tail!r} after '@' is not a base URL",
                hint=SPEC_RULE,
            )
        return ModelSpec(provider, rest)
    at = rest.rfind("@", 0, scheme_at)
    if at < 0:
        raise UnknownModelError(
            f"model spec {_shown(spec)}: the base URL must follow an '@'", hint=SPEC_RULE
        )
    name, base_url = rest[:at], rest[at + 1 :]
    if provider not in ENDPOINT_PROVIDERS:
        raise UnknownModelError(
            f"model spec {_shown(spec)}: the {provider} provider runs in-process and takes no "
            "base URL",
            hint="for a model behind an OpenAI-compatible server use openai:MODEL@URL",
        )
    check_base_url(base_url, f"the base URL of {provider}:{name}")
    return ModelSpec(provider, name, base_url)


def resolve_model(spec: str, settings: Settings | None = None) -> Model:
    """Build a model from `provider:model` (`embedded`, `openai:gpt-4o@http://host/v1`).

    Providers are imported only when used, so optional dependencies stay optional. The
    endpoint a model will call, wherever it came from (spec, skillmix.toml, environment),
    is checked before anything is sent.
    """
    parsed = parse_spec(spec)
    model_settings = (settings or Settings()).for_model(spec)
    model: Model
    if parsed.provider == "embedded":
        from skillmix.models.embedded import EmbeddedModel

        model = EmbeddedModel(parsed.name)
    elif parsed.provider == "openai":
        from skillmix.models.openai_compat import OpenAICompatModel

        model = OpenAICompatModel(
            parsed.name, base_url=parsed.base_url or None, settings=model_settings
        )
    elif parsed.provider == "vllm":
        from skillmix.models.vllm_batch import VLLMBatchModel

        model = VLLMBatchModel(parsed.name, **model_settings.engine_args)
    else:
        from skillmix.models.litellm_provider import LiteLLMModel

        model = LiteLLMModel(
            parsed.name,
            base_url=parsed.base_url or model_settings.base_url,
            api_key=model_settings.api_key(),
        )
    endpoint = getattr(model, "base_url", None)
    if endpoint:
        check_base_url(endpoint, f"the base URL of {model.spec}")
    return model


def _shown(spec: str) -> str:
    """The spec for a message, with any credentials in a URL redacted."""
    return repr(_USERINFO.sub(r"\1***@", spec))


__all__ = [
    "PROVIDERS",
    "BaseURLError",
    "ChatRequest",
    "ChatResponse",
    "Model",
    "ModelError",
    "ModelSpec",
    "Settings",
    "UnknownModelError",
    "load_settings",
    "parse_spec",
    "resolve_model",
]
