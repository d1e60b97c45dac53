"""The data card: what a data set holds, what was left out and why, and how it was made.

`card_numbers` computes every count once; `data_card` renders them as Markdown and
`write_card` writes `card.md` and `card.json` (the same numbers, for programs) next to
the exported records. Pipelines pass what they know as a `CardMeta`: its first keys are
shown in their own sections, and the pipeline's settings are listed under "Settings".
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

from skillmix.data.dedup import Rejection
from skillmix.data.records import DataRecord
from skillmix.store import UsageRow

REASON_LABELS = {
    "below-threshold": "scored below the keep rule (above)",
    "unparsed": "unscored: no grading round could be parsed",
    "empty-answer": "empty answer",
    "near-duplicate": "near-duplicate of a kept record",
}
EMBEDDED_WARNING = (
    "{role} {model} is SmolLM2-135M, a 135M-parameter model that cannot write or grade "
    "reliably: this data set is a smoke test of the pipeline, not training data."
)


class UsageCounts(TypedDict):
    """The model calls of one role, summed over providers and models, paid or reused."""

    calls: int
    prompt_tokens: int
    completion_tokens: int


class CatalogFacts(TypedDict, total=False):
    """The catalog the data was made from."""

    name: str
    hash: str
    train_hash: str  # the train side of a split catalog, which the run used
    sources: list[str]
    skills: int
    topics: int


class SplitFacts(TypedDict):
    """How the catalog was split, and the held-out skills and topics no record may use."""

    description: str
    skills_fraction: float
    topics_fraction: float
    categories: list[str]
    seed: int
    held_out_skills: list[str]
    held_out_topics: list[str]


class CardMeta(TypedDict, total=False):
    """What a pipeline tells the card about how the data was made (every key optional)."""

    # Shown in their own sections of the card.
    pipeline: str
    run_id: str
    teacher: str
    judges: list[str]
    templates: str  # the template set's version id
    k: list[int]
    keep_rule: str
    keep_threshold: float
    dedup_threshold: float
    dedup_method: str
    catalog: CatalogFacts
    split: SplitFacts
    # The command that evaluates a model trained on the data; left out of the card when
    # the split holds nothing out (it would evaluate on the training skills).
    eval_command: str
    skill_categories: dict[str, str]  # skill -> category, for the per-category counts
    usage: dict[str, UsageCounts]  # by role
    warnings: list[str]  # lines a reader must see first
    # Settings, listed as they are: both pipelines'.
    seed: int
    teacher_decoding: dict[str, Any]
    # SFT data (`skillmix.data.sft`).
    judge_decoding: dict[str, Any]
    items_per_k: int
    generation_rounds: int
    grading_rounds: int
    naming_penalty: bool
    train_combinations: dict[str, int]  # k -> train-side (skills, topic) combinations
    # Instruct-SkillMix data (`skillmix.data.instruct`).
    query_types: list[str]
    query_types_hash: str
    extraction: dict[str, Any]
    examples_requested: int
    shirker_fraction: float
    shirkers_planned: int
    rejection_reasons: dict[str, str]  # reason -> what it means
    # Math data targeted at missing skills (`skillmix.math.stat`).
    profile_run: str  # the `math profile` run whose Missing-Skill-Profile drove the data
    method: str  # "stat-sel" or "stat-syn"
    weight_rule: str
    missing_rates: dict[str, float]  # skill -> its missing rate in the profile
    resample: int
    verifier: str
    per_skill: int
    threshold: float


# The keys of `CardMeta` shown in their own sections; any other is listed under Settings.
_SHOWN = {
    "pipeline",
    "run_id",
    "teacher",
    "judges",
    "templates",
    "k",
    "keep_rule",
    "keep_threshold",
    "dedup_threshold",
    "dedup_method",
    "catalog",
    "split",
    "eval_command",
    "skill_categories",
    "usage",
    "warnings",
    "profile_run",
}


def _split_counts(
    kept: Sequence[DataRecord], rejected: Sequence[DataRecord], keys_of: Any
) -> dict[str, dict[str, int]]:
    """{key: {"kept": n, "rejected": m}} with keys sorted; a record may count under several."""
    counts: dict[str, dict[str, int]] = {}
    for label, records in (("kept", kept), ("rejected", rejected)):
        for record in records:
            for key in keys_of(record):
                entry = counts.setdefault(str(key), {"kept": 0, "rejected": 0})
                entry[label] += 1
    return dict(sorted(counts.items(), key=lambda kv: _sort_key(kv[0])))


def _sort_key(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.isdigit() else (1, key)


def embedded_warnings(role: str, models: Iterable[str]) -> list[str]:
    """A card warning for each of `models` that is the embedded SmolLM2 (`role`: "Teacher")."""
    return [
        EMBEDDED_WARNING.format(role=role, model=model)
        for model in models
        if model.split(":")[0] == "embedded"
    ]


def usage_counts(
    rows: Iterable[UsageRow], role_names: Mapping[str, str] | None = None
) -> dict[str, UsageCounts]:
    """Calls and tokens per role from `Store.usage` rows; `role_names` renames roles."""
    usage: dict[str, UsageCounts] = {}
    for row in rows:
        role = (role_names or {}).get(row["role"], row["role"])
        entry = usage.setdefault(role, {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0})
        entry["calls"] += int(row["calls"] or 0)
        entry["prompt_tokens"] += int(row["prompt_tokens"] or 0)
        entry["completion_tokens"] += int(row["completion_tokens"] or 0)
    return usage


def card_numbers(
    records: Sequence[DataRecord], rejected: Sequence[Rejection], meta: CardMeta
) -> dict[str, Any]:
    """Every number of the card (the content of card.json)."""
    dropped = [r.record for r in rejected]
    categories: dict[str, str] = meta.get("skill_categories") or {}
    numbers: dict[str, Any] = {
        "pipeline": meta.get("pipeline", ""),
        "kept": len(records),
        "rejected": len(rejected),
        "candidates": len(records) + len(rejected),
        "rejections": dict(Counter(r.reason for r in rejected).most_common()),
        "per_k": _split_counts(records, dropped, lambda r: [] if r.k is None else [r.k]),
        "per_skill": _split_counts(records, dropped, lambda r: r.skills),
    }
    if categories:
        numbers["per_category"] = _split_counts(
            records, dropped, lambda r: sorted({categories.get(s, "?") for s in r.skills})
        )
    if any(r.query_type for r in [*records, *dropped]):
        numbers["per_query_type"] = _split_counts(
            records, dropped, lambda r: [r.query_type] if r.query_type else []
        )
    if any(r.topic for r in [*records, *dropped]):
        numbers["per_topic"] = _split_counts(
            records, dropped, lambda r: [r.topic] if r.topic else []
        )
    numbers["shirkers"] = sum(r.shirker for r in records)
    hidden = {"skill_categories"} | ({"eval_command"} if not holds_out(meta) else set())
    numbers["meta"] = {k: v for k, v in meta.items() if k not in hidden}
    return numbers


def holds_out(meta: CardMeta) -> bool:
    """Whether the data leaves skills or topics out, so that a held-out evaluation means
    something (data without a split: True, its command says what it evaluates)."""
    split = meta.get("split")
    return not split or bool(split.get("held_out_skills") or split.get("held_out_topics"))


def _table(title: str, counts: dict[str, dict[str, int]], column: str) -> list[str]:
    lines = [f"### {title}", "", f"| {column} | kept | rejected |", "|---|---:|---:|"]
    lines += [f"| {key} | {c['kept']} | {c['rejected']} |" for key, c in counts.items()]
    return [*lines, ""]


def _ids(values: Iterable[str]) -> str:
    values = list(values)
    return ", ".join(f"`{v}`" for v in values) if values else "none"


def data_card(records: Sequence[DataRecord], rejected: Sequence[Rejection], meta: CardMeta) -> str:
    """The data card as Markdown."""
    n = card_numbers(records, rejected, meta)
    pipeline = n["pipeline"] or "data set"
    lines = [f"# {pipeline} data card", ""]
    for warning in meta.get("warnings", []):
        lines += [f"> **Warning:** {warning}", ""]
    lines += [
        f"**{n['kept']}** records kept out of {n['candidates']} candidates "
        f"({n['rejected']} rejected).",
        "",
        "## How it was made",
        "",
    ]
    facts: list[tuple[str, Any]] = [
        ("teacher", meta.get("teacher")),
        ("judges", ", ".join(meta.get("judges", [])) or None),
        ("run", meta.get("run_id")),
        ("profile run (the missing skills it targets)", meta.get("profile_run")),
        ("templates", meta.get("templates")),
        ("k", ", ".join(map(str, meta.get("k", []))) or None),
        ("keep rule", meta.get("keep_rule")),
        ("near-duplicate threshold", meta.get("dedup_threshold")),
        ("near-duplicate method", meta.get("dedup_method")),
    ]
    catalog = meta.get("catalog") or {}
    if catalog:
        facts.append(("catalog", f"{catalog.get('name', '')} (hash `{catalog.get('hash', '')}`)"))
        if catalog.get("train_hash"):
            facts.append(("train side of the catalog", f"hash `{catalog['train_hash']}`"))
        if catalog.get("sources"):
            facts.append(("catalog sources", ", ".join(catalog["sources"])))
    lines += ["| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in facts if value not in (None, "")]
    lines.append("")
    split = meta.get("split")
    if split:
        lines += [
            "## Split",
            "",
            f"{split.get('description', '')}. Records use train skills and topics only; "
            "the held-out ones below appear in no record (checked when the data was built).",
            "",
            f"- held-out skills ({len(split.get('held_out_skills', []))}): "
            f"{_ids(split.get('held_out_skills', []))}",
            f"- held-out topics ({len(split.get('held_out_topics', []))}): "
            f"{_ids(split.get('held_out_topics', []))}",
            "",
        ]
    if meta.get("eval_command") and holds_out(meta):
        lines += [
            "## Evaluate a model trained on this data on the held-out side",
            "",
            "Replace FINETUNED_MODEL with the fine-tuned model (provider:model):",
            "",
            "```",
            meta["eval_command"],
            "```",
            "",
        ]
    lines += ["## Kept and rejected", "", "| reason | records |", "|---|---:|"]
    lines.append(f"| kept | {n['kept']} |")
    for reason, count in n["rejections"].items():
        label = REASON_LABELS.get(reason, reason)
        lines.append(f"| rejected: {label} | {count} |")
    lines.append("")
    if n["shirkers"]:
        lines += [f"{n['shirkers']} kept records are deliberate low-effort (shirker) answers.", ""]
    if n["per_k"]:
        lines += _table("Per k", n["per_k"], "k")
    for key, title, column in (
        ("per_category", "Per skill category", "category"),
        ("per_query_type", "Per query type", "query type"),
        ("per_topic", "Per topic", "topic"),
        ("per_skill", "Per skill", "skill"),
    ):
        if n.get(key):
            lines += _table(title, n[key], column)
    usage = meta.get("usage") or {}
    if usage:
        lines += [
            "## Model calls of the run",
            "",
            "| role | calls | prompt tokens | completion tokens |",
            "|---|---:|---:|---:|",
        ]
        for role, u in usage.items():
            lines.append(
                f"| {role} | {u.get('calls', 0):,} | {u.get('prompt_tokens', 0):,} | "
                f"{u.get('completion_tokens', 0):,} |"
            )
        lines.append("")
    other = {k: v for k, v in meta.items() if k not in _SHOWN}
    if other:
        lines += ["## Settings", ""]
        lines += [f"- {k}: `{json.dumps(v, sort_keys=True)}`" for k, v in other.items()]
        lines.append("")
    return "\n".join(lines)


def write_card(
    records: Sequence[DataRecord],
    rejected: Sequence[Rejection],
    meta: CardMeta,
    out_dir: str | Path,
) -> tuple[Path, Path]:
    """Write `card.md` and `card.json` into `out_dir`; return both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "card.md", out / "card.json"
    md.write_text(data_card(records, rejected, meta), encoding="utf-8")
    numbers = card_numbers(records, rejected, meta)
    js.write_text(json.dumps(numbers, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return md, js
