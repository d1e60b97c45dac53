"""`skillmix image`: ConceptMix, compositional text-to-image evaluation."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from skillmix.cli._common import (
    MODEL_SPECS,
    UserError,
    console,
    err_console,
    job_options,
    open_store,
    parse_k,
    print_estimate,
    print_usage,
    run_pipeline,
    settings_options,
    store_option,
)
from skillmix.terminal import escaped

if TYPE_CHECKING:
    from skillmix.image.concepts import ConceptCatalog
    from skillmix.image.report import ImageReport
    from skillmix.store import Store

GENERATOR_SPECS = (
    "Forms: openai-images:MODEL[@URL] (any OpenAI-compatible /images/generations endpoint); "
    "diffusers:MODEL (in-process, needs the `images` extra and a GPU)."
)
concept_catalog_option = click.option(
    "--catalog",
    "catalog_source",
    default="builtin",
    show_default=True,
    help="Concept catalog: builtin or a YAML file (`skillmix image catalog` checks one).",
)


@click.group("image")
def image_group() -> None:
    """ConceptMix: can a text-to-image model compose k visual concepts?

    A sample is an object and k concepts (colour, shape, texture, size, number, spatial
    relation, style) that the catalog's rules allow together; a text model writes the
    prompt, the generator draws it, and a vision judge answers one yes/no question per
    concept. An image scores when every concept is there.
    """


@image_group.command("run")
@click.option("--generator", required=True, help=f"Image model under test. {GENERATOR_SPECS}")
@click.option(
    "--judge",
    required=True,
    help="Vision chat model that answers the questions: openai:MODEL[@URL] (the image goes "
    "as a data URL in an image_url part).",
)
@click.option(
    "--prompter",
    default="embedded",
    show_default=True,
    help=f"Text model that writes the prompts. {MODEL_SPECS}",
)
@click.option(
    "--checker",
    help="Text model that checks each prompt expresses every concept (default: the prompter).",
)
@click.option("--k", "k_values", multiple=True, help="Concepts per sample, e.g. --k 1,2,3,4.")
@click.option("--items", type=int, default=10, show_default=True, help="Samples per k.")
@click.option(
    "--grading-rounds",
    type=int,
    default=3,
    show_default=True,
    help="Independent answers per question, majority-voted.",
)
@click.option(
    "--prompt-attempts",
    type=int,
    default=3,
    show_default=True,
    help="Prompts written per sample until one passes the concept check.",
)
@concept_catalog_option
@click.option(
    "--categories",
    help="Only these concept categories, comma-separated (e.g. colour,shape,number).",
)
@click.option("--image-size", default="512x512", show_default=True, help="WIDTHxHEIGHT.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of samples and calls.")
@click.option("--temperature", type=float, help="Prompter temperature (default: none sent).")
@click.option(
    "--judge-temperature", type=float, help="Checker and judge temperature (default: none sent)."
)
@click.option("--no-structured", is_flag=True, help="Never ask for JSON-schema output.")
@click.option("--out", default="image-out", show_default=True, help="Folder for the report files.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@store_option
@job_options("Samples")
@settings_options
def image_run(
    generator: str,
    judge: str,
    prompter: str,
    checker: str | None,
    k_values: tuple[str, ...],
    items: int,
    grading_rounds: int,
    prompt_attempts: int,
    catalog_source: str,
    categories: str | None,
    image_size: str,
    seed: int,
    temperature: float | None,
    judge_temperature: float | None,
    no_structured: bool,
    out: str,
    as_json: bool,
    store_path: str,
    estimate: bool,
    max_cost: float | None,
    workers: int | None,
    settings_file: str | None,
    pricing: str | None,
) -> None:
    """Write prompts for concept samples, generate the images and grade them.

    Prints full marks by k with 95% intervals and success per category and concept;
    writes image-report.json, CSVs and the page image-report.html to OUT/RUN_ID. Images
    are kept by hash beside the store (STORE.images/). Re-running the same command
    resumes and sends nothing twice.
    """
    from pydantic import ValidationError

    from skillmix.errors import invalid_settings
    from skillmix.image.generators import resolve_generator
    from skillmix.image.image_store import ImageStore
    from skillmix.image.run import ImageRun, ImageRunConfig
    from skillmix.models import load_settings, resolve_model
    from skillmix.runtime.budget import check_max_cost

    check_max_cost(max_cost)
    catalog = _open_concept_catalog(catalog_source, categories)
    try:
        config = ImageRunConfig(
            generator=generator,
            judge=judge,
            prompter=prompter,
            checker=checker,
            catalog=catalog.name,
            catalog_hash=catalog.content_hash,
            k=parse_k(k_values) or (1, 2, 3, 4),
            items=items,
            grading_rounds=grading_rounds,
            prompt_attempts=prompt_attempts,
            seed=seed,
            image_size=image_size,
            temperature=temperature,
            judge_temperature=judge_temperature,
            structured=not no_structured,
        )
    except ValidationError as err:
        raise invalid_settings(err) from None
    settings = load_settings(settings_file, pricing)
    store = open_store(store_path)
    images = ImageStore.beside(store)
    prompter_model = resolve_model(prompter, settings)
    models: dict[str, Any] = {
        "generator": resolve_generator(
            generator, images, size=config.image_size, settings=settings
        ),
        "judge": resolve_model(judge, settings),
        "prompter": prompter_model,
        "checker": resolve_model(checker, settings) if checker else None,
    }
    pipeline = ImageRun(
        store, config, catalog, images=images, settings=settings, max_cost=max_cost,
        estimate=estimate, workers=workers, **models,
    )  # fmt: skip
    announce = (
        None
        if estimate
        else (
            f"image run [bold]{pipeline.run_id}[/]: generator {escaped(generator)}, judge "
            f"{escaped(judge)}, prompter {escaped(prompter)}; {len(pipeline.samples)} "
            f"sample(s) (k = {', '.join(map(str, config.k))}); store {escaped(store.location)}, "
            f"images in {escaped(images.root)}"
        )
    )
    result = run_pipeline(pipeline, pipeline.priced_models, announce)
    if estimate:
        roles = {
            "prompter": [pipeline.prompter],
            "checker": [pipeline.checker],
            "generator": [pipeline.generator],
            "judge": [pipeline.judge.model],
        }
        print_estimate(result.stats, f"estimate for {pipeline.run_id}", roles, pipeline.calls)
        console.print(
            "prompts are counted as passing their first check (an estimate cannot read them); "
            "image calls are not priced",
            highlight=False,
        )
        return
    print_usage(result.stats, "this invocation")
    _report(store, result.run_id, out, as_json)


@image_group.command("report")
@click.argument("run_id")
@click.option("--out", default="image-out", show_default=True, help="Folder for the report files.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@store_option
def image_report(run_id: str, out: str, as_json: bool, store_path: str) -> None:
    """Show an image run: full marks by k, success by category and concept.

    Writes image-report.json, images.csv, answers.csv, concepts.csv, categories.csv and
    the page image-report.html to OUT/RUN_ID. RUN_ID may be a unique start of the id.
    Once people have answered its questions (`skillmix review RUN_ID`), it shows
    judge-vs-human agreement too.
    """
    store = open_store(store_path, read_only=True)
    _report(store, run_id, out, as_json)


@image_group.command("html")
@click.argument("run_ids", nargs=-1, required=True)
@click.option(
    "--out", "out_path", default="image-report.html", show_default=True, help="The HTML file."
)
@store_option
def image_html(run_ids: tuple[str, ...], out_path: str, store_path: str) -> None:
    """Write one self-contained HTML page of image RUN_IDs (unique starts of ids will do).

    The file opens from disk with no network access: full marks by k, success by
    category and concept, judge-vs-human agreement once people have answered in
    `skillmix review`, and every image as a thumbnail with its prompt and each concept's
    verdicts (every grading round's reply). No model is called.
    """
    from skillmix.image.html import write_image_page
    from skillmix.image.report import build_image_report

    store = open_store(store_path, read_only=True)
    reports: dict[str, ImageReport] = {}
    for run_id in run_ids:
        report = build_image_report(store, run_id)
        reports.setdefault(report.run_id, report)
    path = write_image_page(store, list(reports.values()), out_path)
    console.print(
        f"wrote {escaped(path)} ({path.stat().st_size / 1e6:.2f} MB, {len(reports)} run(s))",
        highlight=False,
    )


@image_group.command("catalog")
@click.argument("source", default="builtin")
@click.option("--categories", help="Only these concept categories, comma-separated.")
def image_catalog(source: str, categories: str | None) -> None:
    """Check a concept catalog (builtin or a YAML file) and show what it holds.

    Prints every problem with its file and line; for a valid catalog, the concepts per
    category, the rules, the largest k they allow and the content hash.
    """
    from rich.table import Table

    from skillmix.image.sampling import max_k

    catalog = _open_concept_catalog(source, categories)
    table = Table(
        "category", "role", "concepts", "per sample", title=f"concept catalog {catalog.name}"
    )
    for category in catalog.categories:
        table.add_row(
            escaped(category.id),
            category.role,
            str(len(catalog.in_category(category.id))),
            "1 (the object)" if category.role == "object" else str(category.max),
        )
    console.print(table)
    console.print(
        f"[green]ok[/]: {len(catalog.concepts)} concepts in {len(catalog.categories)} "
        f"categories, {len(catalog.rules)} rule(s); k up to {max_k(catalog)}; version "
        f"{escaped(catalog.version or '-')}; hash {catalog.content_hash}",
        highlight=False,
    )


def _open_concept_catalog(source: str, categories: str | None) -> ConceptCatalog:
    """The concept catalog `--catalog` names, with only `--categories` if given."""
    from skillmix.image.load import load_concept_catalog

    catalog = load_concept_catalog(source)
    if not categories:
        return catalog
    wanted = {c.strip() for c in categories.split(",") if c.strip()}
    known = {c.id for c in catalog.concept_categories}
    unknown = sorted(wanted - known)
    if unknown or not wanted:
        raise UserError(
            f"unknown concept categor{'y' if len(unknown) == 1 else 'ies'} "
            f"{', '.join(unknown) or '(none given)'}; the catalog has {', '.join(sorted(known))}"
        )
    return catalog.restricted(wanted)


def _report(store: Store, run_id: str, out: str, as_json: bool) -> None:
    from skillmix.image.html import PAGE_FILE, write_image_page
    from skillmix.image.report import (
        build_image_report,
        finite,
        render_image_report,
        write_image_files,
    )

    report = build_image_report(store, run_id)
    folder = Path(out) / report.run_id
    paths = write_image_files(report, folder)
    paths.append(write_image_page(store, [report], folder / PAGE_FILE))
    if as_json:
        document = {**report.to_dict(), "files": [str(p) for p in paths]}
        text = json.dumps(finite(document), indent=2, ensure_ascii=False)
        sys.stdout.write(text + "\n")
        return
    render_image_report(report, console)
    err_console.print(f"report files: {escaped(folder)}/", highlight=False)
