"""What each run sent and reused, and what it cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skillmix.report.html.view.common import RunView


@dataclass(frozen=True)
class UsageRow:
    label: str
    role: str
    model: str
    calls: str
    paid: str
    prompt_tokens: str
    completion_tokens: str
    cost: str


@dataclass(frozen=True)
class Usage:
    rows: list[UsageRow]
    note: str


def _paid(usage: dict[str, Any]) -> str:
    if not usage["sent"]:
        return "reused from the store"
    return "paid" if usage.get("paid", True) else "sent to a local model"


def section(runs: Sequence[RunView]) -> Usage:
    rows = []
    total = 0.0
    unpriced = False
    for r in runs:
        for u in r.report.usage:
            cost = u.get("cost_usd")
            if not u["sent"]:
                shown = "0 (reused)"
            elif cost is None:
                shown = "unpriced"
                unpriced = True
            else:
                shown = f"{cost:.4f}"
                total += cost
            rows.append(
                UsageRow(
                    label=r.label,
                    role=u["role"],
                    model=f"{u['provider']}:{u['model']}",
                    calls=f"{u['calls']:,}",
                    paid=_paid(u),
                    prompt_tokens=f"{u['prompt_tokens'] or 0:,}",
                    completion_tokens=f"{u['completion_tokens'] or 0:,}",
                    cost=shown,
                )
            )
    note = f"Total paid: ${total:.4f}" + (" plus calls without a known price." if unpriced else ".")
    return Usage(rows, note)
