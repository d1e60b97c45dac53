"""Where the original scripts' points and ours disagree on the same judge texts.

For an imported run (`skillmix import reference`), every grading round has two readings
of one judge text: ours (`parse_verdict`, by criterion name) and the original scripts'
(their `points_0`, read by position). A *point* is one criterion in one grading round;
each is classed as agreeing, differing, or not read by us (our parser refused the text).
Each difference gets the likeliest cause:

* `sentences`: the sentence-limit point; theirs counted sentences with a regular
  expression, ours with a sentence segmenter;
* `padded`: their list of points was shorter than the rubric, and their aggregation
  filled this criterion with 0;
* `fraction`: one side holds a value other than 0 or 1 (a judge's 0.5);
* `value`: both read a clean value and they differ (their reading goes by row position,
  so a table in another order, or with a row missing, shifts every later value).

Their metrics are also recomputed with their aggregation (a criterion is met when the
rounded mean over grading rounds is 1, ties rounding to 0 as numpy's `rint` does; the
sentence point is theirs; with the naming penalty on, their substring test of the skill
name without its parenthetical part), so that their figure and ours stand side by side.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from skillmix.prompts.rubric import max_sentences
from skillmix.scoring.metrics import METRICS, Scores
from skillmix.scoring.results import RunScores, score_run
from skillmix.store import GenerationRow, GradeRow, ItemRow, ReferencePointRow, Store

CAUSES: dict[str, str] = {
    "unparsed": "our parser refused the judge's text; theirs scored what it found (0 if nothing)",
    "sentences": "sentence limit: their regular expression and our segmenter count differently",
    "padded": "their points list was shorter than the rubric, so this criterion got 0",
    "fraction": "a fractional point (e.g. 0.5) on one side",
    "value": "both read a value and they differ (theirs reads rows by position)",
}
_EPSILON = 1e-9


@dataclass(frozen=True)
class PointDiff:
    """One criterion of one grading round on which the two readings are not the same."""

    item_id: str
    gen_round: int
    judge: str
    grade_round: int
    criterion: str
    ours: float | None  # None: our parser refused the judge's text
    theirs: float
    cause: str
    source: str  # their file and line


@dataclass
class CriterionCounts:
    criterion: str
    points: int = 0
    agree: int = 0
    differ: int = 0
    unparsed: int = 0  # points of judge texts our parser refused


@dataclass
class ReferenceDiff:
    """The comparison of one imported run; see the module docstring."""

    run_id: str
    judge_texts: int
    distinct_judge_texts: int
    parsed: int
    unparsed: int
    criteria: list[CriterionCounts]
    causes: dict[str, int]
    examples: list[PointDiff]
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(c.points for c in self.criteria)

    @property
    def differ(self) -> int:
        return sum(c.differ for c in self.criteria)

    @property
    def unparsed_points(self) -> int:
        return sum(c.unparsed for c in self.criteria)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "judge_texts": self.judge_texts,
            "distinct_judge_texts": self.distinct_judge_texts,
            "parsed": self.parsed,
            "unparsed": self.unparsed,
            "points": self.points,
            "points_differ": self.differ,
            "points_unparsed": self.unparsed_points,
            "criteria": [asdict(c) for c in self.criteria],
            "causes": self.causes,
            "cause_meanings": {c: CAUSES[c] for c in self.causes},
            "examples": [asdict(e) for e in self.examples],
            "metrics": self.metrics,
        }


def reference_diff(
    store: Store, run_id: str, scores: RunScores | None = None, *, examples: int = 6
) -> ReferenceDiff | None:
    """The comparison for a run holding reference points; None for any other run."""
    run = store.get_run(run_id)
    references = store.reference_points(run["id"])
    if not references:
        return None
    scores = scores or score_run(store, run["id"])
    items = {i["item_id"]: i for i in store.items(run["id"])}
    generations = {(g["item_id"], g["round"]): g for g in store.generations(run["id"])}
    grades = {
        (g["item_id"], g["gen_round"], g["judge"], g["grade_round"]): g
        for g in store.grades(run["id"])
    }
    counts, diffs = _compare(references, items, generations, grades)
    causes: dict[str, int] = defaultdict(int)
    for d in diffs:
        causes[d.cause] += 1
    graded = list(grades.values())
    return ReferenceDiff(
        run_id=run["id"],
        judge_texts=len(graded),
        distinct_judge_texts=len({k for g in graded for k in g["call_keys"]}),
        parsed=sum(g["status"] == "parsed" for g in graded),
        unparsed=sum(g["status"] == "unparsed" for g in graded),
        criteria=sorted(counts.values(), key=lambda c: _criterion_order(c.criterion)),
        causes={c: causes[c] for c in CAUSES if causes.get(c)},
        examples=_examples(diffs, examples),
        metrics=_metrics(scores, references, items, generations),
    )


def _compare(
    references: list[ReferencePointRow],
    items: dict[str, ItemRow],
    generations: dict[tuple[str, int], GenerationRow],
    grades: dict[tuple[str, int, str, int], GradeRow],
) -> tuple[dict[str, CriterionCounts], list[PointDiff]]:
    """Every point of every grading round: counted per criterion; each difference listed."""
    counts: dict[str, CriterionCounts] = {}
    diffs: list[PointDiff] = []
    for ref in references:
        item = items[ref["item_id"]]
        gen = generations.get((ref["item_id"], ref["gen_round"]))
        grade = grades.get((ref["item_id"], ref["gen_round"], ref["judge"], ref["grade_round"]))
        verdicts = grade["verdicts"] if grade else None
        for position, (criterion, theirs) in enumerate(ref["points"].items()):
            row = counts.setdefault(criterion, CriterionCounts(criterion))
            row.points += 1
            if criterion == "length":
                ours = None if gen is None else float(gen["sentences"] <= max_sentences(item["k"]))
            else:
                ours = None if verdicts is None else verdicts.get(criterion)
            if ours is not None and abs(float(ours) - theirs) < _EPSILON:
                row.agree += 1
                continue
            if ours is None:
                row.unparsed += 1
                cause = "unparsed"
            else:
                row.differ += 1
                cause = _cause(criterion, float(ours), theirs, padded=position >= ref["given"])
            diffs.append(
                PointDiff(
                    item_id=ref["item_id"],
                    gen_round=ref["gen_round"],
                    judge=ref["judge"],
                    grade_round=ref["grade_round"],
                    criterion=criterion,
                    ours=None if ours is None else float(ours),
                    theirs=theirs,
                    cause=cause,
                    source=ref["source"],
                )
            )
    return counts, diffs


def _cause(criterion: str, ours: float, theirs: float, *, padded: bool) -> str:
    if criterion == "length":
        return "sentences"
    if padded:
        return "padded"
    if ours not in (0.0, 1.0) or theirs not in (0.0, 1.0):
        return "fraction"
    return "value"


def _criterion_order(criterion: str) -> tuple[int, str]:
    rank = {"topic": 1, "sense": 2, "length": 3}
    return (rank.get(criterion, 0), criterion)


def _examples(diffs: Sequence[PointDiff], limit: int) -> list[PointDiff]:
    """A few differences, taking each cause in turn so that every kind is shown."""
    by_cause: dict[str, list[PointDiff]] = defaultdict(list)
    for d in diffs:
        by_cause[d.cause].append(d)
    for cause, queue in by_cause.items():
        # One difference per generation first: a judge text copied into every grading
        # round, or one refused text, would otherwise fill every slot.
        firsts: dict[tuple[str, str, int], PointDiff] = {}
        for d in queue:
            firsts.setdefault((d.judge, d.item_id, d.gen_round), d)
        chosen_first = list(firsts.values())
        by_cause[cause] = chosen_first + [d for d in queue if d not in chosen_first]
    queues = [by_cause[c] for c in CAUSES if by_cause.get(c)]
    chosen: list[PointDiff] = []
    index = 0
    while len(chosen) < limit and any(index < len(q) for q in queues):
        chosen += [q[index] for q in queues if index < len(q)][: limit - len(chosen)]
        index += 1
    return chosen


# --- their aggregation ---------------------------------------------------------------------


def their_scores(
    decided: dict[str, float], skill_criteria: Sequence[str], other: Sequence[str]
) -> Scores:
    """Their three metrics of one generation from decided (rounded) points."""
    k = len(skill_criteria)
    a = sum(decided.get(c, 0.0) for c in skill_criteria)
    b = sum(decided.get(c, 0.0) for c in other)
    return Scores(
        full_marks=float(a + b == k + len(other)),
        all_skills=float(a == k and b >= len(other) - 1),
        skill_fraction=a / k if b == len(other) else 0.0,
    )


def named_by_substring(answer: str, skill_name: str) -> bool:
    """Their naming test: the name without its parenthetical part, as a substring."""
    stem = skill_name.split("(")[0].strip().lower()
    return bool(stem) and stem in answer.strip().lower()


def _metrics(
    scores: RunScores,
    references: list[ReferencePointRow],
    items: dict[str, ItemRow],
    generations: dict[tuple[str, int], GenerationRow],
) -> list[dict[str, Any]]:
    """Per judge and k: our metrics (scored items) and theirs (their aggregation)."""
    penalty = bool(scores.run["config"].get("naming_penalty", True))
    rounds: dict[tuple[str, str, int], list[dict[str, float]]] = defaultdict(list)
    for ref in references:
        rounds[(ref["judge"], ref["item_id"], ref["gen_round"])].append(ref["points"])
    per_item: dict[tuple[str, str], list[Scores]] = defaultdict(list)
    for (judge, item_id, gen_round), points in sorted(rounds.items()):
        item = items[item_id]
        skills = [f"skill:{s}" for s in item["skill_ids"]]
        decided = {
            c: float(round(sum(p.get(c, 0.0) for p in points) / len(points))) for c in points[0]
        }
        gen = generations.get((item_id, gen_round))
        if penalty and gen is not None:
            for skill_id, criterion in zip(item["skill_ids"], skills, strict=True):
                if named_by_substring(gen["answer"], scores.catalog.skill(skill_id).name):
                    decided[criterion] = 0.0
        others = [c for c in points[0] if c not in skills]
        per_item[(judge, item_id)].append(their_scores(decided, skills, others))
    theirs: dict[tuple[str, int], list[Scores]] = defaultdict(list)
    for (judge, item_id), generation_scores in per_item.items():
        best = Scores(
            *(max(v) for v in zip(*(s.as_tuple() for s in generation_scores), strict=True))
        )
        theirs[(judge, items[item_id]["k"])].append(best)
    ours: dict[tuple[str, int], list[Scores]] = defaultdict(list)
    for result in scores.items:
        if result.scores is not None:
            ours[(result.judge, result.k)].append(result.scores)
    rows = []
    for judge, k in sorted(set(theirs) | set(ours)):
        rows.append(
            {
                "judge": judge,
                "k": k,
                "ours": _means(ours.get((judge, k), [])),
                "theirs": _means(theirs.get((judge, k), [])),
            }
        )
    return rows


def _means(values: list[Scores]) -> dict[str, float | int | None]:
    n = len(values)
    out: dict[str, float | int | None] = {"items": n}
    for i, metric in enumerate(METRICS):
        out[metric] = sum(v.as_tuple()[i] for v in values) / n if n else None
    return out
