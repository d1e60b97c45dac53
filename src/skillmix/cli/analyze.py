"""`skillmix analyze RUN...`: what the scores say about skills (difficulty, the composition
law, pair interactions, novelty); a thin shell over `skillmix.scoring.skills`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from skillmix.cli._common import UserError, console, open_store, store_option
from skillmix.jsonsafe import finite
from skillmix.terminal import escaped

if TYPE_CHECKING:
    from skillmix.report.layout import Cell
    from skillmix.report.names import ModelNames
    from skillmix.scoring.skills import (
        CompositionLaw,
        CorpusFrequencies,
        DifficultyFit,
        Novelty,
        PairInteractions,
        SkillAnalysis,
        SkillDifficulty,
    )
    from skillmix.scoring.stats import Estimate


@click.command()
@click.argument("run_ids", nargs=-1, required=True)
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON.")
@click.option(
    "--min-pair-count",
    default=5,
    show_default=True,
    type=click.IntRange(min=2),
    help="Test a skill pair only when at least this many graded texts asked for both.",
)
@click.option(
    "--top",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many of the hardest and of the easiest skills to list.",
)
@click.option(
    "--frequencies",
    type=click.Path(exists=True),
    help="CSV kind,id,frequency (from `catalog filter`) for the corpus bound on novelty.",
)
@click.option("--corpus-size", type=click.IntRange(min=1), help="Number of texts in that corpus.")
def analyze(
    run_ids: tuple[str, ...],
    store_path: str,
    as_json: bool,
    min_pair_count: int,
    top: int,
    frequencies: str | None,
    corpus_size: int | None,
) -> None:
    """What the scores of stored runs say about skills.

    RUN_ID is a run id from `skillmix runs` or a unique start of one; several runs are
    fitted together, one student per run. Shows each skill's difficulty b (a logistic
    model P(met) = σ(θ_student − b_skill − γ·(k−1)) per judge, 95% intervals), the
    difficulty of each category, the composition law (all skills met at each k against
    independent skills, and observed(k) / observed(1)^k), skill pairs that are harder
    or easier together than independence predicts (Benjamini-Hochberg, 5% false
    discovery rate), and how much of the C(N,k)·T item space the run covered. Notes
    say what the runs cannot tell (one k, no k = 1, too few texts per pair).
    """
    from skillmix.scoring.skills import analyze_runs

    corpus = _corpus(frequencies, corpus_size)
    store = open_store(store_path, read_only=True)
    analysis = analyze_runs(store, run_ids, min_pair_count=min_pair_count, corpus=corpus)
    if as_json:
        click.echo(json.dumps(finite(analysis.to_dict()), indent=2))
        return
    _render(analysis, top)


def _corpus(frequencies: str | None, corpus_size: int | None) -> CorpusFrequencies | None:
    from skillmix.analytics.frequency import read_frequencies
    from skillmix.scoring.skills import CorpusFrequencies

    if bool(frequencies) != bool(corpus_size):
        raise UserError("the corpus bound needs both --frequencies and --corpus-size")
    if not frequencies or not corpus_size:
        return None
    skills, topics = read_frequencies(frequencies)
    return CorpusFrequencies(skills, topics, corpus_size)


# --- on the terminal -------------------------------------------------------------------------


def _render(analysis: SkillAnalysis, top: int) -> None:
    from skillmix.report.names import ModelNames

    names = ModelNames()
    for fit in analysis.difficulty:
        _render_difficulty(fit, top, names)
    for law in analysis.composition:
        _render_composition(law, names)
    for pairs in analysis.pairs:
        _render_pairs(pairs, names)
    for novelty in analysis.novelty:
        _render_novelty(novelty)
    for note in analysis.limits:
        console.print(f"[dim]note:[/] {escaped(note)}", highlight=False, soft_wrap=True)
    for note in names.footnotes():
        console.print(escaped(note), style="dim", highlight=False)


def _iv(e: Estimate, digits: int = 2) -> str:
    if e.value != e.value:
        return "—"
    return f"{e.value:.{digits}f} [{e.low:.{digits}f},{e.high:.{digits}f}]"


def _render_difficulty(fit: DifficultyFit, top: int, names: ModelNames) -> None:
    from skillmix.report.layout import Column, print_records

    judge = names(fit.judge)
    gamma = (
        "one k: no per-skill cost"
        if fit.per_extra_skill is None
        else f"each extra skill costs γ = {_iv(fit.per_extra_skill)} logits"
    )
    print_records(
        console,
        [Column("run"), Column("student"), Column("ability θ", justify="right")],
        ([s.run_id, names(s.student), _iv(s.ability)] for s in fit.students),
        title=f"Skill difficulty, judge {judge}: {fit.observations} graded (text, skill) pairs",
        caption=f"{gamma}; b = 0 is a skill of average difficulty, higher is harder",
    )
    columns = [
        Column("skill", wrap=True),
        Column("category"),
        Column("b", justify="right"),
        Column("success", justify="right"),
        Column("texts", justify="right"),
    ]

    def rows(skills: Sequence[SkillDifficulty]) -> list[list[Cell]]:
        return [
            [
                s.name,
                s.category,
                _iv(s.difficulty),
                f"{s.success:.2f}",
                f"{s.difficulty.n}{' *' if s.sparse else ''}",
            ]
            for s in skills
        ]

    shown = min(top, len(fit.skills))
    sparse = "; * fewer than 5 texts: mostly the prior" if any(s.sparse for s in fit.skills) else ""
    print_records(
        console,
        columns,
        rows(fit.skills[:shown]),
        title=f"Hardest {shown} of {len(fit.skills)} skills",
        caption=f"b with its 95% interval{sparse}",
    )
    if len(fit.skills) > shown:
        easiest = list(reversed(fit.skills[-shown:]))
        print_records(console, columns, rows(easiest), title=f"Easiest {shown} skills")
    print_records(
        console,
        [
            Column("category"),
            Column("skills", justify="right"),
            Column("b", justify="right"),
            Column("success", justify="right"),
        ],
        (
            [c.category, str(c.skills), _iv(c.difficulty), f"{c.success:.2f}"]
            for c in fit.categories
        ),
        title="Categories, hardest first",
        caption="one b per category (its skills share it), same scale as the skills",
    )


def _render_composition(law: CompositionLaw, names: ModelNames) -> None:
    from skillmix.report.layout import Column, print_records

    def cell(e: Estimate | None) -> str:
        return "—" if e is None else _iv(e)

    print_records(
        console,
        [
            Column("k", justify="right"),
            Column("texts", justify="right"),
            Column("all met", justify="right"),
            Column("independent", justify="right"),
            Column("ratio", justify="right"),
            Column("vs obs(1)^k", justify="right"),
        ],
        (
            [
                str(r.k),
                str(r.observed.n),
                _iv(r.observed),
                cell(r.predicted),
                cell(r.ratio),
                cell(r.power_ratio),
            ]
            for r in law.rows
        ),
        title=f"Composition law, run {law.run_id} (judge {names(law.judge)})",
        caption=f"all met: texts with every skill met; independent: the same if skills "
        f"succeeded independently, at {law.predicted_from}; ratio: all met / independent; "
        f"vs obs(1)^k: all met / (all met at k = 1)^k; 95% intervals "
        f"({law.resamples} bootstrap resamples of items)",
    )


def _render_pairs(pairs: PairInteractions, names: ModelNames) -> None:
    from skillmix.report.layout import Column, print_records

    flagged = pairs.flagged
    summary = (
        f"{len(pairs.tested)} pair(s) tested (graded together on ≥ {pairs.min_count} texts), "
        f"{pairs.untested} below that; {len(flagged)} flagged at a {pairs.fdr:.0%} false "
        "discovery rate"
    )
    title = f"Skill pairs, run {pairs.run_id} (judge {names(pairs.judge)})"
    if not flagged:
        console.print(f"[bold]{escaped(title)}[/]: {escaped(summary)}", highlight=False)
        return
    print_records(
        console,
        [
            Column("skills", wrap=True),
            Column("texts", justify="right"),
            Column("both met", justify="right"),
            Column("lift", justify="right"),
            Column("q", justify="right"),
            Column("effect"),
        ],
        (
            [
                " + ".join(p.names),
                str(p.texts),
                str(p.both),
                _iv(p.lift),
                f"{p.q:.3g}",
                p.direction,
            ]
            for p in flagged
        ),
        title=title,
        caption=f"lift = P(both met) / (P(a) P(b)), 95% interval; q: BH-adjusted p; {summary}",
    )


def _render_novelty(novelty: Novelty) -> None:
    from skillmix.report.layout import Column, print_records

    bound = novelty.corpus_size is not None
    columns = [
        Column("k", justify="right"),
        Column("items", justify="right"),
        Column("distinct", justify="right"),
        Column("C(N,k)·T", justify="right"),
        Column("share covered", justify="right"),
    ]
    if bound:
        columns += [Column(f"in {novelty.corpus_size:,} texts (bound)", justify="right")]
    rows = []
    for r in novelty.rows:
        row = [str(r.k), str(r.items), str(r.distinct), f"{r.space:,}", f"{r.share:.3g}"]
        if bound and r.corpus_bound is not None:
            row.append(f"{r.corpus_bound:,.1f} ({r.corpus_share:.2%} of items)")
        rows.append(row)
    print_records(
        console,
        columns,
        rows,
        title=f"Novelty, run {novelty.run_id}: N={novelty.skills} skills, "
        f"T={novelty.topics} topics ({novelty.catalog})",
    )
