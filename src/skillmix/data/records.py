"""One training example with everything needed to trust and trace it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class DataRecord:
    """A chat-format training example and its provenance.

    `messages` is what a trainer consumes ([{"role": "user"|"assistant"|"system",
    "content": ...}]); everything else says where it came from and why it was kept.
    """

    id: str  # stable: derived from the content and its origin, so re-runs give the same ids
    pipeline: str  # "skillmix-sft" | "instruct-skillmix"
    messages: list[dict[str, str]]
    skills: list[str]  # skill ids (SFT) or skill names (Instruct-SkillMix)
    teacher: str  # provider:model that wrote it
    topic: str | None = None  # SFT: the topic
    query_type: str | None = None  # Instruct-SkillMix: the query type
    k: int | None = None
    judge_verdicts: dict[str, Any] = field(default_factory=dict)  # judge -> decided verdicts
    scores: dict[str, float] = field(default_factory=dict)  # e.g. full_marks, skill_fraction
    shirker: bool = False  # a deliberately low-effort response (ablations)
    provenance: dict[str, Any] = field(default_factory=dict)  # run id, catalog hash, templates,
    # seeds, call keys, split, created...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
