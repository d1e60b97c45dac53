"""The run's settings as typed, validated models (`RunConfig` and its parts), and how a
stored run's config is read back (protocol, decoding)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# How a metric is taken over an item's generation rounds (see scoring.metrics.aggregate).
Aggregation = Literal["max", "mean", "best"]
AGGREGATIONS: tuple[Aggregation, ...] = ("max", "mean", "best")

# As the published runs: 512 new tokens for the student and the judge.
DEFAULT_MAX_TOKENS = 512
ProtocolName = Literal["skillmix", "paper"]
PROTOCOLS: tuple[ProtocolName, ...] = ("skillmix", "paper")
# How grading prompts order the rubric (see protocol.rubric_order).
RubricOrder = Literal["fixed", "shuffled"]
RUBRIC_ORDERS: tuple[RubricOrder, ...] = ("fixed", "shuffled")
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

    temperature: float | None = Field(
        None,
        ge=0.0,
        le=2.0,
        allow_inf_nan=False,
        description="none is sent when not set (the server's default; local models 0.7)",
    )
    max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=1, description="new tokens per answer")


class SplitConfig(BaseModel):
    """Evaluate on one side of a train/held-out split of the catalog (SPEC section 2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    part: Literal["train", "held-out"] = Field(
        "held-out", description="the side to evaluate on: train or held-out"
    )
    skills: float = Field(0.0, ge=0.0, lt=1.0, description="share of skills held out")
    topics: float = Field(0.0, ge=0.0, lt=1.0, description="share of topics held out")
    categories: tuple[str, ...] = Field((), description="skill categories held out whole")
    seed: int = Field(0, description="seed of the split")


class SpreadTag(BaseModel):
    """Marks a run as one format variant of a `skillmix spread` (see `protocol.spread`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group: str = Field(description="the spread's id, shared by all its runs")
    index: int = Field(ge=0, description="the variant's place in the spread (0: the base set)")
    variant: str = Field(description="the variant's id: its non-base format choices, or base")
    choices: dict[str, str] = Field(description="every format dimension -> its option")


class RunConfig(BaseModel):
    """Everything that determines a run's results. Its hash is the run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    student: str = Field("embedded", description="the model under test, provider:model")
    judges: tuple[str, ...] = Field(
        ("embedded",),
        description="the judge models (required when the student is not embedded)",
    )
    k: tuple[int, ...] = Field((2, 3), description="skills per item")
    items: int = Field(10, ge=1, description="items per k")
    generation_rounds: int = Field(3, ge=1, description="independent generations per item")
    grading_rounds: int = Field(
        3, ge=1, description="independent gradings per generation, majority-voted"
    )
    seed: int = Field(0, description="seed of the items and of decoding")
    catalog: tuple[str, ...] = Field(
        ("builtin",), description="catalog files (.yaml, .jsonl, .csv, .txt), combined"
    )
    templates: str = Field(
        "v2", description="built-in set name, a folder of templates, or reference:DIR"
    )
    protocol: ProtocolName = Field(
        "skillmix", description="skillmix, or paper: as the published scripts"
    )
    tell_not_to_name: bool = Field(False, description="tell the student not to name the skills")
    student_decoding: Decoding = Field(Decoding(), description="the student's decoding")
    judge_decoding: Decoding = Field(Decoding(), description="the judges' decoding")
    structured: bool = Field(True, description="ask judges for structured output where possible")
    parse_attempts: int = Field(3, ge=1, description="tries per grading round before unparsed")
    rubric_order: RubricOrder = Field(
        "fixed",
        description="the order grading prompts list the criteria in: fixed, or shuffled "
        "(seeded, per grading round; for the audit's rubric-order check)",
    )
    naming_penalty: bool = Field(True, description="zero the skills named in the text")
    split: SplitConfig | None = Field(
        None, description="evaluate on one side of a train/held-out split"
    )
    spread: SpreadTag | None = Field(
        None, description="set by `skillmix spread`: the spread and format variant of this run"
    )

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
        Settings added later count only when they differ from their default, so the runs
        made before them keep their ids.
        """
        later = {"rubric_order"} if self.rubric_order == "fixed" else set()
        later |= {"spread"} if self.spread is None else set()
        payload = {
            **self.model_dump(mode="json", exclude={"catalog", "templates", *later}),
            "catalog_hash": catalog_hash,
            "template_version": template_version,
        }
        blob = json.dumps(payload, sort_keys=True)
        return "run-" + hashlib.sha256(blob.encode()).hexdigest()[:12]

    @classmethod
    def from_sources(
        cls,
        flags: Mapping[str, Any] | None = None,
        file: str | Path | Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> RunConfig:
        """The config that flags, a config file and defaults give, in that order of precedence.

        All three are keyed by the names of `CONFIG_KEYS` (or their aliases), and a value
        of None is not given. `file` is a TOML/YAML path or settings already read from one;
        `defaults` stand in for RunConfig's own (SFT data defaults to other k values). The
        same effective settings give the same config and run id whichever source set them.
        Raises `InputError`, naming the key as the user wrote it (see `run_config`).
        """
        # Here rather than at the top: `sources` builds on this module's models.
        from skillmix.config.sources import load_config_file, run_config

        if isinstance(file, (str, Path)):
            return run_config(load_config_file(file), flags, defaults=defaults, source=str(file))
        return run_config(file, flags, defaults=defaults)


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
    max_tokens = decoding.get("max_tokens")
    return f"{text}, {max_tokens if max_tokens is not None else 'unknown'} max tokens"
