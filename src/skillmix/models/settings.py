"""Per-model settings and prices, from skillmix.toml (or SKILLMIX_CONFIG) and the environment.

```toml
[models."openai:gpt-4o"]
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"       # the name of the variable, never the key itself
headers = { "OpenAI-Organization" = "org-..." }
max_concurrency = 64
timeout_s = 120

[pricing]
"my-finetune" = { input = 0.3, output = 1.2 }   # USD per million tokens
```
"""

from __future__ import annotations

import os
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONFIG_ENV = "SKILLMIX_CONFIG"
DEFAULT_CONFIG = "skillmix.toml"


class SettingsError(ValueError):
    pass


class ModelSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str | None = None
    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    max_concurrency: int = Field(64, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(8, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    engine_args: dict[str, Any] = Field(
        default_factory=dict, description="passed to the in-process engine (vLLM's LLM(...))"
    )

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


class Price(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0, description="USD per million prompt tokens")
    output: float = Field(ge=0, description="USD per million completion tokens")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1e6


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    models: dict[str, ModelSettings] = Field(default_factory=dict)
    pricing: dict[str, Price] = Field(default_factory=dict)

    def for_model(self, spec: str) -> ModelSettings:
        return self.models.get(spec) or self.models.get(spec.split("@")[0]) or ModelSettings()

    def price(self, provider: str, model: str) -> Price | None:
        """The price of a model: free when it runs locally, else the longest matching entry."""
        if provider in ("embedded", "vllm"):
            return Price(input=0.0, output=0.0)
        table = {**_builtin_prices(), **self.pricing}
        for name in (f"{provider}:{model}", model):
            if name in table:
                return table[name]
        matches = [key for key in table if model.startswith(key)]
        return table[max(matches, key=len)] if matches else None


@cache
def _builtin_prices() -> dict[str, Price]:
    text = resources.files("skillmix.models").joinpath("pricing.yaml").read_text()
    return {name: Price(**value) for name, value in yaml.safe_load(text).items()}


def load_settings(path: str | Path | None = None, pricing: str | Path | None = None) -> Settings:
    """Settings from `path`, else $SKILLMIX_CONFIG, else ./skillmix.toml if it exists."""
    chosen = path or os.environ.get(CONFIG_ENV)
    if chosen is None and Path(DEFAULT_CONFIG).is_file():
        chosen = DEFAULT_CONFIG
    data: dict[str, Any] = {}
    if chosen:
        data = _read(Path(chosen))
        data = {key: data[key] for key in ("models", "pricing") if key in data}
    if pricing:
        extra = _read(Path(pricing))
        data["pricing"] = {**data.get("pricing", {}), **extra.get("pricing", extra)}
    try:
        return Settings(**data)
    except ValidationError as err:
        raise SettingsError(f"{chosen or pricing}: invalid settings:\n{err}") from err


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SettingsError(f"{path}: settings file not found")
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        raise SettingsError(f"{path}: {err}") from err
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a table of settings")
    return data
