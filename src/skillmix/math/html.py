"""The math HTML page: one self-contained file for math runs (`math label`, `math eval`).

Built on the report's page machinery (`skillmix.report.html.page`): its style sheet (plus
`templates/math.css`), its macros, `script_json` and the Content-Security-Policy that
allows only the page's own script and style by their hashes. As in the report, what a
model wrote (skill names, rationales, definitions, answers) travels only in the page's
JSON (`<script type="application/json" id="math-data">`) and `templates/math.js` puts it
on the page with textContent: the templates print only our own words and numbers
(escaped by autoescape), the tables with model text are `Table`s that the script fills,
and the only markup is SVG from `skillmix.report.svg`, which escapes its labels. The
page makes no network request.

Adding a section (the hook for `math eval` and later pipelines)
---------------------------------------------------------------
1. A template `templates/sections/<name>.html.j2`, included with `section` (your
   `Section`) and `page` (the `PageView`) in scope. Its root is
   `<section id="{{ section.id }}">`; it prints `section.view` (your own plain data:
   notes, numbers, SVG charts as `Markup`) and places tables with
   `{% import "math_macros.html.j2" as m %}{{ m.data_table("my-table") }}`. The report's
   `macros.html.j2` is there too.
2. A view function, registered by a decorator:

       @section_view(order=40)
       def accuracy(page: MathPage) -> Section | None:
           result = page.results.get("eval")
           if result is None:
               return None
           return Section(
               "accuracy", "Accuracy", "sections/eval_accuracy.html.j2",
               view=..., tables={"accuracy-table": Table(...)}, panels=..., tags=...,
           )

   It reads its pipeline's result from `page.results` (each pipeline uses its own key:
   "label" and "label_agreement" here, "eval" for evaluation, "profile" for
   missing-skill profiles) and returns None when there is nothing to show. Sections
   appear in `order` (labelling uses 10 to 30, evaluation 40 and 50, profiles 60, usage
   90); the question browser comes last. A view registers when its module is imported:
   import it before `build_page` (the command that renders the page does).
3. Entries in the question browser: a Section's `panels` (question id -> `Panel`s: a
   title, short facts, long texts such as a model's answer) and `tags` (question id ->
   `Tag`s: badges in the list, which the browser also offers as a filter). The browser
   shows a question's text, answer, solution and human concepts, then every section's
   panels in section order. All of it is text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from skillmix.errors import InputError
from skillmix.math.label import LabelResult, group_fine_names
from skillmix.math.problems import MathDataset
from skillmix.report.html.page import (
    asset,
    content_security_policy,
    environment,
    package_asset,
    skillmix_version,
)
from skillmix.report.html.view import PageWarning
from skillmix.report.svg import heatmap
from skillmix.scoring.stats import Estimate

if TYPE_CHECKING:
    from skillmix.math.label_agreement import Agreement, AgreementRow

_PACKAGE = __name__.rpartition(".")[0]
CONCEPT_COLUMNS = 24  # the confusion view shows the concepts that co-occur most


# --- what a section gives the page --------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """One block of a question's detail in the browser: short facts (label, value) and
    long texts (label, text, shown as preformatted text), all as text."""

    title: str
    facts: tuple[tuple[str, str], ...] = ()
    texts: tuple[tuple[str, str], ...] = ()

    def data(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "facts": [list(f) for f in self.facts],
            "texts": [list(t) for t in self.texts],
        }


@dataclass(frozen=True)
class Tag:
    """A badge on a question's row in the browser (also a filter choice); `tone` is its
    colour: "good", "bad", "warn" or "none"."""

    text: str
    tone: str = "none"

    def data(self) -> dict[str, str]:
        return {"text": self.text, "tone": self.tone}


@dataclass(frozen=True)
class Column:
    """A column of a `Table`: its header and whether its cells are numbers (right-aligned)."""

    header: str
    numeric: bool = False


@dataclass(frozen=True)
class Table:
    """A table the script fills from the page's JSON: for any text a model wrote.

    A cell is a string, or a (text, tooltip) pair.
    """

    columns: tuple[Column, ...]
    rows: Sequence[Sequence[str | tuple[str, str]]]
    empty: str = "nothing to show"

    def data(self) -> dict[str, Any]:
        return {
            "columns": [{"header": c.header, "numeric": c.numeric} for c in self.columns],
            "rows": [[list(c) if isinstance(c, tuple) else c for c in row] for row in self.rows],
            "empty": self.empty,
        }


@dataclass(frozen=True)
class Section:
    """What a view function returns: one section of the page (see the module docstring)."""

    id: str  # the anchor, unique on the page
    title: str  # the link in the page's navigation
    template: str  # "sections/<name>.html.j2"
    view: Any = None  # what the template reads as `section.view`
    tables: Mapping[str, Table] = field(default_factory=dict)  # table id -> table
    panels: Mapping[str, Sequence[Panel]] = field(default_factory=dict)  # by question id
    tags: Mapping[str, Sequence[Tag]] = field(default_factory=dict)  # by question id


@dataclass
class MathPage:
    """The inputs of a page: the dataset, what each pipeline produced, and the header."""

    title: str
    lede: str
    dataset: MathDataset
    facts: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[PageWarning] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)  # by pipeline: "label", "eval"
    usage: Sequence[Mapping[str, Any]] = ()  # `label.usage_rows` rows
    # What the Warnings section says when there are none.
    all_clear: str = "No warnings."


SectionView = Callable[[MathPage], Section | None]
_VIEWS: list[tuple[int, SectionView]] = []


def section_view(order: int) -> Callable[[SectionView], SectionView]:
    """Register a view function; its section appears in `order` (lower first)."""

    def register(view: SectionView) -> SectionView:
        _VIEWS.append((order, view))
        return view

    return register


@dataclass(frozen=True)
class PageView:
    """What the page template reads: the header, warnings, sections and the JSON data."""

    title: str
    lede: str
    facts: list[tuple[str, str]]
    warnings: list[PageWarning]
    sections: list[Section]
    data: dict[str, Any]
    all_clear: str


# --- building the page ----------------------------------------------------------------------


def page_view(page: MathPage) -> PageView:
    """Run every registered view on `page` and gather the browser's data."""
    sections = [s for _, view in sorted(_VIEWS, key=lambda v: v[0]) if (s := view(page))]
    ids = [s.id for s in sections]
    if len(set(ids)) != len(ids):
        raise ValueError(f"two sections share an id: {ids}")
    concepts = page.dataset.concepts
    questions = []
    for problem in page.dataset.problems:
        questions.append(
            {
                "id": problem.id,
                "category": problem.category or "",
                "question": problem.question,
                "answer": problem.answer,
                "solution": problem.solution or "",
                "concepts": [[c, concepts.get(c, "")] for c in problem.concepts],
                "tags": [t.data() for s in sections for t in s.tags.get(problem.id, ())],
                "panels": [p.data() for s in sections for p in s.panels.get(problem.id, ())],
            }
        )
    tables = {key: table.data() for s in sections for key, table in s.tables.items()}
    return PageView(
        page.title,
        page.lede,
        page.facts,
        page.warnings,
        sections,
        {"questions": questions, "tables": tables},
        page.all_clear,
    )


