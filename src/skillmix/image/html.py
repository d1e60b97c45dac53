"""The HTML page of image runs: one self-contained file (`skillmix image html`, and
`image-report.html` beside the JSON and CSV of `image run` and `image report`).

Built like the math page (`skillmix.math.html`) on the report's page machinery
(`skillmix.report.html.page`): its style sheet (plus `templates/image.css`), its
macros, `script_json`, and a Content-Security-Policy that allows only the page's own
script and style by their hashes, and images only from `data:` URLs. It shows:

- the header (runs, models, catalog) and every warning of every run;
- full marks and the concept fraction by k with their intervals (SVG charts from
  `skillmix.report.svg`), success per category and per concept (Wilson intervals);
- judge-versus-human agreement (`image.agreement`), once people have answered the
  questions in the review app;
- the image browser: every sample with its image as a thumbnail (`image.thumbnails`:
  at most 256 px and 24 kB each), its prompt and the check of every attempt, its
  concepts, and per concept the question, each grading round's raw reply and parsed
  answer, the decision, and the people's answers.

What a model wrote (prompts, the judge's replies) travels only in the page's JSON
(`<script type="application/json" id="image-data">`), which `templates/image.js` puts on
the page with textContent; the templates print only our own words, numbers and catalog
names (escaped by autoescape), and SVG from `skillmix.report.svg`, which escapes its
labels. The page makes no network request.

A section is a template `templates/sections/<name>.html.j2` (root
`<section id="{{ section.id }}">`, reading `section.view`) and a view function
registered with `@section_view(order)` that returns a `Section` or None (nothing to
show), as on the math page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from skillmix.errors import InputError, StoreError
from skillmix.image.agreement import AgreementRow
from skillmix.image.image_store import ImageStore
from skillmix.image.report import ImageReport
from skillmix.image.thumbnails import (
    THUMBNAIL_BYTES,
    THUMBNAIL_PX,
    Thumbnail,
    ThumbnailError,
    make_thumbnail,
    pillow_available,
)
from skillmix.report.html.page import (
    asset,
    content_security_policy,
    environment,
    package_asset,
    skillmix_version,
)
from skillmix.report.html.view import PageWarning
from skillmix.report.svg import IntervalRow, Point, Series, interval_plot, line_chart
from skillmix.store import Store

_PACKAGE = __name__.rpartition(".")[0]
SEVERE = ("smoke test", "re-run the same command")  # warnings that make the figures unusable
PAGE_FILE = "image-report.html"


# --- what the page is made of -----------------------------------------------------------------


@dataclass(frozen=True)
class RunOnPage:
    """One run of the page: its report and how the page names it."""

    label: str  # its generator, with the run id when two runs share one
    report: ImageReport


@dataclass
class ImagePage:
    """The inputs of a page: the runs, their thumbnails (by image hash) and the header."""

    title: str
    lede: str
    runs: list[RunOnPage]
    thumbnails: dict[str, Thumbnail | None]  # sha256 -> thumbnail; None: no file or unreadable
    facts: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[PageWarning] = field(default_factory=list)


@dataclass(frozen=True)
class Section:
    """One section of the page: its anchor, its link text, its template and its view."""

    id: str
    title: str
    template: str  # "sections/<name>.html.j2"
    view: Any = None  # what the template reads as `section.view`


SectionView = Callable[[ImagePage], Section | None]
_VIEWS: list[tuple[int, SectionView]] = []


def section_view(order: int) -> Callable[[SectionView], SectionView]:
    """Register a view function; its section appears in `order` (lower first)."""

    def register(view: SectionView) -> SectionView:
        _VIEWS.append((order, view))
        return view

    return register


@dataclass(frozen=True)
class PageView:
    """What the page template reads."""

    title: str
    lede: str
    facts: list[tuple[str, str]]
    warnings: list[PageWarning]
    sections: list[Section]
    data: dict[str, Any]
    several: bool  # more than one run: tables get a run column
    budget: str  # the size budget of a thumbnail, in words


# --- building the page --------------------------------------------------------------------------


def image_page(store: Store, reports: Sequence[ImageReport]) -> ImagePage:
    """The page of already built reports of runs in `store` (their images beside it)."""
    if not reports:
        raise ValueError("an image page needs at least one run")
    labels = _labels(reports)
    runs = [RunOnPage(labels[r.run_id], r) for r in reports]
    thumbnails, thumb_warnings = page_thumbnails(reports, ImageStore.beside(store))
    warnings = [
        PageWarning("severe" if any(s in text for s in SEVERE) else "warn", run.label, text)
        for run in runs
        for text in run.report.warnings
    ] + [PageWarning("warn", "images", text) for text in thumb_warnings]
    first = reports[0]
    if len(reports) == 1:
        cfg = first.config
        facts = [
            ("run", first.run_id),
            ("status", first.status),
            ("generator", str(cfg.get("generator"))),
            ("judge", str(cfg.get("judge"))),
            ("prompter", str(cfg.get("prompter"))),
            ("checker", str(cfg.get("checker") or cfg.get("prompter"))),
            ("concept catalog", _catalog_text(first)),
            ("k", ", ".join(str(k) for k in cfg.get("k", ()))),
            ("samples", f"{len(first.rows)} ({cfg.get('items')} per k)"),
            ("grading rounds", str(cfg.get("grading_rounds"))),
            ("seed", str(cfg.get("seed"))),
        ]
        title = f"ConceptMix: {_short(str(cfg.get('generator')))}"
        lede = (
            f"{len(first.rows)} images by {cfg.get('generator')}, each asked for an object "
            f"and k visual concepts; the judge {cfg.get('judge')} answered one yes/no "
            "question per concept"
        )
    else:
        facts = [(run.label, _run_summary(run.report)) for run in runs]
        title = f"ConceptMix: {len(runs)} runs"
        lede = "Image runs side by side: full marks by k, success per concept, every image"
    return ImagePage(title, lede, runs, thumbnails, facts, warnings)


def page_thumbnails(
    reports: Sequence[ImageReport], images: ImageStore
) -> tuple[dict[str, Thumbnail | None], list[str]]:
    """The thumbnail of every image of `reports` (each once), and what went wrong."""
    digests = sorted(
        {r["image"]["sha256"] for report in reports for r in report.rows if r["image"]}
    )
    if not digests:
        return {}, []
    if not pillow_available():
        return dict.fromkeys(digests), [
            "Pillow is not installed, so the page shows no images: pip install pillow, "
            "then write the page again"
        ]
    found: dict[str, Thumbnail | None] = {}
    missing: list[str] = []
    unreadable: list[str] = []
    for digest in digests:
        try:
            found[digest] = make_thumbnail(images.read(digest))
        except StoreError:
            found[digest] = None
            missing.append(digest[:12])
        except ThumbnailError:
            found[digest] = None
            unreadable.append(digest[:12])
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} image file(s) are not in {images.root} ({', '.join(missing[:5])}"
            f"{'…' if len(missing) > 5 else ''}): copy the image folder along with the store"
        )
    if unreadable:
        problems.append(
            f"{len(unreadable)} image file(s) could not be read as images "
            f"({', '.join(unreadable[:5])})"
        )
    return found, problems


def page_view(page: ImagePage) -> PageView:
    """Run every registered view on `page`, and gather the browser's data."""
    sections = [s for _, view in sorted(_VIEWS, key=lambda v: v[0]) if (s := view(page))]
    ids = [s.id for s in sections]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two sections share an id: {ids}")
    return PageView(
        page.title,
        page.lede,
        page.facts,
        page.warnings,
        sections,
        page_data(page),
        len(page.runs) > 1,
        thumbnail_budget(),
    )


