"""The six checks of the audit, each from the shared context to its draft findings."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from skillmix.scoring.audit.common import (
    CONSISTENCY_LIMIT,
    CRITERION_GROUPS,
    NAN,
    RESAMPLES,
    WORDS_PER_UNIT,
    Positions,
)
from skillmix.scoring.audit.estimation import Design, conditional_slope, ratio_estimate
from skillmix.scoring.audit.findings import Finding, JudgeRange
from skillmix.scoring.audit.runs import (
    AuditRun,
    Context,
    Outcome,
    criterion_group,
    make_draft,
    verdict_met,
)
from skillmix.scoring.audit.wording import (
    say_consistency,
    say_length,
    say_leniency,
    say_range,
    say_rubric,
    say_self_preference,
)
from skillmix.scoring.judges import judge_agreement
from skillmix.scoring.metrics import METRICS, majority_vote
from skillmix.scoring.results import RunScores
from skillmix.scoring.stats import (
    Estimate,
    bootstrap_estimate,
    cluster_bootstrap_totals,
    clustered_mcnemar_p,
    f_sf,
)
from skillmix.store import ItemRow


def check_consistency(ctx: Context) -> Outcome:
    runs = [run for run in ctx.runs if run.grading_rounds >= 2]
    if not runs:
        return Outcome(
            cannot_tell=[
                "One grading round per generation: consistency between rounds cannot be "
                "measured (grade with 3 grading rounds)."
            ]
        )
    sums: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(dict)
    for run in runs:
        for (item, _, judge), rounds in run.rounds.items():
            for a, b in itertools.combinations(rounds, 2):
                for criterion in a.keys() & b.keys():
                    group = criterion_group(criterion)
                    if group is None:
                        continue
                    differ = min(1.0, abs(float(a[criterion]) - float(b[criterion])))
                    for key in (group, "all"):
                        cell = sums[(judge, key)].setdefault(item, [0.0, 0.0])
                        cell[0] += differ
                        cell[1] += 1
    if not sums:
        return Outcome(
            cannot_tell=[
                "No generation has two parsed grading rounds: consistency cannot be measured."
            ]
        )
    outcome = Outcome()
    for judge, group, per_item in _judge_groups(ctx, sums):
        pairs = int(sum(cell[1] for cell in per_item.values()))
        estimate = ratio_estimate(
            per_item,
            lambda t: t[:, 0] / t[:, 1],
            pairs,
            ctx,
            null=CONSISTENCY_LIMIT,
            alternative="greater",
        )
        outcome.drafts.append(
            make_draft(
                "consistency",
                judge,
                group,
                estimate,
                test=f"one-sided t test of a flip rate above {CONSISTENCY_LIMIT:.0%} with "
                "the bootstrap standard error; cluster bootstrap over items",
                n_label="verdict pairs",
                items=len(per_item),
                words=say_consistency,
                null=CONSISTENCY_LIMIT,
                alternative="greater",
            )
        )
    return outcome


def check_judge_range(ctx: Context) -> Outcome:
    if not ctx.multi_judge_runs:
        return Outcome(
            cannot_tell=[
                "One judge: no range across judges and no self-preference test "
                "(grade with two or more judges)."
            ]
        )
    outcome = Outcome()
    for run in ctx.multi_judge_runs:
        scores = run.scores
        judges = scores.judges
        outcome.ranges.extend(_ranges(run.id, scores))
        by_item: dict[str, dict[str, Any]] = defaultdict(dict)
        for result in scores.items:
            if result.scores is not None:
                by_item[result.item_id][result.judge] = result.scores
        complete = [s for _, s in sorted(by_item.items()) if all(j in s for j in judges)]
        if not complete:
            continue
        for metric in METRICS:
            table = np.array([[getattr(s[j], metric) for j in judges] for s in complete])
            means = dict(zip(judges, table.mean(axis=0).tolist(), strict=True))
            estimate = _range_estimate(table, ctx)
            outcome.drafts.append(
                make_draft(
                    "judge_range",
                    "",
                    metric,
                    estimate,
                    test="Hotelling's T-squared test that all judges' means are equal, "
                    "paired by item; range interval by cluster bootstrap over items",
                    n_label="items",
                    items=len(complete),
                    words=say_range(means),
                    run_id=run.id,
                )
            )
    return outcome


def _ranges(run_id: str, scores: RunScores) -> list[JudgeRange]:
    judges = scores.judges
    ranges = []
    for k in sorted({r.k for r in scores.items}):
        at_k = replace(scores, items=[r for r in scores.items if r.k == k])
        agreement = next((row for row in judge_agreement(at_k) if row.criterion == "all"), None)
        kappa = alpha = NAN
        if agreement is not None:
            if agreement.statistic == "cohen_kappa":
                kappa = agreement.value
            else:
                alpha = agreement.value
        for metric in METRICS:
            by_judge: dict[str, float] = {}
            for judge in judges:
                values = [
                    getattr(r.scores, metric)
                    for r in at_k.items
                    if r.judge == judge and r.scores is not None
                ]
                if values:
                    by_judge[judge] = sum(values) / len(values)
            if len(by_judge) >= 2:
                ranges.append(
                    JudgeRange(
                        metric,
                        k,
                        min(by_judge.values()),
                        max(by_judge.values()),
                        by_judge,
                        kappa,
                        alpha,
                        run_id,
                    )
                )
    return ranges


def _range_estimate(table: np.ndarray, ctx: Context) -> Estimate:
    """Range of the column means of items x judges, with the test that they are equal."""
    n, judges = table.shape
    means = table.mean(axis=0)
    value = float(means.max() - means.min())
    totals = np.hstack([table, np.ones((n, 1))])
    boot = cluster_bootstrap_totals(totals, resamples=RESAMPLES, seed=ctx.seed)
    boot_means = boot[:, :judges] / boot[:, judges:]
    replicates = boot_means.max(axis=1) - boot_means.min(axis=1)
    estimate = bootstrap_estimate(value, replicates, n, level=ctx.level, clusters=n)
    differences = table[:, 1:] - table[:, :1]
    p = 1.0
    if n >= 2:
        mean_diff = differences.mean(axis=0)
        covariance = np.atleast_2d(np.cov(differences, rowvar=False))
        rank = int(np.linalg.matrix_rank(covariance, tol=1e-12))
        if rank and n > rank:
            # Hotelling's T^2 of the paired differences, read as F(rank, n - rank)
            t2 = n * float(mean_diff @ np.linalg.pinv(covariance, rcond=1e-12) @ mean_diff)
            p = f_sf(t2 * (n - rank) / (rank * (n - 1)), rank, n - rank)
        elif np.any(np.abs(mean_diff) > 0):
            p = 0.0
    return replace(estimate, p=p)


def check_leniency(ctx: Context) -> Outcome:
    reviewed = [run for run in ctx.runs if run.humans]
    if not reviewed:
        ids = " ".join(run.id for run in ctx.runs)
        return Outcome(
            cannot_tell=[f"No human review: leniency cannot be measured (skillmix review {ids})."]
        )
    sums: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(dict)
    for run in reviewed:
        for (item, gen_round, judge), rounds in run.rounds.items():
            voted = majority_vote(rounds) or {}
            for criterion, value in voted.items():
                group = criterion_group(criterion)
                human = run.humans.get((item, gen_round, criterion))
                if group is None or human is None:
                    continue
                for key in (group, "all"):
                    cell = sums[(judge, key)].setdefault(item, [0.0, 0.0, 0.0])
                    cell[0] += value
                    cell[1] += human
                    cell[2] += 1
    if not sums:
        return Outcome(
            cannot_tell=[
                "The human verdicts cover no criterion a judge graded: leniency cannot be measured."
            ]
        )
    outcome = Outcome()
    for judge, group, per_item in _judge_groups(ctx, sums):
        units = int(sum(cell[2] for cell in per_item.values()))
        estimate = ratio_estimate(per_item, lambda t: (t[:, 0] - t[:, 1]) / t[:, 2], units, ctx)
        differences = [judged - human for judged, human, _ in per_item.values()]
        estimate = replace(estimate, p=clustered_mcnemar_p(differences))
        outcome.drafts.append(
            make_draft(
                "leniency",
                judge,
                group,
                estimate,
                test="judge minus human pass rate on the same units: McNemar's test "
                "clustered by item, interval by cluster bootstrap over items",
                n_label="reviewed units",
                items=len(per_item),
                words=say_leniency,
            )
        )
    return outcome


def _text_scores(run: AuditRun) -> dict[tuple[str, int], dict[str, float]]:
    """(item id, generation round) -> judge -> its mean verdict over rounds and criteria."""
    scores: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for (item, gen_round, judge), rounds in run.rounds.items():
        values = [
            float(v)
            for verdicts in rounds
            for c, v in verdicts.items()
            if criterion_group(c) is not None
        ]
        if values:
            scores[(item, gen_round)][judge] = sum(values) / len(values)
    return scores


def check_self_preference(ctx: Context) -> Outcome:
    runs = ctx.multi_judge_runs
    if not runs:
        return Outcome()  # said by check_judge_range: "One judge: ... no self-preference test"
    students = {ctx.family(run.student) for run in runs}
    if len(students) < 2:
        return Outcome(
            cannot_tell=[
                f"Students of one model family ({', '.join(sorted(students))}): "
                "self-preference needs runs of students from two families graded by the "
                "same judges."
            ]
        )
    text_scores = {run.id: _text_scores(run) for run in runs}
    outcome = Outcome()
    for judge in ctx.judges:
        family = ctx.family(judge)
        if family not in students:
            continue
        others = [j for j in ctx.judges if ctx.family(j) != family]
        per_item: dict[str, list[float]] = {}
        texts = 0
        for run in runs:
            own = ctx.family(run.student) == family
            for (item, _), by_judge in text_scores[run.id].items():
                rivals = [by_judge[o] for o in others if o in by_judge]
                if judge not in by_judge or not rivals:
                    continue
                cell = per_item.setdefault(item, [0.0, 0.0, 0.0, 0.0])
                offset = 0 if own else 2
                cell[offset] += by_judge[judge] - sum(rivals) / len(rivals)
                cell[offset + 1] += 1
                texts += 1
        totals = np.array(list(per_item.values())) if per_item else np.zeros((0, 4))
        if not per_item or totals[:, 1].sum() == 0 or totals[:, 3].sum() == 0:
            continue
        estimate = ratio_estimate(
            per_item, lambda t: t[:, 0] / t[:, 1] - t[:, 2] / t[:, 3], len(per_item), ctx
        )
        outcome.drafts.append(
            make_draft(
                "self_preference",
                judge,
                "all",
                estimate,
                test=f"difference in differences over {texts} texts, t test with the "
                "bootstrap standard error; cluster bootstrap over items",
                n_label="items",
                items=len(per_item),
                words=say_self_preference(family),
            )
        )
    if not outcome.drafts:
        judges = ", ".join(sorted({ctx.family(j) for j in ctx.judges}))
        outcome.cannot_tell.append(
            f"No judge shares a model family with a student (judges: {judges}; students: "
            f"{', '.join(sorted(students))}), or no other-family judge graded the same "
            "texts: self-preference cannot be measured (name model families to group them)."
        )
    return outcome


def check_length_bias(ctx: Context) -> Outcome:
    runs = [run for run in ctx.runs if run.generation_rounds >= 2]
    if not runs:
        return Outcome(
            cannot_tell=[
                "One generation per item: the effect of length cannot be told apart from the "
                "item (generate 3 rounds per item)."
            ]
        )
    designs: dict[str, Design] = defaultdict(Design)
    for run in runs:
        for g in run.grades:
            words = run.words.get((g["item_id"], g["gen_round"]))
            if words is None or g["verdicts"] is None:
                continue
            design = designs[g["judge"]]
            for criterion, value in g["verdicts"].items():
                if criterion_group(criterion) is not None:
                    stratum = (run.id, g["item_id"], criterion, g["grade_round"])
                    design.add(verdict_met(value), words / WORDS_PER_UNIT, stratum, g["item_id"])
    return _slopes(
        ctx,
        designs,
        check="length_bias",
        test=f"conditional logit by item, criterion and grading round (log-odds per "
        f"{WORDS_PER_UNIT} words): score test and Wald interval, clustered by item",
        words=say_length,
        nothing="Answers to the same item never differ in length where a verdict differs: "
        "length bias cannot be measured",
    )


def _fixed_order(
    config: Mapping[str, Any], item: ItemRow, gen_round: int, judge: str, grade_round: int
) -> dict[str, int] | None:
    return None


def default_positions() -> Positions:
    """`protocol.rubric_order.rubric_positions`, or "always fixed" where it does not exist."""
    try:
        from skillmix.protocol.rubric_order import rubric_positions
    except ImportError:
        return _fixed_order
    return rubric_positions


def check_rubric_order(ctx: Context) -> Outcome:
    designs: dict[str, Design] = defaultdict(Design)
    shuffled = 0
    for run in ctx.runs:
        first = run.first_item
        judges = run.judges
        if first is None or not judges or ctx.positions(run.config, first, 0, judges[0], 0) is None:
            continue
        shuffled += 1
        for g in run.grades:
            item = run.items.get(g["item_id"])
            if item is None or g["verdicts"] is None:
                continue
            shown = ctx.positions(run.config, item, g["gen_round"], g["judge"], g["grade_round"])
            last = max(shown.values(), default=0) if shown else 0
            if not shown or last <= 0:
                continue
            design = designs[g["judge"]]
            for criterion, value in g["verdicts"].items():
                if criterion_group(criterion) is None or criterion not in shown:
                    continue
                text: tuple[Any, ...] = (g["gen_round"],) if run.grading_rounds >= 2 else ()
                stratum = (run.id, g["item_id"], criterion, *text)
                design.add(verdict_met(value), shown[criterion] / last, stratum, g["item_id"])
    if not shuffled:
        return Outcome(
            cannot_tell=[
                "Rubric shown in a fixed order: rubric-order bias cannot be measured "
                "(grade with --rubric-order shuffled)."
            ]
        )
    return _slopes(
        ctx,
        designs,
        check="rubric_order",
        test="conditional logit by text and criterion (log-odds last vs first position): "
        "score test and Wald interval, clustered by item",
        words=say_rubric,
        nothing="No verdict changed between grading rounds with different rubric orders: "
        "position moved no verdict that can be seen",
    )


def _slopes(
    ctx: Context,
    designs: Mapping[str, Design],
    *,
    check: str,
    test: str,
    words: Callable[[Finding], str],
    nothing: str,
) -> Outcome:
    outcome = Outcome()
    for judge in ctx.judges:
        design = designs.get(judge)
        slope = conditional_slope(design, ctx.level) if design else None
        if slope is None:
            if design:
                outcome.cannot_tell.append(f"{nothing} for {judge}.")
            continue
        outcome.drafts.append(
            make_draft(
                check,
                judge,
                "all",
                slope.estimate,
                test=test,
                n_label="verdicts",
                items=slope.items,
                words=words,
            )
        )
    return outcome


def _judge_groups(
    ctx: Context, sums: Mapping[tuple[str, str], dict[Any, list[float]]]
) -> Iterator[tuple[str, str, dict[Any, list[float]]]]:
    """(judge, criterion group, per-item sums) for every judge and group that has any."""
    for judge in ctx.judges:
        for group in CRITERION_GROUPS:
            per_item = sums.get((judge, group))
            if per_item:
                yield judge, group, per_item