def build_page(page: MathPage) -> str:
    """The whole HTML document of `page`."""
    style = asset("report.css") + _asset("math.css")
    script = asset("dom.js") + _asset("math.js")
    return (
        environment(_PACKAGE)
        .get_template("math_page.html.j2")
        .render(
            page=page_view(page),
            version=skillmix_version(),
            csp=Markup(content_security_policy(script, style)),  # hashes and keywords only
            style=Markup(style),
            script=Markup(script),
        )
    )


def write_page(page: MathPage, path: str | Path) -> Path:
    """Write the page to `path` (its folder is made); an `InputError` names a path that
    cannot be written."""
    out = Path(path)
    text = build_page(page)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot write {out}: {err.strerror or err}") from err
    return out


def _asset(name: str) -> str:
    """The text inlined for one of this page's style sheets or scripts."""
    return package_asset(_PACKAGE, "templates", name)


# --- the labelling page ---------------------------------------------------------------------


def label_page(
    result: LabelResult,
    agreement: Agreement | None = None,
    *,
    usage: Sequence[Mapping[str, Any]] = (),
) -> MathPage:
    """The page of a label run (and its agreement with human labels, when measured)."""
    cfg = result.config
    fine = len(group_fine_names(result.labels))
    facts = [
        ("run", result.run_id),
        ("dataset", f"{result.dataset.name} · {len(result.dataset)} questions"),
        ("dataset hash", result.dataset.content_hash[:12]),
        ("teacher", cfg.teacher),
        ("coarse skills", f"{len(result.skills)} (asked for {cfg.skills})"),
        ("fine skill names", str(fine)),
        ("templates", result.templates_version),
        ("catalog hash", result.catalog.short_hash),
        ("seed", str(cfg.seed)),
    ]
    warnings = [
        PageWarning("severe" if "smoke test" in text else "warn", "labels", text)
        for text in result.warnings()
    ]
    if result.estimate:
        warnings.insert(0, PageWarning("severe", "estimate", "Nothing was sent: an estimate."))
    return MathPage(
        title=f"Math skill labels: {result.dataset.name}",
        lede=f"{result.dataset.name}: the skill each question needs, named by {cfg.teacher}",
        dataset=result.dataset,
        facts=facts,
        warnings=warnings,
        results={"label": result, "label_agreement": agreement},
        usage=usage,
        all_clear="No warnings: every question was read and every fine skill placed by the "
        "teacher.",
    )


