"""Typed configuration of a run, in one place. Loaded from CLI flags or a TOML/YAML file."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from skillmix.metrics import AGGREGATIONS


class Decoding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(256, ge=1)


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
    templates: str = "v1"
    student_decoding: Decoding = Decoding(temperature=0.7, max_tokens=256)
    judge_decoding: Decoding = Decoding(temperature=0.7, max_tokens=128)
    structured: bool = True
    parse_attempts: int = Field(3, ge=1, description="tries per grading round before unparsed")
    naming_penalty: bool = True
    split: SplitConfig | None = None

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
        """Same config, catalog content and templates: same run (so re-running resumes)."""
        payload = {
            **self.model_dump(mode="json", exclude={"catalog"}),
            "catalog_hash": catalog_hash,
            "template_version": template_version,
        }
        blob = json.dumps(payload, sort_keys=True)
        return "run-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


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
    """Read a TOML or YAML file of RunConfig fields (CLI flags override it)."""
    path = Path(path)
    text = path.read_text()
    data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a table of settings")
    return data.get("run", data)
