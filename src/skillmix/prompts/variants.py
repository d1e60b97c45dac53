"""Format variants of a template set, generated from a grammar of formatting choices.

The wording of a prompt is not the only thing that moves an LLM's answers: separators,
the casing of field names, list markers and the order of fields can move them by tens of
points. `skillmix spread` measures how far that moves a run's scores by running the same
items under several *format* variants of one template set. A variant is generated from
the choices below, never paraphrased by a model, so every variant says the same thing.

Each `Dimension` is one kind of choice; its first option is what the base set (v2) does.
A dimension `affects` either the judge only (the grading prompt) or the student too.
Judge-only variants send the student exactly the base set's prompts, so their answers come
from the call cache and only the grading is paid for; `variants()` varies only those
unless asked (`student=True`).

| dimension | options (base first) | affects |
|---|---|---|
| separator | colon, dash, newline: between a skill field's label and its value | judge |
| casing | sentence, lower, upper: headings and field labels | judge |
| marker | none, dash, star, number: before each skill in the list | judge |
| rubric | numbered, bullets, paragraph: the rubric's layout | judge |
| judge_format | json, lines, table: how the judge writes its verdict | judge |
| definition_order | definition-first, example-first: within one skill | judge |
| skill_order | given, alphabetical: the order the skills are listed in | judge |
| student_skills | inline, labelled: how the student's prompt lists a skill | student |

`json` is the run's own verdict format (structured JSON where the judge supports it and
structured output is on, else lines, as in any run); `lines` and `table` are asked for
whatever the judge supports.

A variant is named by its non-base choices (`casing=upper,rubric=paragraph`; `base` for
none) and loads as a template set with `load_templates("variant:<id>:<base set>")`; its
`version_id` records every choice. Variant `base` is the base set itself, byte for byte.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from skillmix.prompts._sets import (
    DEFAULT_TEMPLATES,
    VARIANT_PREFIX,
    JudgeFormat,
    TemplateError,
    TemplateSet,
    load_templates,
)

Affects = Literal["student", "judge"]
BASE_ID = "base"


@dataclass(frozen=True)
class Dimension:
    """One kind of formatting choice: its options (the base set's first) and what it changes."""

    name: str
    options: tuple[str, ...]
    affects: Affects
    summary: str

    @property
    def base(self) -> str:
        return self.options[0]


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension(
        "separator",
        ("colon", "dash", "newline"),
        "judge",
        "what separates a skill field's label from its value (': ', ' - ', a line break)",
    ),
    Dimension(
        "casing",
        ("sentence", "lower", "upper"),
        "judge",
        "the casing of the grading prompt's headings and field labels",
    ),
    Dimension(
        "marker",
        ("none", "dash", "star", "number"),
        "judge",
        "the list marker before each skill the judge is shown (none, '- ', '* ', '1. ')",
    ),
    Dimension(
        "rubric",
        ("numbered", "bullets", "paragraph"),
        "judge",
        "the rubric as numbered lines, bulleted lines, or one paragraph",
    ),
    Dimension(
        "judge_format",
        ("json", "lines", "table"),
        "judge",
        "how the judge writes its verdict: the run's JSON, one line per criterion, a table",
    ),
    Dimension(
        "definition_order",
        ("definition-first", "example-first"),
        "judge",
        "whether a skill's definition comes before its example or after it",
    ),
    Dimension(
        "skill_order",
        ("given", "alphabetical"),
        "judge",
        "the skills in the judge's prompt in the item's order or alphabetically",
    ),
    Dimension(
        "student_skills",
        ("inline", "labelled"),
        "student",
        "the student's list of skills: one line each, or Skill/Definition/Example lines",
    ),
)
DIMENSIONS_BY_NAME = {d.name: d for d in DIMENSIONS}


