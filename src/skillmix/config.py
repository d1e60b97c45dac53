"""Typed configuration of a run, in one place. Loaded from CLI flags or a TOML/YAML file."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from skillmix.errors import InputError
from skillmix.metrics import AGGREGATIONS
from skillmix.userfiles import read_user_table

# As the published runs: 512 new tokens for the student and the judge.
DEFAULT_MAX_TOKENS = 512
ProtocolName = Literal["skillmix", "paper"]
PROTOCOLS: tuple[ProtocolName, ...] = ("skillmix", "paper")
# Written by the engine next to a run's stored config: what the models really ran at.
# It is a record, not a setting, so reading a stored config back drops it.
RECORDED_KEY = "effective_decoding"


class Decoding(BaseModel):
    """Decoding settings of one role.

    `temperature` None means none is sent: a hosted API uses its own default (as in the
    published runs) and a local model its provider's default (0.7 for the embedded model,
    the published local setting). The run records the value in effect.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float | None = Field(None, ge=0.0, le=2.0, allow_inf_nan=False)
    max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=1)


class SplitConfig(BaseModel):
    """Evaluate on one side of a train/held-out split of the catalog (SPEC section 2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    part: Literal["train", "held-out"] = "held-out"
    skills: float = Field(0.0, ge=0.0, lt=1.0, description="share of skills held out")
    topics: float = Field(0.0, ge=0.0, lt=1.0, description="share of topics held out")
    categories: tuple[str, ...] = Field((), description="skill categories held out whole")
    seed: int = 0


class RunConfig(BaseModel):
    """Everything that determines a run's results. Its hash is the run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    student: str = "embedded"
    judges: tuple[str, ...] = ("embedded",)
    k: tuple[int, ...] = (2, 3)
    items: int = Field(10, ge=1, description="items per k")
    generation_rounds: int = Field(3, ge=1)
    grading_rounds: int = Field(3, ge=1)
    seed: int = 0
    catalog: tuple[str, ...] = ("builtin",)
    templates: str = Field(
        "v2", description="built-in set name, a folder of templates, or reference:DIR"
    )
    protocol: ProtocolName = "skillmix"
    tell_not_to_name: bool = Field(False, description="tell the student not to name the skills")
    student_decoding: Decoding = Decoding()
    judge_decoding: Decoding = Decoding()
    structured: bool = True
    parse_attempts: int = Field(3, ge=1, description="tries per grading round before unparsed")
    naming_penalty: bool = True
    split: SplitConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _settings_only(cls, data: Any) -> Any:
        """Drop what a stored run records beside its settings; paper grading is text-only."""
        if not isinstance(data, dict):
            return data
        data = {key: value for key, value in data.items() if key != RECORDED_KEY}
        if data.get("protocol") == "paper":
            if data.get("structured"):
                raise ValueError(
                    "the paper protocol grades from the judge's table, so structured output "
                    "cannot be on (drop structured / --no-structured is implied)"
                )
            data["structured"] = False
        return data

    @field_validator("k")
    @classmethod
    def _k_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(k < 1 for k in value):
            raise ValueError("k values must be positive integers")
        return tuple(sorted(set(value)))

    @field_validator("judges")
    @classmethod
    def _judges_given(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one judge is needed")
        return tuple(dict.fromkeys(value))

    def run_id(self, catalog_hash: str, template_version: str) -> str:
        """Same config, catalog content and templates: same run (so re-running resumes).

        Catalog and templates count by content (hash), not by where they were read from.
        """
        payload = {
            **self.model_dump(mode="json", exclude={"catalog", "templates"}),
            "catalog_hash": catalog_hash,
            "template_version": template_version,
        }
        blob = json.dumps(payload, sort_keys=True)
        return "run-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def stored_protocol(stored: dict[str, Any]) -> str:
    """The protocol of a stored run's config (runs from before protocols: `skillmix`)."""
    return str(stored.get("protocol", "skillmix"))


def stored_decoding(stored: dict[str, Any]) -> dict[str, Any]:
    """The decoding a stored run ran at, per role: `{"student": {...}, "judges": {name:
    {...}}}` with `temperature`, `temperature_source` and `max_tokens`.

    What the run recorded; for runs made before that was recorded, their settings (their
    temperature was always sent)."""
    recorded = stored.get(RECORDED_KEY)
    if isinstance(recorded, dict):
        return recorded

    def configured(decoding: dict[str, Any]) -> dict[str, Any]:
        temperature = decoding.get("temperature")
        return {
            "temperature": temperature,
            "temperature_source": "set" if temperature is not None else "not recorded",
            "max_tokens": decoding.get("max_tokens"),
        }

    return {
        "student": configured(stored.get("student_decoding", {})),
        "judges": {j: configured(stored.get("judge_decoding", {})) for j in stored["judges"]},
    }


def describe_decoding(decoding: dict[str, Any]) -> str:
    """One role's decoding in words: `temperature 0.7 (embedded default), 512 max tokens`."""
    temperature = decoding.get("temperature")
    source = decoding.get("temperature_source", "")
    if temperature is None:
        text = "temperature not sent (the server's default)"
    elif source and source != "set":
        text = f"temperature {temperature:g} ({source})"
    else:
        text = f"temperature {temperature:g}"
    return f"{text}, {decoding.get('max_tokens')} max tokens"


class ReportConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    aggregation: str = "max"
    level: float = 0.95
    resamples: int = 2000

    @field_validator("aggregation")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        if value not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}")
        return value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML file of RunConfig fields (CLI flags override it).

    The fields may sit at the top level or under `[run]`; a file that cannot be read or
    parsed, or that holds no table, is an `InputError` naming the file.
    """
    data = read_user_table(path, "config file")
    run = data.get("run", data)
    if not isinstance(run, dict):
        raise InputError(f"{path}: [run] must be a table of run settings")
    return run


def check_max_cost(value: float | None) -> float | None:
    """A spending limit in USD: None (no limit) or a finite number >= 0.

    NaN compares false with every cost, so it would switch the budget off.
    """
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise InputError(
            f"--max-cost must be a number of USD >= 0, got {value}",
            hint="leave it out for no limit",
        )
    return value
