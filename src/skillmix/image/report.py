"""The report of an image run, from the store alone: figures, warnings and files.

`build_image_report` reads a run's records (see `image.run` for their layout) and
computes its metrics (`image.metrics`); `write_image_files` writes them as JSON and CSV;
`render_image_report` prints the tables. Everything a page or a review app needs to show
an image with its verdicts is in `ImageReport.rows` (one per sample, in run order).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skillmix.errors import InputError
from skillmix.image.agreement import ImageAgreement, image_agreement
from skillmix.image.metrics import GradedConcept, GradedImage, ImageMetrics, image_metrics
from skillmix.image.run import (
    CATALOG_RECORD,
    GRADE_RECORD,
    IMAGE_RECORD,
    ITEM_RECORD,
    KIND,
    PROMPT_RECORD,
)
from skillmix.jsonsafe import finite
from skillmix.store import Store

if TYPE_CHECKING:
    from rich.console import Console

    from skillmix.scoring.stats import Estimate

EMBEDDED_WARNING = (
    "The {roles} {verb} the embedded SmolLM2-135M, a 135M-parameter model far too weak for "
    "this task: these numbers are a smoke test of the pipeline, not a measurement."
)
TERMINAL_CONCEPTS = 25  # concepts listed on the terminal (all are in concepts.csv)


@dataclass
class ImageReport:
    """Everything the terminal and the files show of one image run."""

    run_id: str
    status: str
    config: dict[str, Any]
    catalog: dict[str, Any]
    rows: list[dict[str, Any]]  # per sample: item, prompt, image and grade records
    metrics: ImageMetrics
    warnings: list[str]
    usage: list[dict[str, Any]]
    humans: list[dict[str, Any]] = field(default_factory=list)  # `Store.human_verdicts` rows
    agreement: ImageAgreement | None = None  # judge vs human, once people answered

    def counts(self) -> dict[str, Any]:
        prompts = Counter(r["prompt"]["status"] for r in self.rows if r["prompt"])
        return {
            "items": len(self.rows),
            "graded": sum(1 for r in self.rows if r["grade"]),
            "prompt_check": dict(sorted(prompts.items())),
        }

    def to_dict(self) -> dict[str, Any]:
        """The figures, the config and the counts (every answer is in the CSV files)."""
        names = {c["id"]: c["name"] for c in self.catalog.get("concepts", [])}
        metrics = self.metrics.to_dict()
        by_concept: dict[str, Any] = metrics["by_concept"]  # type: ignore[assignment]
        for concept_id, rate in by_concept.items():
            rate["name"] = names.get(concept_id, concept_id)
        return {
            "run_id": self.run_id,
            "status": self.status,
            "config": self.config,
            "catalog": {k: self.catalog.get(k) for k in ("name", "version", "hash")},
            **self.counts(),
            **metrics,
            "human_agreement": self.agreement.to_dict() if self.agreement else None,
            "warnings": self.warnings,
            "usage": self.usage,
        }


def is_image_run(config: dict[str, Any]) -> bool:
    return config.get("kind") == KIND


def build_image_report(store: Store, run_id: str) -> ImageReport:
    """The report of the image run `run_id` (or a unique start of it)."""
    run = store.get_run(run_id)
    if not is_image_run(run["config"]):
        raise InputError(
            f"run {run['id']} is not an image run",
            hint="give the id `skillmix image run` printed (it starts with image-)",
        )
    run_id = run["id"]
    items = store.records(run_id, ITEM_RECORD)
    prompts = store.records(run_id, PROMPT_RECORD)
    images = store.records(run_id, IMAGE_RECORD)
    grades = store.records(run_id, GRADE_RECORD)
    rows: list[dict[str, Any]] = [
        {
            "item": item,
            "prompt": prompts.get(item_id),
            "image": images.get(item_id),
            "grade": grades.get(item_id),
        }
        for item_id, item in sorted(items.items(), key=lambda kv: kv[1].get("position", 0))
    ]
    graded = [
        GradedImage(
            item_id=row["item"]["item_id"],
            k=int(row["item"]["k"]),
            concepts=tuple(
                GradedConcept(c["id"], c["category"], c["decided"])
                for c in row["grade"]["concepts"]
            ),
        )
        for row in rows
        if row["grade"]
    ]
    config = run["config"]
    catalog = store.records(run_id, CATALOG_RECORD).get("catalog", {})
    humans = store.human_verdicts(run_id)
    categories = {c["id"]: c.get("name", c["id"]) for c in catalog.get("categories", [])}
    return ImageReport(
        run_id=run_id,
        status=run["status"],
        config=config,
        catalog=catalog,
        rows=rows,
        metrics=image_metrics(graded, seed=int(config.get("seed", 0))),
        warnings=image_warnings(config, run["status"], rows),
        usage=[dict(row) for row in store.usage(run_id)],
        humans=[dict(h) for h in humans],
        agreement=image_agreement(
            (row["grade"] for row in rows if row["grade"]),
            humans,
            concept_names={c["id"]: c["name"] for c in catalog.get("concepts", [])},
            category_names=categories,
            seed=int(config.get("seed", 0)),
        ),
    )


def image_warnings(config: dict[str, Any], status: str, rows: list[dict[str, Any]]) -> list[str]:
    """What a reader must know before trusting the figures."""
    warnings = []
    roles = [
        role
        for role, spec in (
            ("prompter", config.get("prompter")),
            ("checker", config.get("checker") or config.get("prompter")),
            ("judge", config.get("judge")),
        )
        if spec and str(spec).split(":")[0] == "embedded"
    ]
    if roles:
        warnings.append(
            EMBEDDED_WARNING.format(
                roles=" and ".join(roles), verb="is" if len(roles) == 1 else "are"
            )
        )
    graded = [r for r in rows if r["grade"]]
    if len(graded) < len(rows):
        warnings.append(
            f"the run is {status}: {len(graded)} of {len(rows)} samples are graded; re-run the "
            "same command to finish it"
        )
    unchecked = Counter(
        r["prompt"]["status"] for r in rows if r["prompt"] and r["prompt"]["status"] != "passed"
    )
    if unchecked:
        parts = ", ".join(f"{n} {status}" for status, n in sorted(unchecked.items()))
        warnings.append(
            f"{sum(unchecked.values())} prompt(s) never passed the concept check after "
            f"{config.get('prompt_attempts')} attempt(s) ({parts}); their images were drawn "
            "and graded anyway (images.csv marks them)"
        )
    unscored = sum(1 for r in graded if r["grade"]["full_marks"] is None)
    if unscored:
        warnings.append(
            f"{unscored} image(s) are unscored: a concept had no readable answer in any "
            "grading round (and none was absent)"
        )
    unparsed = sum(c["votes"]["unparsed"] for r in graded for c in r["grade"]["concepts"])
    if unparsed:
        warnings.append(f"{unparsed} grading answer(s) could not be read (they did not vote)")
    per_k = Counter(int(r["item"]["k"]) for r in graded)
    small = sorted(k for k, n in per_k.items() if n < 30)
    if small:
        warnings.append(
            f"fewer than 30 images for k = {', '.join(map(str, small))}: the intervals are wide"
        )
    return warnings


# --- files ------------------------------------------------------------------------------------


def write_image_files(report: ImageReport, out_dir: str | Path) -> list[Path]:
    """image-report.json and CSVs: images, answers, concept and category success."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        return [
            _write_json(report, out / "image-report.json"),
            _write_images(report, out / "images.csv"),
            _write_answers(report, out / "answers.csv"),
            _write_rates(report, out / "concepts.csv", "concept"),
            _write_rates(report, out / "categories.csv", "category"),
        ]
    except OSError as err:
        raise InputError(
            f"cannot write the report to {out}: {err.strerror or err}",
            hint="choose another --out; the run itself is in the store",
        ) from err