@dataclass(frozen=True, eq=False)
class Variant:
    """One option per dimension. Equal variants have equal ids."""

    choices: Mapping[str, str]

    @property
    def id(self) -> str:
        """The non-base choices as `name=option,...` in dimension order, or `base`."""
        changed = self.changed
        return ",".join(f"{n}={o}" for n, o in changed.items()) if changed else BASE_ID

    @property
    def changed(self) -> dict[str, str]:
        """The choices that differ from the base set, in dimension order."""
        return {d.name: self.choices[d.name] for d in DIMENSIONS if self.choices[d.name] != d.base}

    @property
    def is_base(self) -> bool:
        return not self.changed

    @property
    def affects_student(self) -> bool:
        """Whether the student's prompts differ from the base set's (new answers needed)."""
        return any(DIMENSIONS_BY_NAME[n].affects == "student" for n in self.changed)

    def spec(self, base: str = DEFAULT_TEMPLATES) -> str:
        """The `--templates` value that loads this variant of the set `base`."""
        return base if self.is_base else f"{VARIANT_PREFIX}{self.id}:{base}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Variant) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"Variant({self.id!r})"


def variant(**choices: str) -> Variant:
    """The variant with these choices (every other dimension at its base option)."""
    unknown = sorted(set(choices) - DIMENSIONS_BY_NAME.keys())
    if unknown:
        raise TemplateError(
            f"unknown format choice(s) {', '.join(unknown)}; the choices are "
            f"{', '.join(DIMENSIONS_BY_NAME)}"
        )
    full = {}
    for d in DIMENSIONS:
        option = choices.get(d.name, d.base)
        if option not in d.options:
            raise TemplateError(
                f"{d.name}={option} is not a format choice; {d.name} is one of "
                f"{', '.join(d.options)}"
            )
        full[d.name] = option
    return Variant(full)


BASE = variant()


def parse_variant(variant_id: str) -> Variant:
    """The variant a `Variant.id` names (`base`, or `casing=upper,rubric=paragraph`)."""
    text = variant_id.strip()
    if text in ("", BASE_ID):
        return BASE
    choices = {}
    for part in text.split(","):
        name, sep, option = part.partition("=")
        if not sep:
            raise TemplateError(
                f"format variant '{variant_id}': write each choice as name=option "
                "(casing=upper,rubric=paragraph)"
            )
        choices[name.strip()] = option.strip()
    return variant(**choices)


# --- drawing a set of variants -----------------------------------------------------------------

_CANDIDATE_DESIGNS = 512


def free_dimensions(*, student: bool = False) -> list[Dimension]:
    """The dimensions `variants` varies: the judge's, and the student's with `student`."""
    return [d for d in DIMENSIONS if student or d.affects == "judge"]


def variant_count(*, student: bool = False) -> int:
    """How many distinct variants the grammar can make."""
    count = 1
    for d in free_dimensions(student=student):
        count *= len(d.options)
    return count


def variants(n: int, seed: int = 0, *, student: bool = False) -> list[Variant]:
    """`n` distinct variants, the base set first, drawn deterministically from `seed`.

    Each dimension's options are spread as evenly as `n` allows over the variants (a
    balanced design), and of several such designs the one that keeps the dimensions most
    apart is chosen, so that the effect of one choice is confounded with another's as
    little as `n` permits (with few variants some must be: `scoring.spread` says which).
    Only judge-side choices vary unless `student`, so the student's answers are shared.
    """
    if n < 1:
        raise TemplateError(f"--variants must be at least 1, got {n}")
    free = free_dimensions(student=student)
    most = variant_count(student=student)
    if n > most:
        raise TemplateError(
            f"--variants {n}: the grammar makes only {most} distinct variants"
            + ("" if student else " that leave the student's prompts alone (--student-variants)")
        )
    rng = random.Random(f"skillmix-variants:{seed}:{n}:{student}")
    best: tuple[tuple[int, int, float, float], list[Variant]] | None = None
    for _ in range(_CANDIDATE_DESIGNS):
        design = _balanced_design(n, free, rng)
        if design is None:
            continue
        score = design_score(design, free)
        if best is None or score < best[0]:
            best = (score, design)
    if best is None:  # only when n is close to every variant there is: take them in order
        return [BASE, *_unique_rest(n, free, rng)]
    return best[1]


