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

import ipaddress
import os
import warnings
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from skillmix.errors import InputError, ModelError, validation_message
from skillmix.userfiles import YAML_LOADER, read_user_table

CONFIG_ENV = "SKILLMIX_CONFIG"
DEFAULT_CONFIG = "skillmix.toml"
KEY_HINT = (
    "keep keys out of URLs: put the key in an environment variable and name it in "
    'skillmix.toml, [models."openai:MODEL"] api_key_env = "MY_KEY"'
)


class SettingsError(InputError):
    """A settings or pricing file (or a value in it) is wrong."""


class SettingsWarning(UserWarning):
    """Settings that work but probably not as meant (an `api_key_env` that is not set)."""


class BaseURLError(InputError):
    """A base URL that skillmix will not send requests (or keys) to."""


def redact_url(url: str) -> str:
    """`url` for messages: a user name, password or query (where keys hide) becomes `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if "@" in parts.netloc:
        parts = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2])
    if parts.query:
        parts = parts._replace(query="***")
    return parts.geturl()


def check_base_url(url: str, what: str = "the base URL") -> str:
    """`url` if it is a plain http(s) endpoint, else a `BaseURLError` that says why.

    Refused: another scheme, no host, a bad port, whitespace or control characters, a
    query or fragment (requests append `/chat/completions`), and credentials: a key in a
    URL would be stored with every call and shown in reports.
    """
    shown = redact_url(url)
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise BaseURLError(f"{what} ({shown}) contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise BaseURLError(f"{what} ({shown}) is not a valid URL: {err}") from None
    if parts.scheme not in ("http", "https"):
        raise BaseURLError(
            f"{what} ({shown}) is not an http(s) URL",
            hint="write it as http://HOST:PORT/v1 or https://HOST/v1",
        )
    if parts.username is not None or parts.password is not None:
        raise BaseURLError(f"{what} ({shown}) holds credentials", hint=KEY_HINT)
    if not parts.hostname or port == 0:
        raise BaseURLError(f"{what} ({shown}) has no host (or port)")
    if parts.query or parts.fragment:
        raise BaseURLError(
            f"{what} ({shown}) has a query or fragment; a base URL ends with the path "
            "(requests append /chat/completions)",
            hint=KEY_HINT,
        )
    return url


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

    @field_validator("base_url")
    @classmethod
    def _plain_url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value)

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
        """The settings of `spec` (or of its name without `@URL`), else the defaults.

        Warns (a `SettingsWarning`, once per variable and model) when they name an
        `api_key_env` that is not set: requests would go without that key.
        """
        found = self.lookup(spec)
        variable = found.api_key_env
        if variable and os.environ.get(variable) is None:
            warnings.warn(
                f"{spec}: api_key_env names {variable}, which is not set: its requests go "
                f"without that key (export {variable}=... or fix the name in the settings)",
                SettingsWarning,
                stacklevel=2,
            )
        return found

    def lookup(self, spec: str) -> ModelSettings:
        """The settings of `spec` (or of its name without `@URL`), else the defaults."""
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


def is_local_endpoint(provider: str, base_url: str | None) -> bool:
    """Whether a model runs on this machine or this network, where calls cost nothing:
    in-process providers, and base URLs on localhost, loopback, private or link-local
    addresses. Host names are not looked up: only `localhost` (and `*.localhost`) count."""
    if provider in ("embedded", "vllm"):
        return True
    if not base_url:
        return False
    try:
        host = urlsplit(base_url).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local


def runs_locally(spec: str, settings: Settings | None = None) -> bool:
    """Whether calls to the model `spec` cost nothing (`is_local_endpoint`); its base URL
    from the spec, else from `settings`. An unparseable spec counts as paid."""
    from skillmix.models import parse_spec

    try:
        parsed = parse_spec(spec)
    except (InputError, ModelError):
        return False
    base_url = parsed.base_url or (settings or Settings()).lookup(spec).base_url
    return is_local_endpoint(parsed.provider, base_url)


@cache
def _builtin_prices() -> dict[str, Price]:
    text = resources.files("skillmix.models").joinpath("pricing.yaml").read_text()
    return {name: Price(**value) for name, value in yaml.load(text, Loader=YAML_LOADER).items()}


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
        extra = _read(Path(pricing), "pricing file")
        prices, base = extra.get("pricing", extra), data.get("pricing", {})
        for where, table in ((pricing, prices), (chosen, base)):
            if not isinstance(table, dict):
                raise SettingsError(
                    f"{where}: [pricing] must be a table of model = {{input, output}}"
                )
        data["pricing"] = {**base, **prices}
    try:
        return Settings.model_validate(data)
    except ValidationError as err:
        where = " + ".join(str(p) for p in (chosen, pricing) if p)
        raise SettingsError(validation_message(err, f"{where}: invalid settings")) from None


def _read(path: Path, what: str = "settings file") -> dict[str, Any]:
    try:
        return read_user_table(path, what)
    except InputError as err:
        raise SettingsError(str(err), hint=err.hint) from None