def page_data(page: ImagePage) -> dict[str, Any]:
    """The page's JSON: the runs, the thumbnails (each once, by hash) and every sample with
    its prompt, its check, and each concept's rounds, decision and human answers."""
    items = []
    for index, run in enumerate(page.runs):
        humans = _human_answers(run)
        for row in run.report.rows:
            items.append(item_data(index, row, humans))
    return {
        "runs": [{"id": run.report.run_id, "label": run.label} for run in page.runs],
        "images": {d: t.to_dict() for d, t in page.thumbnails.items() if t is not None},
        "items": items,
    }


def item_data(
    run: int, row: Mapping[str, Any], humans: Mapping[tuple[str, str], list[list[Any]]]
) -> dict[str, Any]:
    """One sample as the browser shows it (every field straight from its records)."""
    item, prompt, image, grade = row["item"], row["prompt"], row["image"], row["grade"]
    graded = {c["id"]: c for c in grade["concepts"]} if grade else {}
    names = {c["id"]: c["name"] for c in item["concepts"]}
    concepts = []
    for c in item["concepts"]:
        g = graded.get(c["id"])
        concepts.append(
            {
                "id": c["id"],
                "name": c["name"],
                "category": c.get("category_name") or c["category"],
                "phrase": c["phrase"],
                "question": c["question"],
                "decided": g["decided"] if g else None,
                "votes": g["votes"] if g else None,
                "rounds": [
                    {
                        "round": r["round"],
                        "status": r["status"],
                        "answer": r["answer"],
                        "raw": r["raw"],
                        "reason": r["reason"],
                    }
                    for r in (g["rounds"] if g else [])
                ],
                "human": humans.get((item["item_id"], c["id"]), []),
            }
        )
    return {
        "run": run,
        "id": item["item_id"],
        "k": item["k"],
        "object": item["object"]["name"],
        "prompt": prompt["prompt"] if prompt else None,
        "prompt_status": prompt["status"] if prompt else None,
        "attempts": [
            {
                "prompt": a["prompt"],
                "status": a["check"]["status"],
                "missing": [names.get(m, m) for m in a["check"].get("missing", [])],
                "reason": a["check"].get("reason", ""),
            }
            for a in (prompt["attempts"] if prompt else [])
        ],
        "image": image["sha256"] if image else None,
        "image_size": [image.get("width"), image.get("height")] if image else None,
        "graded": grade is not None,
        "full_marks": grade["full_marks"] if grade else None,
        "concept_fraction": grade["concept_fraction"] if grade else None,
        "concepts": concepts,
    }