def _balanced_design(n: int, free: Sequence[Dimension], rng: random.Random) -> list[Variant] | None:
    """Base first, then n - 1 variants whose options per dimension are balanced over all n;
    None when two of them coincide."""
    columns = {}
    for d in free:
        counts = dict.fromkeys(d.options, 0)
        counts[d.base] = 1  # the base variant's
        rest = []
        for _ in range(n - 1):  # always an option taken least so far, at random among them
            least = min(counts.values())
            pick = rng.choice([o for o in d.options if counts[o] == least])
            counts[pick] += 1
            rest.append(pick)
        rng.shuffle(rest)
        columns[d.name] = rest
    drawn = [BASE]
    for row in range(n - 1):
        drawn.append(variant(**{name: column[row] for name, column in columns.items()}))
    return drawn if len(set(drawn)) == n else None


def _unique_rest(n: int, free: Sequence[Dimension], rng: random.Random) -> list[Variant]:
    everything = [
        variant(**dict(zip([d.name for d in free], combo, strict=True)))
        for combo in itertools.product(*(d.options for d in free))
    ]
    rest = [v for v in everything if not v.is_base]
    rng.shuffle(rest)
    return rest[: n - 1]


def design_score(
    design: Sequence[Variant], dims: Iterable[Dimension]
) -> tuple[int, int, float, float]:
    """Lower is better: (dimensions left unvaried, pairs of dimensions whose options split
    the variants identically, the strongest and the mean squared association (Cramér's V²)
    between two dimensions)."""
    partitions = {}
    unvaried = 0
    for d in dims:
        labels = tuple(v.choices[d.name] for v in design)
        if len(set(labels)) < 2:
            unvaried += 1
        else:
            partitions[d.name] = labels
    aliased = 0
    associations = [0.0]
    for a, b in itertools.combinations(partitions.values(), 2):
        aliased += same_partition(a, b)
        associations.append(association(a, b))
    return (unvaried, aliased, max(associations), sum(associations) / len(associations))


