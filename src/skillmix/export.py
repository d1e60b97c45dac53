"""Export stored runs as flat tables: one row per item x generation round x judge x grading
round, with the settings that produced it. JSONL, CSV and Parquet; pandas and DuckDB read
all three.

JSONL and Parquet keep every text as stored. In CSV, a text cell that a spreadsheet would
read as a formula (it starts with =, +, -, @, a tab or a carriage return) gets a leading
single quote, so that opening the file never runs what a model wrote."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from skillmix.errors import InputError
from skillmix.scoring.results import score_run
from skillmix.store import Store

FORMATS = ("jsonl", "csv", "parquet")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_rows(store: Store, run_id: str) -> Iterator[dict[str, Any]]:
    """Rows of one run. Nested values (lists, verdict maps) stay structured here."""
    scores = score_run(store, run_id)
    run = scores.run
    config = run["config"]
    items = {i["item_id"]: i for i in store.items(run["id"])}
    generations = {(g["item_id"], g["round"]): g for g in store.generations(run["id"])}
    final = {(r.item_id, g.gen_round, r.judge): g for r in scores.items for g in r.generations}
    item_scores = {(r.item_id, r.judge): r.scores for r in scores.items}
    for grade in store.grades(run["id"]):
        item = items[grade["item_id"]]
        gen = generations.get((grade["item_id"], grade["gen_round"]))
        decided = final.get((grade["item_id"], grade["gen_round"], grade["judge"]))
        aggregated = item_scores.get((grade["item_id"], grade["judge"]))
        yield {
            "run_id": run["id"],
            "catalog_hash": run["catalog_hash"],
            "template_version": run["template_version"],
            "student": config["student"],
            "judge": grade["judge"],
            "item_id": grade["item_id"],
            "k": item["k"],
            "skills": item["skill_ids"],
            "topic": item["topic_id"],
            "gen_round": grade["gen_round"],
            "grade_round": grade["grade_round"],
            "answer": gen["answer"] if gen else None,
            "sentences": gen["sentences"] if gen else None,
            "named_skills": sorted(gen["named"]) if gen else [],
            "grade_status": grade["status"],
            "grade_method": grade["method"],
            "grade_attempts": grade["attempts"],
            "verdicts": grade["verdicts"],
            "decided": decided.decided if decided else None,
            "generation_full_marks": decided.scores.full_marks
            if decided and decided.scores
            else None,
            "generation_all_skills": decided.scores.all_skills
            if decided and decided.scores
            else None,
            "generation_skill_fraction": (
                decided.scores.skill_fraction if decided and decided.scores else None
            ),
            "item_full_marks": aggregated.full_marks if aggregated else None,
            "item_all_skills": aggregated.all_skills if aggregated else None,
            "item_skill_fraction": aggregated.skill_fraction if aggregated else None,
            "seed": config["seed"],
            "generation_rounds": config["generation_rounds"],
            "grading_rounds": config["grading_rounds"],
            "student_temperature": config["student_decoding"]["temperature"],
            "student_max_tokens": config["student_decoding"]["max_tokens"],
            "judge_temperature": config["judge_decoding"]["temperature"],
            "judge_max_tokens": config["judge_decoding"]["max_tokens"],
            "naming_penalty": config["naming_penalty"],
        }


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """Lists and maps as JSON text, for CSV and Parquet (one schema for every run)."""
    return {
        key: json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value
        for key, value in row.items()
    }


def neutralise_formula(value: Any) -> Any:
    """A text that spreadsheets would run as a formula, prefixed with a single quote.

    Only for CSV: numbers stay numbers, and other texts are returned unchanged.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def export_format(path: str | Path, fmt: str | None = None) -> str:
    """The format of an export: `fmt`, or the suffix of `path`; an `InputError` when unknown."""
    fmt = fmt or Path(path).suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise InputError(
            f"unknown export format '{fmt}': use one of {', '.join(FORMATS)}",
            hint="name the file .jsonl, .csv or .parquet, or pass --format",
        )
    return fmt


def export_run(store: Store, run_ids: list[str], path: str | Path, fmt: str | None = None) -> int:
    """Write the rows of the given runs to `path`; the format comes from `fmt` or the suffix.

    Runs without a single graded item are an `InputError`, and nothing is written.
    """
    path = Path(path)
    fmt = export_format(path, fmt)
    rows = [row for run_id in run_ids for row in export_rows(store, run_id)]
    if not rows:
        raise InputError(
            f"nothing to export: {', '.join(run_ids) or 'no run'} hold(s) no graded items yet; "
            f"{path} was not written",
            hint="finish a run by re-running the command that started it (it resumes)",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        with path.open("w") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        with path.open("w", newline="") as f:
            flat = [{k: neutralise_formula(v) for k, v in _flat(r).items()} for r in rows]
            writer = csv.DictWriter(f, fieldnames=list(flat[0]) if flat else ["run_id"])
            writer.writeheader()
            writer.writerows(flat)
    else:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as err:
            raise InputError(
                "Parquet export needs the 'pyarrow' package",
                hint="pip install 'skillmix[export]', or export to .jsonl or .csv instead",
            ) from err
        pq.write_table(pa.Table.from_pylist([_flat(r) for r in rows]), path)
    return len(rows)