def _human_answers(run: RunOnPage) -> dict[tuple[str, str], list[list[Any]]]:
    """(item id, concept id) -> [[reviewer, answer], ...] of the people who answered."""
    found: dict[tuple[str, str], list[list[Any]]] = {}
    for h in run.report.humans:
        if h["gen_round"] == 0:
            found.setdefault((h["item_id"], h["criterion"]), []).append(
                [h["reviewer"], int(h["value"])]
            )
    return found


def build_page(page: ImagePage) -> str:
    """The whole HTML document of `page`."""
    style = asset("report.css") + _asset("image.css")
    script = asset("dom.js") + _asset("image.js")
    # Images come only as data: URLs, which the page's script makes from its own JSON.
    csp = content_security_policy(script, style) + "; img-src data:"
    return (
        environment(_PACKAGE)
        .get_template("image_page.html.j2")
        .render(
            page=page_view(page),
            version=skillmix_version(),
            csp=Markup(csp),  # hashes and keywords only
            style=Markup(style),
            script=Markup(script),
        )
    )


def write_image_page(store: Store, reports: Sequence[ImageReport], path: str | Path) -> Path:
    """Write the page of `reports` (runs of `store`) to `path`, its folder made; an
    `InputError` names a path that cannot be written."""
    out = Path(path)
    text = build_page(image_page(store, reports))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot write {out}: {err.strerror or err}") from err
    return out


def _asset(name: str) -> str:
    """The text inlined for one of this page's style sheets or scripts."""
    return package_asset(_PACKAGE, "templates", name)


def _run_summary(report: ImageReport) -> str:
    judge = report.config.get("judge")
    return f"{report.run_id} · judge {judge} · {len(report.rows)} images · {report.status}"


def _short(spec: str) -> str:
    """`openai-images:model@http://host/v1` -> `openai-images:model`."""
    return spec.split("@", 1)[0]


