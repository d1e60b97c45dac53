"""The typed configuration of an Instruct-SkillMix run; its hash is the run id."""

from __future__ import annotations

import hashlib
import json
import math

from pydantic import BaseModel, ConfigDict, Field

PIPELINE = "instruct-skillmix"


class InstructConfig(BaseModel):
    """Everything that determines an Instruct-SkillMix dataset; its hash is the run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    teacher: str = "embedded"
    topics: int = Field(8, ge=1, description="topics (domains) to ask for")
    skills_per_topic: int = Field(10, ge=1)
    query_types: int = Field(16, ge=1)
    examples: int = Field(100, ge=0)
    shirker_fraction: float = Field(0.0, ge=0.0, le=1.0)
    dedup_threshold: float = Field(0.8, gt=0.0, le=1.0, description="shingle Jaccard")
    skill_similarity: float = Field(
        0.8, gt=0.0, le=1.0, description="token-set Jaccard at which two skill names are one"
    )
    seed: int = 0
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    list_max_tokens: int = Field(1024, ge=16, description="stage 1 answers")
    max_tokens: int = Field(2048, ge=16, description="each stage 2 turn")
    parse_attempts: int = Field(2, ge=1, description="draws before an answer is unparsed")
    structured: bool = True
    templates: str = "v1"

    def run_id(self, templates_version: str) -> str:
        blob = json.dumps(
            {**self.model_dump(mode="json"), "templates_version": templates_version},
            sort_keys=True,
        )
        return "instruct-" + hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def shirker_count(self) -> int:
        """Exactly this many examples get a shirker response (fraction x examples, rounded)."""
        return math.floor(self.shirker_fraction * self.examples + 0.5)
