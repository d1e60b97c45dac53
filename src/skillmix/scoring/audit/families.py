"""Model families, for the self-preference check: which judges are kin to which students."""

from __future__ import annotations

from collections.abc import Mapping

# Model families recognised from the start of a model's name (after provider and path).
KNOWN_FAMILIES: dict[str, str] = {
    "gpt": "gpt",
    "chatgpt": "gpt",
    "o1": "gpt",
    "o3": "gpt",
    "o4": "gpt",
    "claude": "claude",
    "llama": "llama",
    "meta-llama": "llama",
    "qwen": "qwen",
    "qwq": "qwen",
    "gemini": "gemini",
    "mistral": "mistral",
    "mixtral": "mistral",
    "ministral": "mistral",
    "codestral": "mistral",
    "smollm": "smollm",
    "embedded": "smollm",  # the embedded default is SmolLM2
}


def model_family(spec: str, families: Mapping[str, str] | None = None) -> str:
    """The family of a model spec: `families[spec]` when given, else read from its name.

    The name is the spec without provider, base URL and path ("openai:gpt-4o-mini" ->
    "gpt-4o-mini", "hf:meta-llama/Llama-3-8B" -> "llama-3-8b"); a name starting with a
    known family ("gpt", "claude", "llama", "qwen", "gemini", "mistral", "smollm", ...)
    belongs to it, any other to the part before its first '-' or ':', lowercased.
    """
    if families and spec in families:
        return families[spec]
    name = spec.strip().split("@", 1)[0]
    if ":" in name:
        name = name.split(":", 1)[1]
    name = name.rstrip("/").rsplit("/", 1)[-1].lower()
    for prefix, family in sorted(KNOWN_FAMILIES.items(), key=lambda kv: -len(kv[0])):
        if name.startswith(prefix):
            return family
    return name.replace(":", "-").split("-", 1)[0] or name