def _write_json(report: ImageReport, path: Path) -> Path:
    text = json.dumps(finite(report.to_dict()), indent=2, ensure_ascii=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _write_images(report: ImageReport, path: Path) -> Path:
    """One row per sample: its concepts, prompt, check, image and score."""
    fields = [
        "run_id",
        "item_id",
        "k",
        "object",
        "concepts",
        "prompt",
        "prompt_check",
        "prompt_attempts",
        "image",
        "file",
        "full_marks",
        "concept_fraction",
    ]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in report.rows:
            item, prompt, image, grade = row["item"], row["prompt"], row["image"], row["grade"]
            writer.writerow(
                {
                    "run_id": report.run_id,
                    "item_id": item["item_id"],
                    "k": item["k"],
                    "object": item["object"]["name"],
                    "concepts": "; ".join(c["phrase"] for c in item["concepts"]),
                    "prompt": prompt["prompt"] if prompt else "",
                    "prompt_check": prompt["status"] if prompt else "",
                    "prompt_attempts": len(prompt["attempts"]) if prompt else "",
                    "image": image["sha256"] if image else "",
                    "file": image.get("file", "") if image else "",
                    "full_marks": _cell(grade["full_marks"] if grade else None),
                    "concept_fraction": _cell(grade["concept_fraction"] if grade else None),
                }
            )
    return path


def _write_answers(report: ImageReport, path: Path) -> Path:
    """One row per image and concept: the question, the votes and the decision."""
    fields = [
        "run_id",
        "item_id",
        "k",
        "concept",
        "category",
        "question",
        "yes",
        "no",
        "unparsed",
        "decided",
        "answers",
    ]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in report.rows:
            if not row["grade"]:
                continue
            for concept in row["grade"]["concepts"]:
                writer.writerow(
                    {
                        "run_id": report.run_id,
                        "item_id": row["item"]["item_id"],
                        "k": row["item"]["k"],
                        "concept": concept["id"],
                        "category": concept["category"],
                        "question": concept["question"],
                        **concept["votes"],
                        "decided": _cell(concept["decided"]),
                        "answers": " | ".join(r["answer"] or "unparsed" for r in concept["rounds"]),
                    }
                )
    return path


def _write_rates(report: ImageReport, path: Path, by: str) -> Path:
    rates = report.metrics.by_concept if by == "concept" else report.metrics.by_category
    fields = ["run_id", by, "successes", "n", "rate", "low", "high", "undecided"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for key, rate in sorted(rates.items()):
            writer.writerow({"run_id": report.run_id, by: key, **rate.to_dict()})
    return path


def _cell(value: object) -> object:
    return "" if value is None else value


# --- the terminal -----------------------------------------------------------------------------


def _share(value: float, low: float, high: float) -> str:
    if value != value:  # nan: no data
        return "—"
    return f"{value:.2f} [{low:.2f},{high:.2f}]"


def render_image_report(report: ImageReport, console: Console) -> None:
    """Full marks by k, success by category and concept, and the warnings."""
    from rich.table import Table

    from skillmix.terminal import escaped, plain

    cfg = report.config
    status = "" if report.status == "done" else f" ({report.status})"
    console.print(
        plain(
            f"image run {report.run_id}{status}: generator {cfg.get('generator')}, judge "
            f"{cfg.get('judge')}, prompter {cfg.get('prompter')}; concept catalog "
            f"{cfg.get('catalog')} ({str(cfg.get('catalog_hash', ''))[:12]}); "
            f"{cfg.get('grading_rounds')} grading round(s)"
        )
    )
    m = report.metrics
    by_k = Table(
        "k",
        "images",
        "full marks [95% CI]",
        "concept fraction [95% CI]",
        "unscored",
        title="full marks by k",
        title_justify="left",
        caption="bootstrap 95% intervals over images",
        caption_justify="left",
    )
    for k, row in m.by_k.items():
        by_k.add_row(
            str(k),
            str(row.images),
            _share(*row.full_marks.as_tuple()),
            _share(*row.concept_fraction.as_tuple()),
            str(row.unscored),
        )
    console.print(by_k)
    categories = Table(
        "category",
        "questions",
        "success [95% CI]",
        "undecided",
        title="success by category",
        title_justify="left",
        caption="Wilson 95% intervals over decided questions",
        caption_justify="left",
    )
    for category, rate in m.by_category.items():
        d = rate.to_dict()
        categories.add_row(
            plain(category),
            str(rate.n),
            _share(rate.rate, d["low"], d["high"]),
            str(rate.undecided),
        )
    console.print(categories)
    names = {c["id"]: c["name"] for c in report.catalog.get("concepts", [])}
    ranked = sorted(m.by_concept.items(), key=lambda kv: (kv[1].rate, kv[0]))
    shown = ranked[:TERMINAL_CONCEPTS]
    title = "success by concept" + (
        f" (the {len(shown)} lowest of {len(ranked)}; all in concepts.csv)"
        if len(ranked) > len(shown)
        else ""
    )
    concepts = Table("concept", "questions", "success [95% CI]", title=title, title_justify="left")
    for concept_id, rate in shown:
        d = rate.to_dict()
        concepts.add_row(
            plain(names.get(concept_id, concept_id)),
            str(rate.n),
            _share(rate.rate, d["low"], d["high"]),
        )
    console.print(concepts)
    if report.agreement is not None:
        render_image_agreement(report.agreement, console)
    for warning in report.warnings:
        console.print(f"[yellow]warning[/]: {escaped(warning)}", highlight=False)


def render_image_agreement(agreement: ImageAgreement, console: Console) -> None:
    """Judge vs human: all concepts, then each category (every concept is in the JSON)."""
    from rich.table import Table

    from skillmix.terminal import plain

    table = Table(
        "concepts",
        "answers",
        "images",
        "agreement [95% CI]",
        "kappa [95% CI]",
        "yes/yes",
        "judge yes, human no",
        "judge no, human yes",
        "no/no",
        title=plain(
            f"judge vs human ({len(agreement.reviewers)} reviewer(s): "
            f"{', '.join(agreement.reviewers)})"
        ),
        title_justify="left",
        caption="agreement: Wilson 95% interval; kappa: Cohen's, bootstrap 95% interval "
        "over images",
        caption_justify="left",
    )
    for row in (agreement.overall, *agreement.by_category):
        table.add_row(
            plain(row.name),
            str(row.units),
            str(row.images),
            _share(row.agreement, row.low, row.high),
            _estimate(row.kappa),
            *(str(n) for n in row.counts),
        )
    console.print(table)


def _estimate(e: Estimate) -> str:
    """`_share` of an estimate, or its value alone when it has no interval."""
    if e.low != e.low or e.high != e.high:
        return "—" if e.value != e.value else f"{e.value:.2f}"
    return _share(e.value, e.low, e.high)
