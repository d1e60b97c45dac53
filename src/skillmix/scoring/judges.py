"""Agreement between judges, and the "combined" verdict of several judges.

SPEC section 4: when several judges grade the same answers, their agreement is reported
per criterion: Cohen's kappa for two judges, Krippendorff's alpha (nominal) for more.
The unit of comparison is one criterion of one generation round of one item, using each
judge's own verdict (majority over its grading rounds, before the naming penalty, which
would make every judge agree on a named skill). "length" is computed in code, so it is left out.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from skillmix.scoring.metrics import aggregate_generations, score
from skillmix.scoring.results import GenerationScore, ItemResult, RunScores

AgreementStatistic = Literal["cohen_kappa", "krippendorff_alpha"]
AGREEMENT_CRITERIA = ("skills", "topic", "sense", "all")
COMBINED_JUDGE = "combined"

_NAN = float("nan")


def cohen_kappa(a: Sequence[int], b: Sequence[int]) -> float:
    """Cohen's kappa of two coders over the same units (nominal labels).

    kappa = (p_o - p_e) / (1 - p_e), with p_o the observed agreement and p_e the agreement
    expected from each coder's label frequencies. nan for empty input; 1.0 when both
    coders use one and the same label throughout (p_e = p_o = 1).
    """
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa needs paired labels, got {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return _NAN
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[label] * count_b[label] for label in count_a) / (n * n)
    if expected == 1:
        return 1.0 if observed == 1 else _NAN
    return (observed - expected) / (1 - expected)


def _coincidences(units: Sequence[Sequence[int | None]]) -> dict[tuple[int, int], float]:
    """Krippendorff's coincidence matrix o[c, k] over the pairable units.

    Each unit with m >= 2 values adds, for every ordered pair of values from different
    coders, 1 / (m - 1) to o[c, k]; so each pairable value contributes exactly 1 in total.
    """
    matrix: defaultdict[tuple[int, int], float] = defaultdict(float)
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_c - 1) if c == k else n_c * n_k
                if pairs:
                    matrix[(c, k)] += pairs / (m - 1)
    return dict(matrix)


def krippendorff_alpha(units: Sequence[Sequence[int | None]]) -> float:
    """Krippendorff's alpha for nominal data, tolerating missing values.

    Each unit lists the value each coder gave (None = missing); units with fewer than two
    values cannot be paired and are dropped. alpha = 1 - D_o / D_e, computed from the
    coincidence matrix as 1 - (n - 1) * sum_{c!=k} o_ck / sum_{c!=k} n_c n_k.
    nan when no unit is pairable; 1.0 when every pairable value is the same (no
    disagreement observed, none expected).
    """
    matrix = _coincidences(units)
    totals: defaultdict[int, float] = defaultdict(float)
    for (c, _), o in matrix.items():
        totals[c] += o
    n = sum(totals.values())
    if n == 0:
        return _NAN
    observed = sum(o for (c, k), o in matrix.items() if c != k)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    if expected == 0:
        return 1.0
    return 1 - (n - 1) * observed / expected


def _pairwise_agreement(units: Sequence[Sequence[int | None]]) -> float:
    """Share of agreeing pairs in the coincidence matrix (sum o_cc / n); nan if none."""
    matrix = _coincidences(units)
    n = sum(matrix.values())
    if n == 0:
        return _NAN
    return sum(o for (c, k), o in matrix.items() if c == k) / n


def combined_verdicts(per_judge: Mapping[str, Mapping[str, int] | None]) -> dict[str, int] | None:
    """Per-criterion majority across judges: the verdict of several judges together.

    Judges with None (unscored) do not vote, and a judge votes only on the criteria it
    decided; a tie counts as not met; None when no judge voted.
    """
    voting = [v for v in per_judge.values() if v is not None]
    if not voting:
        return None
    criteria = sorted({c for v in voting for c in v})
    combined: dict[str, int] = {}
    for c in criteria:
        votes = [int(v[c]) for v in voting if c in v]
        combined[c] = 1 if 2 * sum(votes) > len(votes) else 0
    return combined


@dataclass(frozen=True)
class AgreementRow:
    """Agreement of a run's judges on one criterion (or pool of criteria).

    units: for Cohen's kappa, the units both judges decided; for Krippendorff's alpha,
    the pairable units (decided by at least two judges). raw_agreement: the share of
    those units where both judges agree (kappa), or the share of agreeing judge pairs
    within units, weighted as in alpha's coincidence matrix (alpha).
    """

    criterion: str  # "skills" (all skill criteria pooled), "topic", "sense" or "all"
    judges: tuple[str, ...]
    statistic: AgreementStatistic
    value: float
    units: int
    raw_agreement: float


def _criterion_group(criterion: str) -> str:
    return "skills" if criterion.startswith("skill:") else criterion


def _decided_by_judge(scores: RunScores) -> dict[str, dict[int, dict[str, GenerationScore]]]:
    """item id -> generation round -> judge -> that judge's generation score."""
    table: dict[str, dict[int, dict[str, GenerationScore]]] = {}
    for result in scores.items:
        rounds = table.setdefault(result.item_id, {})
        for gen in result.generations:
            rounds.setdefault(gen.gen_round, {})[result.judge] = gen
    return table


