"""How far a run's judges agree with each other and with the human reviewers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from skillmix.report.html.view.common import ModelName, RunView, fmt, model_name


@dataclass(frozen=True)
class JudgesAgreementRow:
    criterion: str
    judges: list[ModelName]
    statistic: str
    value: str
    raw_agreement: str  # percent
    units: int


@dataclass(frozen=True)
class HumanAgreementRow:
    judge: ModelName
    criterion: str
    units: int
    agreement: str  # percent
    kappa: str


@dataclass(frozen=True)
class AgreementBlock:
    label: str
    judges: list[JudgesAgreementRow]  # the run's judges with each other
    humans: list[HumanAgreementRow]  # its judges against the human reviewers


def section(runs: Sequence[RunView]) -> list[AgreementBlock]:
    """One block per run with anything to show (several judges, or human verdicts)."""
    blocks = []
    for r in runs:
        judges = [
            JudgesAgreementRow(
                a.criterion,
                [model_name(j) for j in a.judges],
                a.statistic.replace("_", " "),
                fmt(a.value),
                fmt(a.raw_agreement * 100, 0),
                a.units,
            )
            for a in r.report.agreement
        ]
        humans = [
            HumanAgreementRow(
                model_name(h["judge"]),
                h["criterion"],
                h["units"],
                fmt(h["agreement"] * 100, 0),
                fmt(h["kappa"]),
            )
            for h in r.report.human_agreement
        ]
        if judges or humans:
            blocks.append(AgreementBlock(r.label, judges, humans))
    return blocks
