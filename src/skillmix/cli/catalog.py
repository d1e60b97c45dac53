"""`skillmix catalog ...`: inspect, validate, count and filter skill/topic catalogs."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from skillmix.cli._common import (
    UserError,
    catalog_option,
    console,
    open_catalog,
    open_store,
    parse_k,
    progress_bars,
    store_option,
)
from skillmix.terminal import escaped, plain


@click.group()
def catalog() -> None:
    """Inspect and validate skill/topic catalogs."""


@catalog.command("show")
@catalog_option
@click.option("--topics", "show_topics", is_flag=True, help="List topics instead of skills.")
@click.option("--category", help="Only skills of this category.")
def catalog_show(catalog_sources: tuple[str, ...], show_topics: bool, category: str | None) -> None:
    """List the skills (or topics) of a catalog."""
    from rich.table import Table

    cat = open_catalog(catalog_sources)
    if show_topics:
        table = Table("id", "topic", "category", title=f"{len(cat.topics)} topics")
        for t in cat.topics:
            table.add_row(*map(plain, (t.id, t.name, t.category)))
    else:
        if category is not None and category not in cat.categories:
            raise UserError(
                f"no category {category!r} in catalog {cat.name}; its categories: "
                f"{', '.join(cat.categories)}"
            )
        skills = [s for s in cat.skills if category is None or s.category == category]
        table = Table("id", "name", "category", "definition", title=f"{len(skills)} skills")
        for s in skills:
            table.add_row(*map(plain, (s.id, s.name, s.category, s.definition)))
    console.print(table)
    console.print(
        f"catalog {escaped(cat.name)} version {escaped(cat.version or '-')} "
        f"hash {cat.content_hash}",
        highlight=False,
    )


@catalog.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path())
def catalog_validate(files: tuple[str, ...]) -> None:
    """Check catalog files; print every problem with its file and line.

    Also reads the original Skill-Mix scripts' skills.csv (rows whose status is remove,
    removed, in review or maybe are left out, as those scripts did) and topics.txt.
    """
    cat = open_catalog(files)
    console.print(
        f"[green]ok[/]: {len(cat.skills)} skills in {len(cat.categories)} categories, "
        f"{len(cat.topics)} topics; hash {cat.content_hash}"
    )


@catalog.command("stats")
@catalog_option
@click.option(
    "--k",
    "k_values",
    multiple=True,
    default=("1,2,3,4,5",),
    show_default=True,
    help="Skills per item to count, e.g. --k 2,3.",
)
@click.option(
    "--frequencies",
    type=click.Path(exists=True),
    help="CSV kind,id,frequency (from `catalog filter`) for the corpus-occurrence bound.",
)
@click.option("--corpus-size", type=int, help="Number of texts in the corpus, for the bound.")
def catalog_stats(
    catalog_sources: tuple[str, ...],
    k_values: tuple[str, ...],
    frequencies: str | None,
    corpus_size: int | None,
) -> None:
    """Counts per category and the number of distinct items C(N,k)·T for each k.

    With --frequencies and --corpus-size, also the expected number of (item, text)
    co-occurrences in that corpus: an upper bound on how many items a model could have
    seen (topics without a frequency count as mutually exclusive, sum of p_topic <= 1).
    """
    from rich.table import Table

    from skillmix.analytics.frequency import read_frequencies
    from skillmix.catalog.sampling import combinations_count, elementary_symmetric

    cat = open_catalog(catalog_sources)
    per_category = Table(
        "category", "skills", title=f"catalog {escaped(cat.name)} ({cat.short_hash})"
    )
    for c in cat.categories:
        per_category.add_row(plain(c), str(sum(s.category == c for s in cat.skills)))
    per_category.add_row("[bold]total", f"[bold]{len(cat.skills)}")
    console.print(per_category)
    bound_columns: tuple[str, ...] = ()
    skill_freqs: list[float] = []
    topic_total = 1.0
    if frequencies and corpus_size:
        skill_map, topic_map = read_frequencies(frequencies)
        skill_freqs = [skill_map.get(s.id, 0.0) for s in cat.skills]
        if topic_map:
            topic_total = sum(topic_map.get(t.id, 0.0) for t in cat.topics)
        bound_columns = (f"seen in {corpus_size:,} texts (bound)",)
    elif frequencies or corpus_size:
        raise UserError("the corpus bound needs both --frequencies and --corpus-size")
    combos = Table(
        "k",
        "C(N,k)·T",
        "≈",
        *bound_columns,
        title=f"N={len(cat.skills)} skills, T={len(cat.topics)} topics",
    )
    for k in parse_k(k_values):
        n = combinations_count(len(cat.skills), k, len(cat.topics))
        cells = [str(k), f"{n:,}", f"10^{math.log10(n):.1f}" if n else "0"]
        if bound_columns and corpus_size:
            bound = corpus_size * topic_total * elementary_symmetric(skill_freqs, k)
            cells.append(f"{bound:,.1f} ({bound / n:.2%} of items)" if n else "0")
        combos.add_row(*cells)
    console.print(combos)


@catalog.command("filter")
@catalog_option
@click.option(
    "--corpus",
    required=True,
    type=click.Path(exists=True),
    help="Corpus sample: text with blank-line paragraphs, or JSONL with 'text'.",
)
@click.option("--tagger", required=True, help="Model that tags passages, provider:model.")
@click.option(
    "--threshold",
    default=0.05,
    show_default=True,
    help="Drop skills found in at least this share of passages.",
)
@click.option("--passages", default=200, show_default=True, help="Passages to sample.")
@click.option("--batch-size", default=8, show_default=True, help="Skills per tagger request.")
@click.option(
    "--seed", default=0, show_default=True, help="Seed of the passage sample and the tagging."
)
@click.option(
    "--out", "out_path", required=True, help="Where to write the filtered catalog (.yaml)."
)
@store_option
def catalog_filter(
    catalog_sources: tuple[str, ...],
    corpus: str,
    tagger: str,
    threshold: float,
    passages: int,
    batch_size: int,
    seed: int,
    out_path: str,
    store_path: str,
) -> None:
    """Drop skills that are common in a corpus sample (as the published method did)."""
    from rich.table import Table

    from skillmix.analytics.frequency import (
        drop_common,
        estimate_frequencies,
        read_passages,
        write_catalog_yaml,
        write_frequencies,
    )
    from skillmix.models import resolve_model
    from skillmix.runtime.calls import CallCache
    from skillmix.runtime.loop import run as run_async
    from skillmix.runtime.progress import ProgressBars

    cat = open_catalog(catalog_sources)
    texts = read_passages(corpus, passages, seed)
    model = resolve_model(tagger)
    store = open_store(store_path)
    calls = CallCache(store)
    progress = progress_bars()

    async def go() -> Any:
        try:
            return await estimate_frequencies(
                cat,
                texts,
                model,
                calls,
                batch_size=batch_size,
                seed=seed,
                progress=ProgressBars(progress),
            )
        finally:
            await model.aclose()

    with progress:
        result = run_async(go())
    filtered = drop_common(cat, result.frequencies, threshold)
    write_catalog_yaml(filtered, out_path)
    freq_path = Path(out_path).with_suffix(".frequencies.csv")
    write_frequencies(result, freq_path)
    table = Table(
        "skill", "frequency", "kept", title=f"{result.passages} passages, tagger {escaped(tagger)}"
    )
    for sid, freq in sorted(result.frequencies.items(), key=lambda kv: -kv[1]):
        table.add_row(plain(sid), f"{freq:.1%}", "no" if freq >= threshold else "yes")
    console.print(table)
    dropped = len(cat.skills) - len(filtered.skills)
    console.print(
        f"dropped {dropped} of {len(cat.skills)} skills at >= {threshold:.0%}; "
        f"{result.unparsed} unparsed tagger answer(s) left out; wrote {escaped(out_path)} "
        f"(hash {filtered.short_hash}) and {escaped(freq_path)}; "
        f"{calls.stats.sent} model calls, {calls.stats.cached} from the store",
        highlight=False,
    )
