"""Records, the near-duplicate filter, the data card's facts, and the files of a run.

`example_record` turns one example's conversation into a `DataRecord` with its
provenance; `filter_records` leaves out near-duplicates after the pipeline's own
rejections; `write_outputs` writes the catalog, the query types, the records in each
export format, the rejections and the data card.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from skillmix.catalog.model import Catalog
from skillmix.data.card import CardMeta, embedded_warnings, usage_counts, write_card
from skillmix.data.dedup import Rejection, dedup_method, dedupe
from skillmix.data.export import export_records, write_rejections
from skillmix.data.instruct.catalog import Extraction
from skillmix.data.instruct.config import PIPELINE, InstructConfig
from skillmix.data.instruct.plan import FALLBACK_QUERY_TYPE, ExamplePlan
from skillmix.data.records import DataRecord
from skillmix.runtime.calls import CallStats

if TYPE_CHECKING:  # the pipeline builds records here; these functions only read it
    from skillmix.data.instruct.pipeline import InstructPipeline

REJECTION_REASONS = {
    "unparsed-pair": "no (instruction, response) pair could be read from the first turn",
    "empty-answer": "the final (refined or shirker) response is empty",
    "truncated": "the final response was cut off at --max-tokens",
    "near-duplicate": "instruction + response near-duplicate a kept example",
}
DEDUP_METHOD = dedup_method("instruction + response")


@dataclass
class InstructResult:
    """What a run produced (or, in estimate mode, would send)."""

    run_id: str
    extraction: Extraction
    records: list[DataRecord]
    rejected: list[Rejection]
    stats: CallStats
    estimate: bool = False
    paths: dict[str, Any] = field(default_factory=dict)
    meta: CardMeta = field(default_factory=CardMeta)


# --- records --------------------------------------------------------------------------------


def record_id(teacher: str, seed: int, index: int, messages: list[dict[str, str]]) -> str:
    """A stable id from the teacher, the seed, the example and its messages."""
    blob = json.dumps([teacher, seed, index, messages], ensure_ascii=False, sort_keys=True)
    return "isx-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def example_record(
    plan: ExamplePlan,
    messages: list[dict[str, str]],
    call_keys: dict[str, str],
    ex: Extraction,
    *,
    config: InstructConfig,
    run_id: str,
    teacher_identity: str,
    templates_version: str,
    structured: bool,
) -> DataRecord:
    """One example as a record, with everything needed to trace it back to its calls."""
    return DataRecord(
        id=record_id(teacher_identity, config.seed, plan.index, messages),
        pipeline=PIPELINE,
        messages=messages,
        skills=[s.name for s in plan.skills],
        teacher=config.teacher,
        query_type=plan.query_type,
        k=len(plan.skills),
        shirker=plan.shirker,
        provenance={
            "run_id": run_id,
            "example": plan.index,
            "seed": config.seed,
            "example_seed": plan.seed,
            "skill_ids": [s.id for s in plan.skills],
            "skill_topics": [s.category for s in plan.skills],
            "catalog_hash": ex.catalog.content_hash,
            "query_types_hash": ex.query_types_hash,
            "templates": templates_version,
            "teacher_identity": teacher_identity,
            "structured": structured,
            "call_keys": dict(call_keys),
        },
    )


def dedup_text(record: DataRecord) -> str:
    """What near-duplicate removal compares: the instruction and the response."""
    return "\n".join(m["content"] for m in record.messages)


def filter_records(
    records: list[DataRecord], rejected: list[Rejection], threshold: float
) -> tuple[list[DataRecord], list[Rejection]]:
    """Drop near-duplicates (instruction + response) after the earlier rejections."""
    kept, duplicates = dedupe(records, threshold, key=dedup_text)
    return kept, [*rejected, *duplicates]


# --- files ----------------------------------------------------------------------------------


def write_catalog(catalog: Catalog, path: Path, header: str = "") -> None:
    """Write a catalog as YAML that `skillmix.catalog.load.load_catalog` reads back."""
    body = {
        "version": catalog.version,
        "skills": [s.to_dict() for s in catalog.skills],
        "topics": [t.to_dict() for t in catalog.topics],
    }
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)
    path.write_text((header + text) if header else text, encoding="utf-8")


def write_outputs(
    result: InstructResult, pipeline: InstructPipeline, out_dir: Path, formats: Sequence[str]
) -> dict[str, Path]:
    """Write the catalog, query types, records, rejections and data card into `out_dir`.

    Files: skills_catalog.yaml (loadable with `load_catalog`), query_types.yaml,
    extraction.json (every merged or dropped name), the export formats, rejected.jsonl
    (each left-out example with its reason), card.md and card.json.
    """
    ex, cfg = result.extraction, pipeline.config
    # Export first: a missing optional package fails before any file is written.
    paths: dict[str, Path] = dict(
        export_records(
            result.records,
            out_dir,
            formats,
            description=f"Instruct-SkillMix examples written by {cfg.teacher} ({result.run_id})",
        )
    )
    catalog_path = out_dir / "skills_catalog.yaml"
    write_catalog(
        ex.catalog,
        catalog_path,
        header=(
            f"# Instruct-SkillMix skills named by {cfg.teacher} (run {result.run_id}).\n"
            f"# Content hash {ex.catalog.content_hash}; category = the topic that named it.\n"
        ),
    )
    paths["catalog"] = catalog_path
    types_path = out_dir / "query_types.yaml"
    types_path.write_text(
        yaml.safe_dump(
            {"hash": ex.query_types_hash, "query_types": ex.query_types},
            sort_keys=False,
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    paths["query_types"] = types_path
    extraction_path = out_dir / "extraction.json"
    extraction_path.write_text(
        json.dumps(
            {
                **ex.summary(),
                "merges": [asdict(m) for m in ex.merges],
                "dropped_names": sorted(ex.dropped_names),
                "call_keys": sorted(ex.call_keys),
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    paths["extraction"] = extraction_path
    rejected_path = out_dir / "rejected.jsonl"
    write_rejections(result.rejected, rejected_path)
    paths["rejected"] = rejected_path
    result.meta = card_meta(result, pipeline)
    paths["card"], paths["card_json"] = write_card(
        result.records, result.rejected, result.meta, out_dir
    )
    result.paths = paths
    return paths


def card_meta(result: InstructResult, pipeline: InstructPipeline) -> CardMeta:
    """What the data card says about how the data was made."""
    ex, cfg = result.extraction, pipeline.config
    warnings = embedded_warnings("Teacher", [cfg.teacher])
    if len(ex.catalog.skills) < 2:
        warnings.append("The catalog has fewer than two skills: examples use a single skill.")
    if ex.query_types == [FALLBACK_QUERY_TYPE]:
        warnings.append(
            f"The teacher named no query types; every example uses '{FALLBACK_QUERY_TYPE}'."
        )
    usage = usage_counts(pipeline.store.usage(result.run_id))
    return {
        "pipeline": PIPELINE,
        "run_id": result.run_id,
        "teacher": cfg.teacher,
        "templates": pipeline.templates.version_id,
        "k": sorted({r.k for r in result.records if r.k is not None}) or [2],
        "dedup_threshold": cfg.dedup_threshold,
        "dedup_method": DEDUP_METHOD,
        "catalog": {
            "name": "skills_catalog.yaml",
            "hash": ex.catalog.content_hash,
            "skills": len(ex.catalog.skills),
            "topics": len(ex.catalog.topics),
        },
        "skill_categories": {s.name: s.category for s in ex.catalog.skills},
        "usage": usage,
        "warnings": warnings,
        "query_types": ex.query_types,
        "query_types_hash": ex.query_types_hash,
        "extraction": ex.summary(),
        "examples_requested": cfg.examples,
        "shirker_fraction": cfg.shirker_fraction,
        "shirkers_planned": cfg.shirker_count,
        "seed": cfg.seed,
        "teacher_decoding": {
            "temperature": cfg.temperature,
            "max_tokens": cfg.max_tokens,
            "list_max_tokens": cfg.list_max_tokens,
            "structured": pipeline.structured,
            "parse_attempts": cfg.parse_attempts,
        },
        "rejection_reasons": {
            reason: REJECTION_REASONS.get(reason, reason)
            for reason in sorted({r.reason for r in result.rejected})
        },
    }