def write_label_page(
    result: LabelResult,
    path: str | Path,
    agreement: Agreement | None = None,
    *,
    usage: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write the page of a label run to `path`; return the path."""
    return write_page(label_page(result, agreement, usage=usage), path)


@dataclass(frozen=True)
class SkillsView:
    note: str


@section_view(order=10)
def label_skills(page: MathPage) -> Section | None:
    """The coarse skills, and every question's labels in the browser."""
    result: LabelResult | None = page.results.get("label")
    if result is None:
        return None
    names = {s.id: s.name for s in result.skills}
    total = max(1, len(result.labels))
    rows = [
        [
            s.name,
            s.category,
            str(s.questions),
            f"{s.questions / total:.0%}",
            s.definition,
            s.example,
            _listing(s.members),
        ]
        for s in result.skills
    ]
    table = Table(
        (
            Column("coarse skill"),
            Column("category"),
            Column("questions", numeric=True),
            Column("share", numeric=True),
            Column("definition"),
            Column("example"),
            Column("fine skills in it"),
        ),
        rows,
        "no coarse skills",
    )
    first = {label.question_id: label for label in result.labels}
    fine_rows = []
    for fine in group_fine_names(result.labels):
        label = first[fine.questions[0]]
        by = sorted({first[q].assigned_by for q in fine.questions} - {""})
        ids = ", ".join(names.get(c, c) for c in label.coarse)
        fine_rows.append([fine.name, str(len(fine.questions)), ids, ", ".join(by)])
    fine_table = Table(
        (
            Column("fine skill"),
            Column("questions", numeric=True),
            Column("coarse skills"),
            Column("assigned by"),
        ),
        fine_rows,
        "no fine skill was read",
    )
    panels: dict[str, list[Panel]] = {}
    tags: dict[str, list[Tag]] = {}
    for label in result.labels:
        coarse = ", ".join(names.get(c, c) for c in label.coarse) or "none"
        if label.status == "unparsed":
            panels[label.question_id] = [
                Panel(
                    "Skill label",
                    (("status", f"unparsed after {label.attempts} draw(s)"),),
                    (("why", label.reason),),
                )
            ]
            tags[label.question_id] = [Tag("unparsed", "warn")]
            continue
        facts: list[tuple[str, str]] = [
            ("fine skill", label.skill),
            ("coarse skills", coarse),
            ("assigned by", label.assigned_by or "—"),
            ("read as", label.method or "—"),
        ]
        panels[label.question_id] = [
            Panel("Skill label", tuple(facts), (("rationale", label.rationale or "(none)"),))
        ]
        tags[label.question_id] = [Tag(names.get(c, c)) for c in label.coarse] + (
            [Tag("by similarity", "warn")] if label.assigned_by == "similarity" else []
        )
    note = (
        f"{len(result.skills)} coarse skills grouping "
        f"{len(fine_rows)} distinct fine skill names; each question gets the coarse skills "
        "of its fine skill. A skill's category is the dataset category most of its "
        "questions have."
    )
    return Section(
        "skills",
        "Coarse skills",
        "sections/label_skills.html.j2",
        view=SkillsView(note),
        tables={"label-skills": table, "label-fine": fine_table},
        panels=panels,
        tags=tags,
    )


def _listing(names: Sequence[str], shown: int = 8) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class AgreementCells:
    category: str
    questions: int
    precision: str
    recall: str
    f1: str
    counts: str


@dataclass(frozen=True)
class AgreementView:
    method: str
    rows: list[AgreementCells]
    in_sample: list[AgreementCells]
    excluded: str


def interval_text(e: Estimate) -> str:
    """`0.62 [0.48, 0.75]`; the value alone without an interval; a dash without a value."""
    if not math.isfinite(e.value):
        return "—"
    if not (math.isfinite(e.low) and math.isfinite(e.high)):
        return f"{e.value:.2f}"
    return f"{e.value:.2f} [{e.low:.2f}, {e.high:.2f}]"


def _cells(row: AgreementRow) -> AgreementCells:
    return AgreementCells(
        row.category,
        row.questions,
        interval_text(row.precision),
        interval_text(row.recall),
        interval_text(row.f1),
        f"{row.true_positives} / {row.false_positives} / {row.false_negatives}",
    )


@section_view(order=20)
def label_agreement(page: MathPage) -> Section | None:
    """Precision, recall and F1 against the human concepts, and the skill -> concept map."""
    agreement: Agreement | None = page.results.get("label_agreement")
    result: LabelResult | None = page.results.get("label")
    if agreement is None or result is None:
        return None
    names = {s.id: s.name for s in result.skills}
    concepts = page.dataset.concepts
    mapping = Table(
        (
            Column("coarse skill"),
            Column("stands for concept"),
            Column("questions", numeric=True),
            Column("with that concept", numeric=True),
        ),
        [
            [
                names.get(m.skill, m.skill),
                (m.concept, concepts.get(m.concept, m.concept)) if m.concept else "(none)",
                str(m.questions),
                f"{m.hits} ({m.hits / m.questions:.0%})" if m.questions else "—",
            ]
            for m in agreement.mapping
        ],
        "no coarse skill is on an annotated question",
    )
    excluded = ", ".join(f"{n} with {why}" for why, n in sorted(agreement.excluded.items()))
    return Section(
        "agreement",
        "Agreement",
        "sections/label_agreement.html.j2",
        view=AgreementView(
            agreement.method,
            [_cells(r) for r in agreement.rows],
            [_cells(r) for r in agreement.in_sample],
            f"Left out: {excluded}." if excluded else "No question was left out.",
        ),
        tables={"label-mapping": mapping},
    )


@dataclass(frozen=True)
class ConfusionView:
    svg: Markup | None
    shown: int
    total: int


@section_view(order=30)
def label_confusion(page: MathPage) -> Section | None:
    """The confusion view: predicted coarse skill x human concept, as shares and counts."""
    agreement: Agreement | None = page.results.get("label_agreement")
    result: LabelResult | None = page.results.get("label")
    if agreement is None or result is None:
        return None
    names = {s.id: s.name for s in result.skills}
    skills = [s.id for s in result.skills if agreement.skill_questions.get(s.id)]
    weight: dict[str, int] = {}
    for (_, concept), n in agreement.confusion.items():
        weight[concept] = weight.get(concept, 0) + n
    mapped = {m.concept for m in agreement.mapping if m.concept}
    ranked = sorted(weight, key=lambda c: (c not in mapped, -weight[c], c))
    columns = ranked[:CONCEPT_COLUMNS]
    values: dict[tuple[str, str], float | None] = {}
    counts: dict[tuple[str, str], int] = {}
    for skill in skills:
        total = agreement.skill_questions[skill]
        for concept in columns:
            key = (names.get(skill, skill), concept)
            values[key] = agreement.confusion.get((skill, concept), 0) / total
            counts[key] = total
    svg = (
        Markup(
            heatmap(
                [names.get(s, s) for s in skills],
                columns,
                values,
                element_id="label-confusion",
                title="Share of a coarse skill's questions annotated with each concept",
                counts=counts,
                cell_w=110,
                measure="co-occurrence",
                unit="question(s) with the skill",
            )
        )
        if skills and columns
        else None
    )
    concepts = page.dataset.concepts
    legend = Table(
        (
            Column("concept"),
            Column("text"),
            Column("questions", numeric=True),
            Column("co-occurrences", numeric=True),
        ),
        [
            [c, concepts.get(c, c), str(agreement.concept_questions.get(c, 0)), str(weight[c])]
            for c in columns
        ],
        "no concept co-occurs with a coarse skill",
    )
    confusion = Table(
        (Column("coarse skill"), Column("concept"), Column("questions with both", numeric=True)),
        [
            [names.get(s, s), c, str(n)]
            for (s, c), n in sorted(agreement.confusion.items(), key=lambda kv: -kv[1])
        ],
        "no co-occurrences",
    )
    return Section(
        "confusion",
        "Confusion",
        "sections/label_confusion.html.j2",
        view=ConfusionView(svg, len(columns), len(weight)),
        tables={"label-concepts": legend, "label-confusion-counts": confusion},
    )


@dataclass(frozen=True)
class UsageView:
    note: str


@section_view(order=90)
def usage(page: MathPage) -> Section | None:
    """Calls, tokens and cost of the runs on the page."""
    if not page.usage:
        return None
    rows = []
    for u in page.usage:
        cost = u.get("cost")
        rows.append(
            [
                str(u["role"]),
                f"{u['provider']}:{u['model']}",
                "sent" if u["sent"] else "from the store",
                f"{int(u['calls'] or 0):,}",
                f"{int(u['prompt_tokens'] or 0):,}",
                f"{int(u['completion_tokens'] or 0):,}",
                "—" if cost is None else f"{cost:.4f}",
            ]
        )
    table = Table(
        (
            Column("role"),
            Column("model"),
            Column("answered"),
            Column("calls", numeric=True),
            Column("prompt tokens", numeric=True),
            Column("completion tokens", numeric=True),
            Column("cost USD", numeric=True),
        ),
        rows,
    )
    return Section(
        "usage",
        "Cost",
        "sections/math_usage.html.j2",
        view=UsageView(
            "Every call the run used, sent by it or answered from the store's cache (free); "
            "cost at the prices known to skillmix (— where none is known)."
        ),
        tables={"math-usage": table},
    )
