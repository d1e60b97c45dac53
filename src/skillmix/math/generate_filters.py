"""The automatic filters of `math generate` (pure, apart from math-verify).

Every generated question goes through the same filters, in this order, and each one's
outcome is recorded with its reason (`FilterOutcome`), passed or not:

1. `question`: the teacher wrote a question that can be read (reason `no-question`).
2. `critique`: the teacher's last critique says the question is valid, solvable and needs
   both skills (`invalid`, `unsolvable`, `skill-not-needed`). A critique that could not be
   read is *undecided*: it neither passes nor rejects, and the reviewer is told.
3. `answer`: the solution states a final answer (`\\boxed{}`) that math-verify can parse
   (`answer-unparsed`).
4. `pool`: the question is not a near-duplicate of a pool question (`pool-duplicate`).
5. `distinct`: nor of an earlier candidate of the run that passed 1-4 (`repeat`).
6. `resolve`: enough independent solves (the verifier, or the teacher at other seeds, in
   fresh conversations) reach the written answer, by math-verify (`resolve-disagrees`).

Filters 1-5 cost no model call; 6 runs only for questions that pass them all. Near-
duplicates are found as `leak_check` finds them between train and test questions:
Jaccard similarity of word 3-gram sets (symbols count as words, so "2 + 3" is not
"2 - 3"), every pair at or above the threshold found exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from skillmix.math.answers import check_answer, is_prose
from skillmix.math.problems import MathProblem, leak_check, word_shingles

Outcome = Literal["pass", "fail", "undecided", "not-run"]
FILTERS = ("question", "critique", "answer", "pool", "distinct", "resolve")
# Reason code -> what it means (the data card's rejection table and the review page).
REASONS = {
    "no-question": "the teacher wrote no readable question",
    "invalid": "its critique found the question not valid (ill-posed or ambiguous)",
    "unsolvable": "its critique found the question unsolvable or the solution wrong",
    "skill-not-needed": "its critique found one of the two skills not needed",
    "answer-unparsed": "the solution states no final answer that math-verify can parse",
    "pool-duplicate": "near-duplicate of a pool question",
    "repeat": "near-duplicate of an earlier generated question",
    "resolve-disagrees": "too few independent solves agree with the written answer",
}
SIMILARITY_METHOD = (
    "Jaccard similarity of word 3-gram sets (symbols as words), every pair at or above "
    "the threshold found exactly (prefix filtering)"
)


@dataclass(frozen=True)
class FilterOutcome:
    """One filter's verdict on one question: `reason` is a code of `REASONS` when it
    failed, `detail` says why in words (also why it passed, was undecided or not run)."""

    name: str
    outcome: Outcome
    reason: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FilterOutcome:
        return cls(**data)


def question_filter(question: str) -> FilterOutcome:
    if question.strip():
        return FilterOutcome("question", "pass")
    return FilterOutcome(
        "question", "fail", "no-question", "no question could be read from the teacher's reply"
    )


def critique_filter(
    status: str,
    failures: Sequence[str],
    *,
    problems: str = "",
    unneeded: Sequence[str] = (),
    why_unparsed: str = "",
) -> FilterOutcome:
    """The last critique's verdict: `status` parsed or unparsed, `failures` its reason
    codes (empty: it passed), `unneeded` the names of skills it found not needed."""
    if status != "parsed":
        return FilterOutcome(
            "critique",
            "undecided",
            detail=f"the critique could not be read ({why_unparsed or status}): left to the "
            "reviewer",
        )
    if not failures:
        return FilterOutcome("critique", "pass")
    parts = [REASONS[f] for f in failures]
    if unneeded:
        parts.append("not needed: " + ", ".join(unneeded))
    if problems:
        parts.append(f"the critique says: {problems}")
    return FilterOutcome("critique", "fail", failures[0], "; ".join(parts))


def answer_problem(answer: str | None) -> str:
    """Why math-verify cannot check `answer` (the solution's final answer), or ""."""
    if answer is None or not answer.strip():
        return "the solution states no final answer (\\boxed{...})"
    if is_prose(answer):
        return f"the final answer '{answer}' is words, which math-verify cannot check"
    check = check_answer(f"\\boxed{{{answer}}}", answer)
    if check.method != "math-verify" or not check.correct:
        return f"math-verify cannot parse the final answer '{answer}'"
    return ""


def answer_filter(answer: str | None) -> FilterOutcome:
    problem = answer_problem(answer)
    if problem:
        return FilterOutcome("answer", "fail", "answer-unparsed", problem)
    return FilterOutcome("answer", "pass", detail=f"final answer {answer}")


def similarity(a: str, b: str) -> float:
    """The Jaccard similarity of two questions' word 3-gram sets (as `leak_check` sees them)."""
    x, y = word_shingles(a), word_shingles(b)
    union = len(x | y)
    return len(x & y) / union if union else 1.0


def pool_matches(
    questions: Mapping[str, str], pool: Sequence[MathProblem], threshold: float
) -> dict[str, tuple[str, float]]:
    """Candidate id -> (the most similar pool question's id, similarity) for each candidate
    question at or above `threshold` with some pool question."""
    candidates = [MathProblem(cid, text, "") for cid, text in questions.items()]
    texts = {p.id: p.question for p in pool}
    best: dict[str, tuple[str, float]] = {}
    for pool_id, cid in leak_check(pool, candidates, threshold=threshold):
        score = similarity(texts[pool_id], questions[cid])
        if cid not in best or score > best[cid][1]:
            best[cid] = (pool_id, score)
    return best


def pool_filter(
    match: tuple[str, float] | None, threshold: float, pool_name: str | None
) -> FilterOutcome:
    if pool_name is None:
        return FilterOutcome("pool", "not-run", detail="no pool of questions was given (--pool)")
    if match is None:
        return FilterOutcome(
            "pool", "pass", detail=f"no question of {pool_name} at Jaccard >= {threshold:g}"
        )
    pool_id, score = match
    return FilterOutcome(
        "pool",
        "fail",
        "pool-duplicate",
        f"Jaccard {score:.2f} >= {threshold:g} with pool question {pool_id}",
    )


def duplicate_candidates(
    questions: Sequence[tuple[str, str]], threshold: float
) -> dict[str, tuple[str, float]]:
    """Candidate id -> (the earlier candidate it repeats, similarity), for (id, question)
    pairs in run order. A question repeats the first earlier one that is not itself a
    repeat and is at or above `threshold`."""
    problems = [MathProblem(cid, text, "") for cid, text in questions]
    order = {cid: i for i, (cid, _) in enumerate(questions)}
    text = dict(questions)
    near: dict[str, list[str]] = {}
    for a, b in leak_check(problems, problems, threshold=threshold):
        if order[a] < order[b]:
            near.setdefault(b, []).append(a)
    repeats: dict[str, tuple[str, float]] = {}
    for cid, _ in questions:
        earlier = sorted((a for a in near.get(cid, ()) if a not in repeats), key=order.__getitem__)
        if earlier:
            repeats[cid] = (earlier[0], similarity(text[earlier[0]], text[cid]))
    return repeats


def distinct_filter(repeat: tuple[str, float] | None, threshold: float) -> FilterOutcome:
    if repeat is None:
        return FilterOutcome("distinct", "pass")
    other, score = repeat
    return FilterOutcome(
        "distinct",
        "fail",
        "repeat",
        f"Jaccard {score:.2f} >= {threshold:g} with the earlier candidate {other}",
    )


def resolve_filter(
    agreeing: Sequence[bool], needed: int, answers: Sequence[str | None]
) -> FilterOutcome:
    """`agreeing[i]`: whether independent solve i reached the written answer."""
    n = sum(agreeing)
    shown = ", ".join(
        f"solve {i + 1}: {a if a is not None else 'no final answer'}"
        for i, (a, ok) in enumerate(zip(answers, agreeing, strict=True))
        if not ok
    )
    detail = f"{n} of {len(agreeing)} independent solve(s) agree ({needed} needed)"
    if n >= needed:
        return FilterOutcome("resolve", "pass", detail=detail)
    return FilterOutcome(
        "resolve", "fail", "resolve-disagrees", detail + (f"; {shown}" if shown else "")
    )


def not_run(name: str, why: str) -> FilterOutcome:
    return FilterOutcome(name, "not-run", detail=why)


def failed_reasons(outcomes: Sequence[FilterOutcome]) -> tuple[str, ...]:
    """The reason codes of the filters that failed, in filter order."""
    return tuple(o.reason for o in outcomes if o.outcome == "fail")