def _labels(reports: Sequence[ImageReport]) -> dict[str, str]:
    """Each run's name on the page: its generator, with its run id when two share one."""
    generators = [_short(str(r.config.get("generator"))) for r in reports]
    return {
        r.run_id: g if generators.count(g) == 1 else f"{g} ({r.run_id})"
        for r, g in zip(reports, generators, strict=True)
    }


def _catalog_text(report: ImageReport) -> str:
    catalog = report.catalog
    concepts = len(catalog.get("concepts", []))
    digest = str(report.config.get("catalog_hash", ""))[:12]
    return f"{report.config.get('catalog')} · {concepts} concepts · {digest}"


def share(value: float, low: float, high: float) -> str:
    """`0.62 [0.48, 0.75]`; a dash for no value; the value alone without an interval."""
    if value != value:
        return "—"
    if low != low or high != high:
        return f"{value:.2f}"
    return f"{value:.2f} [{low:.2f}, {high:.2f}]"


# --- the sections -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ByKRow:
    run: str
    k: int
    images: int
    full_marks: str
    concept_fraction: str
    unscored: int


@dataclass(frozen=True)
class ByKView:
    full_marks_svg: Markup
    fraction_svg: Markup
    rows: list[ByKRow]


@section_view(order=10)
def full_marks(page: ImagePage) -> Section | None:
    """Full marks and the concept fraction by k, as charts and a table."""
    rows = []
    full_series, fraction_series = [], []
    for run in page.runs:
        by_k = run.report.metrics.by_k
        full_points, fraction_points = [], []
        for k, m in sorted(by_k.items()):
            full_points.append(Point(k, *m.full_marks.as_tuple(), n=m.full_marks.n))
            fraction_points.append(Point(k, *m.concept_fraction.as_tuple(), n=m.concept_fraction.n))
            rows.append(
                ByKRow(
                    run.label,
                    k,
                    m.images,
                    share(*m.full_marks.as_tuple()),
                    share(*m.concept_fraction.as_tuple()),
                    m.unscored,
                )
            )
        full_series.append(Series(run.label, full_points))
        fraction_series.append(Series(run.label, fraction_points))
    x_label = "k (concepts per image)"
    return Section(
        "by-k",
        "Full marks by k",
        "sections/image_by_k.html.j2",
        ByKView(
            full_marks_svg=Markup(
                line_chart(
                    full_series,
                    element_id="full-marks-chart",
                    title="Full marks: every concept present",
                    y_label="full marks",
                    x_label=x_label,
                )
            ),
            fraction_svg=Markup(
                line_chart(
                    fraction_series,
                    element_id="fraction-chart",
                    title="Concept fraction: share of concepts present",
                    y_label="concept fraction",
                    x_label=x_label,
                )
            ),
            rows=rows,
        ),
    )


@dataclass(frozen=True)
class RateRow:
    run: str
    key: str
    name: str
    category: str
    questions: int
    success: str
    undecided: int
    rate: float


@dataclass(frozen=True)
class RatesView:
    svg: Markup | None
    categories: list[RateRow]
    concepts: list[RateRow]


@section_view(order=20)
def success(page: ImagePage) -> Section | None:
    """Success per category (a forest plot and a table) and per concept (a table)."""
    categories, concepts, plot = [], [], []
    several = len(page.runs) > 1
    for run in page.runs:
        catalog = run.report.catalog
        category_names = {c["id"]: c.get("name", c["id"]) for c in catalog.get("categories", [])}
        concept_info = {c["id"]: c for c in catalog.get("concepts", [])}
        m = run.report.metrics
        for key, rate in m.by_category.items():
            d = rate.to_dict()
            name = category_names.get(key, key)
            interval = share(rate.rate, d["low"], d["high"])
            categories.append(
                RateRow(run.label, key, name, "", rate.n, interval, rate.undecided, rate.rate)
            )
            label = f"{run.label} · {name}" if several else name
            note = f"{rate.successes} of {rate.n} questions"
            plot.append(IntervalRow(label, rate.rate, d["low"], d["high"], note=note))
        for key, rate in m.by_concept.items():
            d = rate.to_dict()
            info = concept_info.get(key, {})
            category = str(info.get("category", ""))
            concepts.append(
                RateRow(
                    run=run.label,
                    key=key,
                    name=str(info.get("name", key)),
                    category=category_names.get(category, category),
                    questions=rate.n,
                    success=share(rate.rate, d["low"], d["high"]),
                    undecided=rate.undecided,
                    rate=rate.rate,
                )
            )
    concepts.sort(key=lambda r: (r.run, r.rate if r.rate == r.rate else 2.0, r.name))
    svg = None
    if plot:
        svg = Markup(
            interval_plot(
                plot,
                element_id="category-plot",
                title="Success by category (95% Wilson intervals)",
                x_label="share of questions answered yes",
            )
        )
    return Section(
        "success",
        "By concept",
        "sections/image_success.html.j2",
        RatesView(svg, categories, concepts),
    )


