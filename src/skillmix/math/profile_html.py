"""The math page's section for `skillmix math profile` (through `math.html`'s section hook).

Importing this module registers the "Missing skills" section: the Missing-Skill-Profile
of one profile run, or of two side by side (two students, or two checkpoints of one),
with the difference of each skill's missing rate and its 95% interval (Newcombe). A
forest plot shows every skill's missing rate with its Wilson interval; the tables, whose
skill names may come from a labelling model, travel in the page's JSON. Every profiled
question enters the question browser with one panel per run: the answer, its grade and
the teacher's verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from skillmix.math.html import (
    Column,
    MathPage,
    Panel,
    Section,
    Table,
    Tag,
    section_view,
    write_page,
)
from skillmix.math.problems import MathDataset, MathProblem
from skillmix.math.profile import DEFAULT_THRESHOLD, SkillProfile, compare_profiles
from skillmix.math.profile_report import MEANINGLESS, ProfileReport, rate_text
from skillmix.report.html.view import PageWarning
from skillmix.report.svg import IntervalRow, interval_plot

RESULT_KEY = "profile"  # this pipeline's entry in `MathPage.results`
RUN_LETTERS = "AB"


@dataclass(frozen=True)
class ProfilePageData:
    """What the section reads: one or two reports, in order, and the flag threshold."""

    reports: tuple[ProfileReport, ...]
    threshold: float = DEFAULT_THRESHOLD


def profile_dataset(reports: Sequence[ProfileReport]) -> MathDataset:
    """The profiled questions of every run, from their `math.problem` records."""
    problems: dict[str, MathProblem] = {}
    concepts: dict[str, str] = {}
    for report in reports:
        asked = {a["question_id"] for a in report.answers}
        for qid, data in report.problems.items():
            if qid not in asked or qid in problems:
                continue
            concepts.update(data.get("concept_texts") or {})
            problems[qid] = MathProblem(
                id=qid,
                question=data["question"],
                answer=data["answer"],
                solution=data.get("solution"),
                category=data.get("category"),
                concepts=tuple(data.get("concepts") or ()),
            )
    name = " / ".join(dict.fromkeys(str(r.config.get("dataset", "")) for r in reports))
    return MathDataset.build(name, "store", list(problems.values()), concepts)


def profile_page(
    reports: Sequence[ProfileReport],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    usage: Sequence[Mapping[str, Any]] = (),
) -> MathPage:
    """The page of one profile run, or of two compared (the second against the first)."""
    if not 1 <= len(reports) <= 2:
        raise ValueError("a profile page shows one or two runs")
    dataset = profile_dataset(reports)
    facts: list[tuple[str, str]] = []
    warnings: list[PageWarning] = []
    for letter, report in zip(RUN_LETTERS, reports, strict=False):
        cfg = report.config
        prefix = f"{letter}: " if len(reports) == 2 else ""
        facts += [
            (f"{prefix}run", f"{report.run_id} ({report.status})"),
            (f"{prefix}student", str(cfg.get("student"))),
            (f"{prefix}teacher", str(cfg.get("teacher"))),
            (
                f"{prefix}questions",
                f"{report.totals.questions} ({cfg.get('part')} part of {cfg.get('dataset')}, "
                f"hash {str(cfg.get('dataset_hash', ''))[:12]})",
            ),
            (
                f"{prefix}skill labels",
                str(cfg.get("labels") or "the dataset's concept annotations"),
            ),
        ]
        for text in report.warnings:
            severe = MEANINGLESS in text or "incomplete" in text
            warnings.append(PageWarning("severe" if severe else "warn", f"{prefix}profile", text))
    if len(reports) == 2:
        a, b = reports
        if a.config.get("dataset_hash") != b.config.get("dataset_hash"):
            warnings.append(
                PageWarning(
                    "warn",
                    "comparison",
                    "the two runs profiled different datasets: their skills may differ in "
                    "meaning and difficulty",
                )
            )
        if a.config.get("labels") != b.config.get("labels"):
            warnings.append(
                PageWarning(
                    "warn",
                    "comparison",
                    "the two runs take their skill labels from different sources: a skill "
                    "of one may not exist in the other",
                )
            )
    students = " vs ".join(str(r.config.get("student")) for r in reports)
    return MathPage(
        title=f"Missing-skill profile: {dataset.name}",
        lede=f"{students}: which skills the wrong answers lack, as judged by the teacher",
        dataset=dataset,
        facts=facts,
        warnings=warnings,
        results={RESULT_KEY: ProfilePageData(tuple(reports), threshold)},
        usage=usage,
    )


def write_profile_page(
    reports: Sequence[ProfileReport],
    path: str | Path,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    usage: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write the page of one or two profile runs to `path`; return the path."""
    return write_page(profile_page(reports, threshold=threshold, usage=usage), path)


# --- the section ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TotalsRow:
    run: str
    questions: int
    correct: int
    wrong: int
    parsed: int
    unparsed: int
    nothing_missing: int
    without_skills: int


@dataclass(frozen=True)
class ProfileView:
    note: str
    svg: Markup | None
    totals: list[TotalsRow]
    compared: bool
    meaningless: bool
    threshold: float


def _cell(skill: SkillProfile | None) -> tuple[str, str] | str:
    if skill is None:
        return "—"
    return (
        rate_text(skill),
        f"{skill.missing} missing of {skill.assessed} assessed ({skill.attempts} questions, "
        f"{skill.failures} wrong, {skill.unparsed} unparsed)",
    )


def _difference(value: float, low: float, high: float) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{value:+.2f} [{low:+.2f}, {high:+.2f}]"


