"""The item browser's data: every item record of every run, skills written once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skillmix.report.details import item_details
from skillmix.report.html.view.common import RunView
from skillmix.report.names import display_model
from skillmix.store import Store


def items_data(store: Store, runs: Sequence[RunView]) -> dict[str, Any]:
    """Every item record of every run, for the page's script (JSON in the page).

    Each skill is written once, in `skills`, and items name theirs by key: a skill's
    definition and example would otherwise be repeated in every item that uses it (a
    third of a large run's page). report.js puts them back in place when it loads.
    """
    items: list[dict[str, Any]] = []
    labels = []
    judges: list[str] = []
    skills: dict[str, dict[str, Any]] = {}
    for r in runs:
        run_id = r.run["id"]
        labels.append({"id": run_id, "label": r.label})
        for record in item_details(store, r.report.scores):
            for j in record["judges"]:
                j["judge"] = display_model(j["judge"])
                if j["judge"] not in judges:
                    judges.append(j["judge"])
            record["skills"] = [_skill_key(skills, skill) for skill in record["skills"]]
            items.append({"run": run_id, "model": r.label, **record})
    return {"runs": labels, "judges": judges, "skills": skills, "items": items}


def _skill_key(skills: dict[str, dict[str, Any]], skill: dict[str, Any]) -> str:
    """The key of `skill` in the page's skill table, adding it when new (two catalogs may
    give one id different texts: each text gets a key of its own)."""
    key, n = skill["id"], 1
    while key in skills and skills[key] != skill:
        n += 1
        key = f"{skill['id']}#{n}"
    skills.setdefault(key, skill)
    return key


@dataclass(frozen=True)
class ItemFilters:
    """The choices of the item browser's filters."""

    runs: list[tuple[str, str]]  # (run id, label)
    ks: list[int]
    judges: list[str]


def item_filters(data: dict[str, Any]) -> ItemFilters:
    return ItemFilters(
        [(r["id"], r["label"]) for r in data["runs"]],
        sorted({i["k"] for i in data["items"]}),
        list(data["judges"]),
    )
