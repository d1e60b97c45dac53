"""Reading the audited runs: their grades as verdicts per text, and what every check shares
(the context, a draft finding before the Holm adjustment, a check's outcome)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from skillmix.scoring.audit.common import MIN_ITEMS, NAN, Positions
from skillmix.scoring.audit.families import model_family
from skillmix.scoring.audit.findings import Finding, JudgeRange
from skillmix.scoring.human import human_majority
from skillmix.scoring.results import RunScores, score_run
from skillmix.scoring.stats import Estimate
from skillmix.store import GradeRow, ItemRow, RunRow, Store


def criterion_group(criterion: str) -> str | None:
    """The criterion group of a judge-given criterion; None for "length" (code) and others."""
    if criterion.startswith("skill:"):
        return "skills"
    return criterion if criterion in ("topic", "sense") else None


def verdict_met(value: float) -> int:
    """A round's value as met (1) or not (0): a half point is a tie, not met."""
    return int(float(value) > 0.5)


@dataclass
class AuditRun:
    """One stored run, read lazily: a check that cannot run reads nothing it does not need."""

    store: Store
    row: RunRow

    @property
    def id(self) -> str:
        return self.row["id"]

    @property
    def config(self) -> dict[str, Any]:
        return self.row["config"]

    @property
    def judges(self) -> list[str]:
        return list(self.config.get("judges", ()))

    @property
    def student(self) -> str:
        return str(self.config.get("student", ""))

    @property
    def grading_rounds(self) -> int:
        return int(self.config.get("grading_rounds", 1))

    @property
    def generation_rounds(self) -> int:
        return int(self.config.get("generation_rounds", 1))

    @cached_property
    def grades(self) -> list[GradeRow]:
        """The parsed grading rounds (an unparsed one has no verdicts to audit)."""
        return [g for g in self.store.grades(self.id) if g["verdicts"] is not None]

    @cached_property
    def rounds(self) -> dict[tuple[str, int, str], list[dict[str, float]]]:
        """(item id, generation round, judge) -> its parsed rounds' verdicts, in order."""
        table: dict[tuple[str, int, str], list[dict[str, float]]] = defaultdict(list)
        for g in self.grades:
            if g["verdicts"] is not None:
                table[(g["item_id"], g["gen_round"], g["judge"])].append(g["verdicts"])
        return dict(table)

    @cached_property
    def words(self) -> dict[tuple[str, int], int]:
        """(item id, generation round) -> words in the graded answer."""
        return {
            (g["item_id"], g["round"]): len(g["answer"].split())
            for g in self.store.generations(self.id)
        }

    @cached_property
    def items(self) -> dict[str, ItemRow]:
        return {item["item_id"]: item for item in self.store.items(self.id)}

    @cached_property
    def first_item(self) -> ItemRow | None:
        """The run's first item (read alone: a check may need no other)."""
        if "items" in self.__dict__:
            return next(iter(self.items.values()), None)
        return next(iter(self.store.items(self.id, limit=1)), None)

    @cached_property
    def humans(self) -> dict[tuple[str, int, str], int]:
        return human_majority(self.store.human_verdicts(self.id))

    @cached_property
    def scores(self) -> RunScores:
        return score_run(self.store, self.id)


@dataclass(frozen=True)
class Context:
    runs: list[AuditRun]
    level: float
    seed: int
    families: Mapping[str, str]
    positions: Positions

    def family(self, spec: str) -> str:
        return model_family(spec, self.families)

    @cached_property
    def judges(self) -> list[str]:
        return list(dict.fromkeys(j for run in self.runs for j in run.judges))

    @cached_property
    def multi_judge_runs(self) -> list[AuditRun]:
        return [run for run in self.runs if len(run.judges) >= 2]


@dataclass(frozen=True)
class Draft:
    """A finding before the Holm adjustment, with how to word its verdict once settled."""

    finding: Finding
    words: Callable[[Finding], str]
    alternative: str = "two-sided"  # or "greater" (consistency)


@dataclass
class Outcome:
    drafts: list[Draft] = field(default_factory=list)
    cannot_tell: list[str] = field(default_factory=list)
    ranges: list[JudgeRange] = field(default_factory=list)


def make_draft(
    check: str,
    judge: str,
    criterion: str,
    estimate: Estimate,
    *,
    test: str,
    n_label: str,
    items: int,
    words: Callable[[Finding], str],
    null: float = 0.0,
    run_id: str = "",
    alternative: str = "two-sided",
) -> Draft:
    if items < MIN_ITEMS:
        estimate = replace(estimate, p=NAN)
    finding = Finding(
        check, judge, criterion, estimate, test, n_label, NAN, False, "", run_id, null, items
    )
    return Draft(finding, words, alternative)
