"""The report of a profile run, from the store alone: the profile, warnings, files, terminal.

`build_profile_report` reads a `math profile` run (`profile.load_profile`) and computes
its Missing-Skill-Profile; `write_profile_files` writes it as JSON and CSV and
`render_profile` prints it. The HTML section is `math.profile_html`.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skillmix.errors import InputError
from skillmix.math.profile import (
    DEFAULT_THRESHOLD,
    ProfileTotals,
    SkillProfile,
    load_profile,
    profile_totals,
    skill_profile,
)
from skillmix.store import Store

if TYPE_CHECKING:
    from rich.console import Console

EMBEDDED_WARNING = (
    "The {role} {verb} the embedded SmolLM2-135M, a 135M-parameter model that cannot do "
    "competition math (or judge it): this profile is a smoke test of the pipeline and says "
    "nothing about which skills a student lacks."
)
MEANINGLESS = "smoke test of the pipeline"  # in EMBEDDED_WARNING


@dataclass
class ProfileReport:
    """Everything the terminal, the files and the page show of one profile run."""

    run_id: str
    status: str
    config: dict[str, Any]
    answers: list[dict[str, Any]]  # the `math.profile.answer` records, by question id
    problems: dict[str, dict[str, Any]]  # id -> the `math.problem` record
    skills: list[SkillProfile]  # by name
    totals: ProfileTotals
    summary: dict[str, Any]
    warnings: list[str]
    usage: list[dict[str, Any]]

    def by_rate(self) -> list[SkillProfile]:
        """The skills, highest missing rate first (skills without a rate last)."""
        return sorted(
            self.skills,
            key=lambda s: (
                math.isnan(s.rate),
                -(0.0 if math.isnan(s.rate) else s.rate),
                s.skill.casefold(),
            ),
        )

    def flagged(self, threshold: float = DEFAULT_THRESHOLD) -> list[SkillProfile]:
        """The skills whose missing rate is above `threshold`, highest first."""
        return [s for s in self.by_rate() if s.flagged(threshold)]

    def label(self) -> str:
        """A short name for the run on a comparison: the student and the run id."""
        return f"{self.config.get('student')} ({self.run_id})"

    def to_dict(self, threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
        """The profile and the config (not the answers: see the answers CSV)."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "config": self.config,
            "totals": self.totals.to_dict(),
            "threshold": threshold,
            "skills": [{**s.to_dict(), "flagged": s.flagged(threshold)} for s in self.by_rate()],
            "warnings": self.warnings,
            "usage": self.usage,
        }


def build_profile_report(store: Store, run_id: str) -> ProfileReport:
    """The report of the profile run `run_id` (or a unique start of it)."""
    stored = load_profile(store, run_id)
    outcomes = stored.outcomes
    totals = profile_totals(outcomes)
    return ProfileReport(
        run_id=stored.run_id,
        status=stored.status,
        config=stored.config,
        answers=stored.answers,
        problems=stored.problems,
        skills=skill_profile(outcomes),
        totals=totals,
        summary=stored.summary,
        warnings=profile_warnings(stored.config, stored.answers, totals, stored.summary),
        usage=[dict(row) for row in store.usage(stored.run_id)],
    )


def profile_warnings(
    config: dict[str, Any],
    answers: list[dict[str, Any]],
    totals: ProfileTotals,
    summary: dict[str, Any],
) -> list[str]:
    """What a reader must know before trusting the profile."""
    warnings = []
    embedded = [
        role
        for role in ("student", "teacher")
        if str(config.get(role) or "").split(":")[0] == "embedded"
    ]
    if embedded:
        roles = " and ".join(embedded)
        warnings.append(
            EMBEDDED_WARNING.format(role=roles, verb="is" if len(embedded) == 1 else "are")
        )
    expected = summary.get("questions")
    if isinstance(expected, int) and len(answers) < expected:
        warnings.append(
            f"the run is incomplete: {len(answers)} of {expected} questions are answered; "
            "re-run the same command to finish it"
        )
    if totals.unparsed:
        warnings.append(
            f"the teacher's verdict could not be read for {totals.unparsed} of "
            f"{totals.wrong} wrong answer(s): they count in attempts and failures, but not "
            "in the missing rates (their skills' denominators leave them out)"
        )
    if totals.without_skills:
        warnings.append(
            f"{totals.without_skills} wrong answer(s) are to questions with no skill label: "
            "no skill's figure includes them"
        )
    as_text = sum(a.get("check_method") == "text" for a in answers)
    if as_text:
        warnings.append(
            f"{as_text} answer(s) were compared as text (math-verify could not parse them)"
        )
    if totals.questions and totals.questions < 30:
        warnings.append(
            f"only {totals.questions} question(s) were profiled: every interval is wide"
        )
    return warnings