@section_view(order=60)
def missing_skills(page: MathPage) -> Section | None:
    """The profile (or two side by side) and every question's verdicts in the browser."""
    data: ProfilePageData | None = page.results.get(RESULT_KEY)
    if data is None:
        return None
    reports, threshold = data.reports, data.threshold
    two = len(reports) == 2
    names = [f"{letter}" for letter in RUN_LETTERS[: len(reports)]]
    plot_rows = []
    for letter, report in zip(names, reports, strict=True):
        for s in report.skills:
            if not s.assessed:
                continue
            low, high = s.interval
            plot_rows.append(
                IntervalRow(
                    f"{s.skill} · {letter}" if two else s.skill,
                    s.rate,
                    low,
                    high,
                    flagged=s.flagged(threshold),
                    note=f"{s.missing} of {s.assessed}",
                )
            )
    if two:
        plot_rows.sort(key=lambda r: r.label.casefold())
    svg = (
        Markup(
            interval_plot(
                plot_rows,
                element_id="profile-plot",
                title="Missing rate per skill (95% Wilson interval)",
                x_label="share of the questions needing the skill where it was lacking",
                reference=threshold,
            )
        )
        if plot_rows
        else None
    )
    if two:
        columns = [
            Column("skill"),
            *(Column(f"{n}: questions", numeric=True) for n in names),
            *(Column(f"{n}: missing rate [95% CI]", numeric=True) for n in names),
            Column("B - A [95% CI]", numeric=True),
        ]
        rows: list[list[str | tuple[str, str]]] = []
        for d in compare_profiles(reports[0].skills, reports[1].skills):
            mark = " *" if d.significant else ""
            rows.append(
                [
                    d.skill,
                    str(d.first.attempts if d.first else 0),
                    str(d.second.attempts if d.second else 0),
                    _cell(d.first),
                    _cell(d.second),
                    _difference(d.difference, d.low, d.high) + mark,
                ]
            )
    else:
        columns = [
            Column("skill"),
            Column("questions", numeric=True),
            Column("wrong", numeric=True),
            Column("missing", numeric=True),
            Column("unparsed", numeric=True),
            Column("missing rate [95% CI]", numeric=True),
            Column("flagged"),
        ]
        rows = [
            [
                s.skill,
                str(s.attempts),
                str(s.failures),
                str(s.missing),
                str(s.unparsed),
                _cell(s),
                f"above {threshold:g}" if s.flagged(threshold) else "",
            ]
            for s in reports[0].by_rate()
        ]
    table = Table(tuple(columns), rows, "no profiled question has a skill label")
    totals = [
        TotalsRow(
            f"{letter}: {r.label()}" if two else r.label(),
            r.totals.questions,
            r.totals.correct,
            r.totals.wrong,
            r.totals.parsed,
            r.totals.unparsed,
            r.totals.nothing_missing,
            r.totals.without_skills,
        )
        for letter, r in zip(names, reports, strict=True)
    ]
    note = (
        "For each wrong answer the teacher gives a verdict per skill the question needs: "
        "lacking or misapplied, or not. A skill's missing rate is the share of the questions "
        "needing it on which it was lacking (a right answer counts as applied); questions "
        "whose verdict could not be read leave its denominator. Skills above "
        f"{threshold:g} are flagged (orange; the vertical line marks the threshold)."
    )
    if two:
        note += (
            " B - A is the difference of the missing rates with Newcombe's 95% interval "
            "(runs taken as independent samples); * marks an interval that excludes 0, "
            "without adjustment for the number of skills."
        )
    panels, tags = _browser(reports, names if two else [""])
    return Section(
        "missing-skills",
        "Missing skills",
        "sections/profile_skills.html.j2",
        view=ProfileView(
            note,
            svg,
            totals,
            two,
            any(MEANINGLESS in w for r in reports for w in r.warnings),
            threshold,
        ),
        tables={"profile-skills": table},
        panels=panels,
        tags=tags,
    )


def _browser(
    reports: Sequence[ProfileReport], letters: Sequence[str]
) -> tuple[dict[str, list[Panel]], dict[str, list[Tag]]]:
    panels: dict[str, list[Panel]] = {}
    tags: dict[str, list[Tag]] = {}
    for letter, report in zip(letters, reports, strict=True):
        prefix = f"{letter}: " if letter else ""
        for answer in report.answers:
            qid = answer["question_id"]
            right = bool(answer["correct"])
            verdict = answer.get("verdict") or {}
            facts: list[tuple[str, str]] = [
                ("run", report.run_id),
                ("verdict", "right" if right else "wrong"),
                ("extracted answer", answer.get("extracted") or "(none found)"),
                ("skills", ", ".join(answer.get("skills") or ()) or "(none)"),
            ]
            if not right and answer.get("reason"):
                facts.append(("why wrong", str(answer["reason"])))
            status = verdict.get("status", "")
            if status == "parsed":
                missing = ", ".join(verdict.get("missing") or ()) or "none (a slip)"
                facts.append(("lacking or misapplied", missing))
            elif status == "unparsed":
                facts.append(("teacher's verdict", f"unparsed: {verdict.get('reason', '')}"))
            panels.setdefault(qid, []).append(
                Panel(
                    f"{prefix}{'right' if right else 'wrong'}",
                    tuple(facts),
                    (("answer", str(answer.get("response", ""))),),
                )
            )
            found = tags.setdefault(qid, [])
            found.append(
                Tag(f"{prefix}{'right' if right else 'wrong'}", "good" if right else "bad")
            )
            if status == "unparsed":
                found.append(Tag(f"{prefix}verdict unparsed", "warn"))
            for skill in verdict.get("missing") or ():
                found.append(Tag(f"{prefix}lacks {skill}", "warn"))
    return panels, tags
