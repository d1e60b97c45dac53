"""The item browser's data: every item record of every run, skills written once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from markupsafe import Markup

from skillmix.report.details import item_details
from skillmix.report.html.encode import script_json_bytes
from skillmix.report.html.view.common import RunView
from skillmix.report.names import display_model
from skillmix.scoring.results import RunScores
from skillmix.store import Store


@dataclass(frozen=True)
class ItemFilters:
    """The choices of the item browser's filters."""

    runs: list[tuple[str, str]]  # (run id, label)
    ks: list[int]
    judges: list[str]


@dataclass(frozen=True)
class ItemData:
    """The item records of a page's runs, encoded for its script, and its filters."""

    runs: tuple[tuple[str, str], ...]  # (run id, label) of each run, in page order
    # `script_json_bytes` of the records (see `item_parts`): the page writes these bytes as
    # they are, so a large run's 12 MB of records are never decoded and encoded again.
    script: bytes
    filters: ItemFilters

    @property
    def encoded(self) -> Markup:
        """The records as the text of the page's script element."""
        return Markup(self.script, "utf-8")


class ItemSource(Protocol):
    """Item data built by another process (as in `skillmix run`); None if it failed."""

    def result(self) -> ItemData | None: ...


def page_items(store: Store, runs: Sequence[RunView], source: ItemSource | None) -> ItemData:
    """The page's item data: from `source` when it built those of these very runs, else
    built here."""
    wanted = tuple((r.run["id"], r.label) for r in runs)
    built = source.result() if source is not None else None
    if built is not None and built.runs == wanted:
        return built
    return item_data(store, [(r.run["id"], r.label, r.report.scores) for r in runs])


def item_data(
    store: Store,
    runs: Sequence[tuple[str, str, RunScores]],
    texts: Mapping[str, tuple[str, str]] | None = None,
) -> ItemData:
    """Every item record of every run (id, label, scores), for the page's script; `texts`:
    the runs' call texts (`Store.call_texts`) when the caller has read them."""
    return ItemData(*item_parts(store, runs, texts))


def item_parts(
    store: Store,
    runs: Sequence[tuple[str, str, RunScores]],
    texts: Mapping[str, tuple[str, str]] | None = None,
) -> tuple[tuple[tuple[str, str], ...], bytes, ItemFilters]:
    """`item_data`'s parts: the runs (id, label), the records encoded as UTF-8 bytes (as a
    process sends them to another, without a text copy), and the filters.

    Each skill is written once, in `skills`, and items name theirs by key: a skill's
    definition and example would otherwise be repeated in every item that uses it (a
    third of a large run's page). report.js puts them back in place when it loads.
    """
    items: list[dict[str, Any]] = []
    labels = []
    judges: dict[str, str] = {}  # each judge's spec, as the page shows it, in order seen
    skills: dict[str, dict[str, Any]] = {}
    # Each skill record's key, by identity (item details share one record per skill): the
    # record is held with it, so that no other object can take its id meanwhile.
    keys: dict[int, tuple[dict[str, Any], str]] = {}
    for run_id, label, scores in runs:
        labels.append({"id": run_id, "label": label})
        for record in item_details(store, scores, texts):
            for j in record["judges"]:
                shown = judges.get(j["judge"])
                if shown is None:
                    shown = judges[j["judge"]] = display_model(j["judge"])
                j["judge"] = shown
            record["skills"] = [
                keys[id(skill)][1] if id(skill) in keys else _skill_key(skills, skill, keys)
                for skill in record["skills"]
            ]
            items.append({"run": run_id, "model": label, **record})
    shown_judges = list(dict.fromkeys(judges.values()))
    filters = ItemFilters(
        [(r["id"], r["label"]) for r in labels], sorted({i["k"] for i in items}), shown_judges
    )
    data = {"runs": labels, "judges": shown_judges, "skills": skills, "items": items}
    return tuple((r["id"], r["label"]) for r in labels), script_json_bytes(data), filters


def _skill_key(
    skills: dict[str, dict[str, Any]],
    skill: dict[str, Any],
    keys: dict[int, tuple[dict[str, Any], str]],
) -> str:
    """The key of `skill` in the page's skill table, adding it when new (two catalogs may
    give one id different texts: each text gets a key of its own); `keys` remembers it
    for this very record, which the run's other items share."""
    key, n = skill["id"], 1
    while key in skills and skills[key] != skill:
        n += 1
        key = f"{skill['id']}#{n}"
    skills.setdefault(key, skill)
    keys[id(skill)] = (skill, key)
    return key