@dataclass(frozen=True)
class AgreementCells:
    run: str
    group: str
    name: str
    units: int
    images: int
    agreement: str
    kappa: str
    both_yes: int
    judge_only: int
    human_only: int
    both_no: int


@dataclass(frozen=True)
class RunAgreement:
    run: str
    note: str
    overall: AgreementCells | None


@dataclass(frozen=True)
class AgreementView:
    runs: list[RunAgreement]
    categories: list[AgreementCells]
    concepts: list[AgreementCells]
    any: bool


def _agreement_cells(run: str, row: AgreementRow) -> AgreementCells:
    both_yes, judge_only, human_only, both_no = row.counts
    k = row.kappa
    return AgreementCells(
        run=run,
        group=row.group,
        name=row.name,
        units=row.units,
        images=row.images,
        agreement=share(row.agreement, row.low, row.high),
        kappa=share(k.value, k.low, k.high),
        both_yes=both_yes,
        judge_only=judge_only,
        human_only=human_only,
        both_no=both_no,
    )


@section_view(order=40)
def agreement(page: ImagePage) -> Section | None:
    """Judge versus human, per run, category and concept."""
    runs, categories, concepts = [], [], []
    for run in page.runs:
        a = run.report.agreement
        if a is None:
            note = (
                "No person has answered the questions of this run yet: "
                f"skillmix review {run.report.run_id}"
            )
            runs.append(RunAgreement(run.label, note, None))
            continue
        people = ", ".join(a.reviewers)
        left = []
        if a.undecided:
            left.append(f"{a.undecided} the judge left undecided")
        if a.ties:
            left.append(f"{a.ties} where the people tie")
        note = (
            f"{a.units} answers on {a.images} image(s) by {len(a.reviewers)} "
            f"{'person' if len(a.reviewers) == 1 else 'people'} ({people})"
            + (f"; left out: {', '.join(left)}" if left else "")
        )
        runs.append(RunAgreement(run.label, note, _agreement_cells(run.label, a.overall)))
        categories += [_agreement_cells(run.label, r) for r in a.by_category]
        concepts += [_agreement_cells(run.label, r) for r in a.by_concept]
    view = AgreementView(runs, categories, concepts, any(r.overall for r in runs))
    return Section("agreement", "Judge vs human", "sections/image_agreement.html.j2", view)


@dataclass(frozen=True)
class UsageRow:
    run: str
    role: str
    model: str
    answered: str
    calls: str
    prompt_tokens: str
    completion_tokens: str


@section_view(order=90)
def usage(page: ImagePage) -> Section | None:
    """Calls and tokens of each run, per role and model."""
    rows = [
        UsageRow(
            run.label,
            str(u["role"]),
            f"{u['provider']}:{u['model']}",
            "sent" if u["sent"] else "from the store",
            f"{int(u['calls'] or 0):,}",
            f"{int(u['prompt_tokens'] or 0):,}",
            f"{int(u['completion_tokens'] or 0):,}",
        )
        for run in page.runs
        for u in run.report.usage
    ]
    if not rows:
        return None
    return Section("usage", "Calls", "sections/image_usage.html.j2", rows)


def thumbnail_budget() -> str:
    """The size budget of a thumbnail, as the page states it."""
    return (
        f"at most {THUMBNAIL_PX} px on the longer side and {THUMBNAIL_BYTES // 1000} kB "
        "(PNG or JPEG, whichever is smaller)"
    )