# --- files ------------------------------------------------------------------------------------


def write_profile_files(
    report: ProfileReport, out_dir: str | Path, threshold: float = DEFAULT_THRESHOLD
) -> list[Path]:
    """math-profile.json, and CSVs of the profile and of every answer and verdict."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        json_path = out / "math-profile.json"
        json_path.write_text(
            json.dumps(report.to_dict(threshold), indent=2, allow_nan=True), encoding="utf-8"
        )
        return [
            json_path,
            _write_skills(report, out / "math-profile-skills.csv", threshold),
            _write_answers(report, out / "math-profile-answers.csv"),
        ]
    except OSError as err:
        raise InputError(
            f"cannot write the report to {out}: {err.strerror or err}",
            hint="choose another --out; the run itself is in the store",
        ) from err


def _write_skills(report: ProfileReport, path: Path, threshold: float) -> Path:
    fields = [
        "skill", "attempts", "failures", "missing", "unparsed", "assessed", "rate", "low",
        "high", "flagged",
    ]  # fmt: skip
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["run_id", *fields])
        writer.writeheader()
        for s in report.by_rate():
            writer.writerow(
                {"run_id": report.run_id, **s.to_dict(), "flagged": s.flagged(threshold)}
            )
    return path


def _write_answers(report: ProfileReport, path: Path) -> Path:
    fields = [
        "question_id", "category", "skills", "correct", "extracted", "gold", "reason",
        "verdict", "missing", "verdict_reason",
    ]  # fmt: skip
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["run_id", *fields])
        writer.writeheader()
        for a in report.answers:
            verdict = a.get("verdict") or {}
            writer.writerow(
                {
                    "run_id": report.run_id,
                    "question_id": a["question_id"],
                    "category": a.get("category") or "",
                    "skills": "; ".join(a.get("skills", ())),
                    "correct": int(bool(a["correct"])),
                    "extracted": a.get("extracted") or "",
                    "gold": a.get("gold", ""),
                    "reason": a.get("reason") or "",
                    "verdict": verdict.get("status", ""),
                    "missing": "; ".join(verdict.get("missing", ())),
                    "verdict_reason": verdict.get("reason", ""),
                }
            )
    return path


# --- the terminal -----------------------------------------------------------------------------


def rate_text(skill: SkillProfile) -> str:
    """`0.42 [0.30, 0.55]`, or a dash without an assessed question."""
    if not skill.assessed:
        return "—"
    low, high = skill.interval
    return f"{skill.rate:.2f} [{low:.2f}, {high:.2f}]"


def render_profile(
    report: ProfileReport, console: Console, threshold: float = DEFAULT_THRESHOLD
) -> None:
    """The profile table (highest missing rate first), the totals and the warnings."""
    from skillmix.report.layout import Column, print_records
    from skillmix.terminal import escaped, plain

    cfg, t = report.config, report.totals
    status = "" if report.status == "done" else f" ({report.status})"
    console.print(
        plain(
            f"math profile {report.run_id}{status}: student {cfg.get('student')}, teacher "
            f"{cfg.get('teacher')}, {t.questions} {cfg.get('part')} question(s) of "
            f"{cfg.get('dataset')} ({str(cfg.get('dataset_hash', ''))[:12]})"
        )
    )
    print_records(
        console,
        [
            Column("skill", wrap=True),
            Column("questions", justify="right"),
            Column("wrong", justify="right"),
            Column("missing", justify="right"),
            Column("unparsed", justify="right"),
            Column("missing rate [95% CI]", justify="right"),
            Column("flag"),
        ],
        (
            [
                s.skill,
                str(s.attempts),
                str(s.failures),
                str(s.missing),
                str(s.unparsed),
                rate_text(s),
                f"> {threshold:g}" if s.flagged(threshold) else "",
            ]
            for s in report.by_rate()
        ),
        title="missing-skill profile (highest missing rate first)",
        caption=f"missing rate = missing / (questions - unparsed), Wilson 95% interval; "
        f"flagged above {threshold:g}",
    )
    labels = cfg.get("labels") or "the dataset's concept annotations"
    console.print(
        plain(
            f"{t.correct} right, {t.wrong} wrong; verdicts on wrong answers: {t.parsed} read "
            f"({t.nothing_missing} found no skill lacking), {t.unparsed} unparsed, "
            f"{t.without_skills} without skills to ask about; skill labels: {labels}"
        )
    )
    for warning in report.warnings:
        console.print(f"[yellow]warning[/]: {escaped(warning)}", highlight=False)