def _first_results(scores: RunScores) -> dict[str, ItemResult]:
    """One ItemResult per item id (the first judge's), in the run's item order."""
    first: dict[str, ItemResult] = {}
    for result in scores.items:
        first.setdefault(result.item_id, result)
    return first


def judge_agreement(scores: RunScores) -> list[AgreementRow]:
    """Agreement between the run's judges per criterion, as SPEC section 4 reports it.

    One row for each of "skills" (every skill criterion pooled), "topic", "sense" and
    "all" (all of them pooled; "length" is computed in code and left out). Cohen's kappa
    with exactly two judges, over the units both decided; Krippendorff's alpha (nominal)
    with three or more. [] with fewer than two judges.
    """
    judges = tuple(scores.judges)
    if len(judges) < 2:
        return []
    items = _first_results(scores)
    grouped: dict[str, list[list[int | None]]] = {c: [] for c in AGREEMENT_CRITERIA}
    for item_id, rounds in _decided_by_judge(scores).items():
        criteria = [f"skill:{s}" for s in items[item_id].skill_ids] + ["topic", "sense"]
        for by_judge, criterion in itertools.product(rounds.values(), criteria):
            values: list[int | None] = []
            for judge in judges:
                gen = by_judge.get(judge)
                value = gen.voted.get(criterion) if gen and gen.voted else None
                values.append(None if value is None else int(value))
            grouped[_criterion_group(criterion)].append(values)
            grouped["all"].append(values)

    rows = []
    for criterion in AGREEMENT_CRITERIA:
        units = grouped[criterion]
        if len(judges) == 2:
            pairs = [(a, b) for a, b in units if a is not None and b is not None]
            a_values = [a for a, _ in pairs]
            b_values = [b for _, b in pairs]
            raw = sum(a == b for a, b in pairs) / len(pairs) if pairs else _NAN
            rows.append(
                AgreementRow(
                    criterion,
                    judges,
                    "cohen_kappa",
                    cohen_kappa(a_values, b_values),
                    len(pairs),
                    raw,
                )
            )
        else:
            pairable = [u for u in units if sum(v is not None for v in u) >= 2]
            rows.append(
                AgreementRow(
                    criterion,
                    judges,
                    "krippendorff_alpha",
                    krippendorff_alpha(pairable),
                    len(pairable),
                    _pairwise_agreement(pairable),
                )
            )
    return rows


def _combined_penalized(gens: Sequence[GenerationScore], skill_ids: Sequence[str]) -> list[str]:
    """Skills whose combined (pre-penalty) vote was met but the naming penalty removed.

    A judge lists a named skill as penalized exactly when its own vote was 1 before the
    penalty, so the combined pre-penalty vote is the majority of those (tie = not met).
    """
    voting = [g for g in gens if g.decided is not None]
    counts = Counter(s for g in voting for s in g.penalized)
    return [s for s in skill_ids if 2 * counts[s] > len(voting)]


def combined_scores(scores: RunScores) -> list[ItemResult]:
    """Item results of the pseudo-judge "combined": the judges' majority per criterion.

    For each item and generation round the judges' decided verdicts are combined with
    `combined_verdicts` ("length" is taken from the judges, for whom it is identical),
    scored with `metrics.score` and aggregated over generations with the run's rule.
    [] for a run with fewer than two judges.
    """
    if len(scores.judges) < 2:
        return []
    decided = _decided_by_judge(scores)
    results = []
    for item_id, item in _first_results(scores).items():
        skill_criteria = [f"skill:{s}" for s in item.skill_ids]
        generations = []
        for gen_round, by_judge in sorted(decided[item_id].items()):
            verdicts = combined_verdicts({j: g.decided for j, g in by_judge.items()})
            gen_scores = None
            penalized: list[str] = []
            if verdicts is not None:
                lengths = [g.decided.get("length") for g in by_judge.values() if g.decided]
                length = next((v for v in lengths if v is not None), None)
                if length is not None:
                    verdicts["length"] = int(length)
                gen_scores = score(verdicts, skill_criteria)
                penalized = _combined_penalized(list(by_judge.values()), item.skill_ids)
            generations.append(GenerationScore(gen_round, verdicts, gen_scores, penalized))
        results.append(
            ItemResult(
                item_id=item.item_id,
                k=item.k,
                skill_ids=list(item.skill_ids),
                topic_id=item.topic_id,
                judge=COMBINED_JUDGE,
                generations=generations,
                scores=aggregate_generations([g.scores for g in generations], scores.aggregation),
            )
        )
    return results