def same_partition(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether two labelings split the same items into the same groups (names aside)."""
    forward: dict[str, str] = {}
    backward: dict[str, str] = {}
    for x, y in zip(a, b, strict=True):
        if forward.setdefault(x, y) != y or backward.setdefault(y, x) != x:
            return False
    return True


def association(a: Sequence[str], b: Sequence[str]) -> float:
    """How far one labeling of the variants predicts another: Cramér's V² (0: not at all,
    1: one determines the other)."""
    n = len(a)
    xs, ys = sorted(set(a)), sorted(set(b))
    if len(xs) < 2 or len(ys) < 2:
        return 0.0
    counts = {(x, y): 0 for x in xs for y in ys}
    for pair in zip(a, b, strict=True):
        counts[pair] += 1
    rows = {x: sum(counts[(x, y)] for y in ys) for x in xs}
    cols = {y: sum(counts[(x, y)] for x in xs) for y in ys}
    chi2 = 0.0
    for (x, y), observed in counts.items():
        expected = rows[x] * cols[y] / n
        chi2 += (observed - expected) ** 2 / expected
    return chi2 / (n * (min(len(xs), len(ys)) - 1))


# --- the templates of a variant ----------------------------------------------------------------

_HEADINGS = {
    "task": "Task given to the writer",
    "text": "Text to grade",
    "end": "End of text",
    "rubric": "Rubric, one point per criterion",
    "example": "Example",
    "definition": "Definition",
}
_SEPARATORS = {"colon": ": ", "dash": " - ", "newline": "\n"}
_MARKERS = {"none": "", "dash": "- ", "star": "* ", "number": "$number. "}
_RUBRIC_LINES = {"bullets": "- $label\n"}
_STUDENT_BLOCKS = {
    "inline": "**$name**: $definition Example: $example\n",
    "labelled": "Skill: $name\nDefinition: $definition\nExample: $example\n",
}


def _heading(key: str, casing: str) -> str:
    text = _HEADINGS[key]
    return text.lower() if casing == "lower" else text.upper() if casing == "upper" else text


def grade_text(choices: Mapping[str, str], skills_field: str = "skill_entries") -> str:
    """The judge's prompt (grade.txt) under `choices`, listing the skills with `$skills_field`.

    With every choice at its base option and `skill_block`, this is v2's grade.txt.
    """
    casing = choices["casing"]
    heading = lambda key: _heading(key, casing)  # noqa: E731
    if choices["rubric"] == "paragraph":
        rubric = f"{heading('rubric')}: $rubric_items."
    else:
        rubric = f"{heading('rubric')}:\n$rubric"
    return (
        "A writer was given the task below and produced the text that follows it. Please "
        "grade the text against the rubric.\n"
        "\n"
        f"=== {heading('task')} ===\n"
        "Write a minimal, natural piece of text about $topic that illustrates all of the "
        "following skills: $skill_names. The text must have at most $sentence_limit.\n"
        "$naming_instruction\n"
        "\n"
        f"${skills_field}\n"
        "\n"
        f"=== {heading('text')} ===\n"
        "$answer\n"
        f"=== {heading('end')} ===\n"
        "\n"
        f"{rubric}\n"
        "\n"
        "$format_instructions\n"
    )


def judge_skill_entry(choices: Mapping[str, str]) -> str:
    """How the judge's prompt lists one skill (skill_entry.txt) under `choices`.

    With every choice at its base option this is v2's skill_block.txt.
    """
    casing = choices["casing"]
    sep = _SEPARATORS[choices["separator"]]
    gap = "\n" if choices["separator"] == "newline" else " "
    example = f"{_heading('example', casing)}{sep}$example"
    if choices["definition_order"] == "definition-first":
        body = f"$definition{gap}{example}"
    else:
        body = f"{example}{gap}{_heading('definition', casing)}{sep}$definition"
    return f"{_MARKERS[choices['marker']]}**$name**{sep}{body}\n"


def check_base_layout(base: TemplateSet) -> None:
    """The grammar rewrites the v2 layout: a base set whose judge prompt or skill list is
    laid out otherwise cannot be varied (its base variant would not be itself)."""
    base_choices = BASE.choices
    expected = {
        "grade": grade_text(base_choices, "skill_block"),
        "skill_block": _STUDENT_BLOCKS["inline"],
    }
    differ = [f"{name}.txt" for name, text in expected.items() if base.texts.get(name) != text]
    if any(base.uses(turn, "skill_entries") for turn in base.student_turns):
        differ.append("a student turn that uses $skill_entries")
    if differ:
        raise TemplateError(
            f"format variants rewrite the layout of the built-in {DEFAULT_TEMPLATES} set, and "
            f"template set {base.version} differs from it in {', '.join(differ)}",
            hint=f"run the spread on --templates {DEFAULT_TEMPLATES}, or on a copy of it that "
            "changes only the student's turns",
        )


def build_variant(base: TemplateSet, chosen: Variant) -> TemplateSet:
    """The template set of `chosen`, a variant of `base` (which must have the v2 layout).

    The base variant is `base` itself. Any other lists the judge's skills with its own
    `skill_entry.txt` (so the student's list can vary apart from the judge's), and its
    version (`v2+casing=upper,...`) and `version_id` record the choices.
    """
    if chosen.is_base:
        return base
    check_base_layout(base)
    choices = chosen.choices
    texts = dict(base.texts)
    texts["grade"] = grade_text(choices)
    texts["skill_entry"] = judge_skill_entry(choices)
    texts["skill_block"] = _STUDENT_BLOCKS[choices["student_skills"]]
    texts.pop("rubric_line", None)
    if choices["rubric"] in _RUBRIC_LINES:
        texts["rubric_line"] = _RUBRIC_LINES[choices["rubric"]]
    fmt = choices["judge_format"]
    judge_format: JudgeFormat | None = None if fmt == "json" else _judge_format(fmt)
    return replace(
        base,
        version=f"{base.version}+{chosen.id}",
        texts=texts,
        source=f"format variant of {base.source or base.version}",
        judge_format=judge_format,
        judge_skill_order="alphabetical" if choices["skill_order"] == "alphabetical" else "given",
    )


def _judge_format(option: str) -> JudgeFormat:
    if option == "lines":
        return "lines"
    if option == "table":
        return "table"
    return "json"


def load_variant(spec: str) -> TemplateSet:
    """The set a `variant:<id>:<base>` spec names (what `load_templates` reads)."""
    body = spec.removeprefix(VARIANT_PREFIX)
    variant_id, sep, base = body.partition(":")
    if not sep or not base:
        raise TemplateError(
            f"template spec '{spec}': a format variant is written "
            f"{VARIANT_PREFIX}<choices>:<base set> (variant:rubric=paragraph:v2)"
        )
    return build_variant(load_templates(base), parse_variant(variant_id))
