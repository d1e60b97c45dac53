"""Template sets: a folder of `.txt` files with `$field` placeholders, chosen per run.

A set is named by a spec: a built-in name (`v1`, `v2`), the path of any folder in the same
layout, or `reference:DIR` for the original Skill-Mix scripts' JSON prompt files (see
`_reference.py`). `TemplateSet.version_id` is the set's name plus a hash of its
evaluation templates, so a run records exactly which wording it sent.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from string import Template
from typing import Literal

from skillmix.catalog.model import Skill
from skillmix.errors import InputError

# The built-in set of evaluation runs (`--templates`); v1 stays loadable for old runs.
DEFAULT_TEMPLATES = "v2"
# The built-in set that holds the templates of other jobs (tagging, Instruct-SkillMix).
DEFAULT_VERSION = "v1"
REFERENCE_PREFIX = "reference:"
# A format variant of a set (`prompts.variants`): variant:<choices>:<base set>.
VARIANT_PREFIX = "variant:"

# Every set in our own layout has these files.
TEMPLATE_NAMES = (
    "generate_turn1",
    "generate_turn2",
    "skill_block",
    "grade",
    "format_text",
    "format_json",
)
# Files a set may have; a run that needs one the set lacks says so before anything is sent.
OPTIONAL_TEMPLATE_NAMES = (
    "format_table",  # the judge's table (--protocol paper)
    "naming_instruction",  # --tell-not-to-name
    "skill_definition",  # one skill without its example: $skill_definitions
    "skill_entry",  # one skill as labelled lines: $skill_entries
    "rubric_line",  # one criterion of $rubric ($number, $label); without it "1. label"
)
# Templates of other jobs: not part of an evaluation's version id.
EXTRA_TEMPLATE_NAMES = ("tag",)
_EXTRA_TURN = re.compile(r"generate_turn([3-9]|[1-9]\d+)")

JudgeFormat = Literal["json", "lines", "table"]
FORMAT_TEMPLATES: dict[JudgeFormat, str] = {
    "json": "format_json",
    "lines": "format_text",
    "table": "format_table",
}

# The fields each kind of template may use (what `skillmix.prompts` fills in).
TASK_FIELDS = frozenset(
    {
        "topic",
        "k",
        "k_words",
        "skill_names",  # "a, b and c"
        "skill_list",  # "a, b, c"
        "skill_block",  # one skill_block per skill, a line each
        "skill_definitions",
        "skill_entries",
        "max_sentences",  # 2
        "sentence_word",  # "sentences"
        "sentence_limit",  # "two sentences"
        "naming_instruction",  # empty unless --tell-not-to-name
    }
)
GRADE_FIELDS = TASK_FIELDS | {"answer", "rubric", "rubric_items", "format_instructions"}
SKILL_FIELDS = frozenset({"name", "definition", "example", "category", "number"})
_FIELDS: dict[str, frozenset[str]] = {
    "grade": GRADE_FIELDS,
    "skill_block": SKILL_FIELDS,
    "skill_definition": SKILL_FIELDS,
    "skill_entry": SKILL_FIELDS,
    "format_json": frozenset({"keys"}),
    "format_text": frozenset({"example_lines"}),
    "format_table": frozenset(),
    "naming_instruction": frozenset(),
    "rubric_line": frozenset({"number", "label"}),
}


class TemplateError(InputError):
    """A template set is missing, malformed, or cannot serve the run asked of it."""


def fields_of(text: str) -> set[str]:
    """The `$field` names a template text uses (`$$` is a literal dollar sign)."""
    names = set()
    for match in Template.pattern.finditer(text):
        name = match.group("named") or match.group("braced")
        if name:
            names.add(name)
    return names


def student_turn_names(texts: dict[str, str]) -> tuple[str, ...]:
    """generate_turn1, generate_turn2, ...: the student's turns, in order."""
    names = []
    n = 1
    while f"generate_turn{n}" in texts:
        names.append(f"generate_turn{n}")
        n += 1
    return tuple(names)


@dataclass(frozen=True)
class TemplateSet:
    """The texts of one template set; `version` is its name, `source` where it was read."""

    version: str
    texts: dict[str, str]
    source: str = ""
    # Layout that is not text, set by format variants (`prompts.variants`); a set of files
    # keeps the defaults: the verdict format the run chooses, the skills in item order.
    judge_format: JudgeFormat | None = None
    judge_skill_order: Literal["given", "alphabetical"] = "given"
    # Templates ready to fill, by name and the fields that sat alone on a line and were
    # empty (those lines are left out): a run renders the same few thousand times.
    _ready: dict[tuple[str, tuple[str, ...]], Template] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # Each skill's line of a per-skill template, by template, skill and position: a run
    # lists the same few hundred skills in thousands of prompts.
    _skill_lines: dict[tuple[str, Skill, int], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def version_id(self) -> str:
        """The name plus a hash of every evaluation template in the set (and its layout
        choices where they are not the defaults)."""
        digest = hashlib.sha256()
        for name in self._evaluation_names():
            digest.update(name.encode() + b"\0" + self.texts[name].encode() + b"\0")
        if self.judge_format is not None:
            digest.update(b"judge_format\0" + self.judge_format.encode() + b"\0")
        if self.judge_skill_order != "given":
            digest.update(b"judge_skill_order\0" + self.judge_skill_order.encode() + b"\0")
        return f"{self.version}-{digest.hexdigest()[:8]}"

    def _evaluation_names(self) -> list[str]:
        extra_turns = sorted(
            (n for n in self.texts if _EXTRA_TURN.fullmatch(n)), key=lambda n: int(n[13:])
        )
        known = (*TEMPLATE_NAMES, *OPTIONAL_TEMPLATE_NAMES, *extra_turns)
        return [name for name in known if name in self.texts]

    @property
    def student_turns(self) -> tuple[str, ...]:
        return student_turn_names(self.texts)

    def has(self, name: str) -> bool:
        return name in self.texts

    def uses(self, template: str, field: str) -> bool:
        return template in self.texts and field in fields_of(self.texts[template])

    def render(self, template: str, /, **fields: object) -> str:
        """The template with its fields filled in.

        A line that holds nothing but a field that is empty (an instruction that is off) is
        left out, with the blank line after it when one precedes it, so no gap remains.
        """
        if template not in self.texts:
            raise TemplateError(f"template set {self.version} has no {template} template")
        text = self.texts[template]
        empty = tuple(name for name in _lone_fields(text) if fields.get(name) == "")
        ready = self._ready.get((template, empty))
        if ready is None:
            ready = self._ready[(template, empty)] = Template(_drop_empty_lines(text, fields))
        try:
            return ready.substitute(fields).strip()
        except KeyError as err:
            raise TemplateError(f"template {self.version}/{template} needs field {err}") from err
        except ValueError as err:
            raise TemplateError(f"template {self.version}/{template}: {err}") from err

    def render_skill(self, template: str, skill: Skill, number: int) -> str:
        """`template` filled in for one skill, listed at position `number` (from 1)."""
        key = (template, skill, number)
        line = self._skill_lines.get(key)
        if line is None:
            line = self._skill_lines[key] = self.render(
                template,
                name=skill.name,
                definition=skill.definition,
                example=skill.example,
                category=skill.category,
                number=number,
            )
        return line

    def check_run(self, *, judge_format: JudgeFormat, tell_not_to_name: bool) -> None:
        """Fail before a run starts if this set cannot give it the prompts it needs."""
        if self.uses("grade", "format_instructions") and not self.has(
            FORMAT_TEMPLATES[judge_format]
        ):
            raise TemplateError(
                f"template set {self.version} has no {FORMAT_TEMPLATES[judge_format]}.txt, "
                f"which asks the judge for its {judge_format} verdict; add it or use "
                f"--templates {DEFAULT_TEMPLATES}"
            )
        if tell_not_to_name and not (
            self.has("naming_instruction") and self.uses("generate_turn1", "naming_instruction")
        ):
            raise TemplateError(
                f"--tell-not-to-name: template set {self.version} has no place for the "
                "instruction (a naming_instruction.txt used as $naming_instruction in "
                "generate_turn1.txt); v1 always gives it, v2 gives it on request"
            )


_LONE_FIELD = re.compile(r"\$(?:(\w+)|\{(\w+)\})")


@lru_cache(maxsize=1024)
def _lone_fields(text: str) -> tuple[str, ...]:
    """The fields of `text` that stand alone on a line (left out when empty)."""
    names = []
    for line in text.split("\n"):
        match = _LONE_FIELD.fullmatch(line.strip())
        if match:
            names.append(match.group(1) or match.group(2))
    return tuple(names)


def _drop_empty_lines(text: str, fields: dict[str, object]) -> str:
    out: list[str] = []
    after_gap = False
    for line in text.split("\n"):
        match = _LONE_FIELD.fullmatch(line.strip())
        if match and fields.get(match.group(1) or match.group(2)) == "":
            after_gap = bool(out) and out[-1] == ""
            continue
        if after_gap and line == "":
            after_gap = False
            continue
        after_gap = False
        out.append(line)
    return "\n".join(out)


def validate(texts: dict[str, str], where: str) -> None:
    """Every template uses only the fields skillmix fills in; errors name the file."""
    for name, text in texts.items():
        if name in EXTRA_TEMPLATE_NAMES:
            continue
        allowed = TASK_FIELDS if name.startswith("generate_turn") else _FIELDS.get(name)
        if allowed is None:
            continue
        try:
            Template(text).substitute({field: "" for field in fields_of(text)})
        except ValueError as err:
            raise TemplateError(f"{where}/{name}.txt: {err} (write $$ for a dollar sign)") from err
        unknown = sorted(fields_of(text) - allowed)
        if unknown:
            raise TemplateError(
                f"{where}/{name}.txt uses unknown field(s) {', '.join('$' + u for u in unknown)}; "
                f"it may use {', '.join('$' + f for f in sorted(allowed)) or 'no fields'}"
            )


def builtin_names() -> list[str]:
    """The names of the built-in template sets."""
    root = resources.files("skillmix.prompts").joinpath("templates")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))


@cache
def _builtin(name: str) -> TemplateSet:
    root = resources.files("skillmix.prompts").joinpath("templates", name)
    texts = {
        path.name.removesuffix(".txt"): path.read_text()
        for path in root.iterdir()
        if path.name.endswith(".txt")
    }
    return TemplateSet(version=name, texts=texts, source="built-in")


def builtin_subset(version: str, names: Sequence[str]) -> TemplateSet:
    """The templates `names` of the built-in set `version` (for another job's prompts, such
    as Instruct-SkillMix's or the math labeller's); `TemplateError` names one it lacks."""
    if version not in builtin_names():
        raise TemplateError(f"no built-in template version '{version}'")
    every = _builtin(version).texts
    missing = [name for name in names if name not in every]
    if missing:
        raise TemplateError(f"template version '{version}' has no {missing[0]}.txt")
    return TemplateSet(version=version, texts={name: every[name] for name in names})


def _folder(path: Path) -> TemplateSet:
    texts = {p.stem: p.read_text() for p in sorted(path.glob("*.txt"))}
    missing = [name for name in TEMPLATE_NAMES if name not in texts]
    if missing:
        raise TemplateError(
            f"template folder {path} lacks {', '.join(n + '.txt' for n in missing)}; a set "
            f"needs {', '.join(n + '.txt' for n in TEMPLATE_NAMES)} (see the built-in "
            f"{DEFAULT_TEMPLATES} set for the layout)"
        )
    validate(texts, str(path))
    return TemplateSet(version=path.resolve().name, texts=texts, source=str(path.resolve()))


def is_template_folder(spec: str) -> bool:
    """Whether a --templates value names a folder rather than a built-in set."""
    return "/" in spec or "\\" in spec or Path(spec).is_absolute()


def template_spec(templates: str | None, reference_dir: str | None) -> str | None:
    """The `templates` setting for `--templates` / `--templates-from-reference` (None: not
    given): a built-in name as given, a folder as an absolute path, `reference:` + one."""
    if templates and reference_dir:
        raise TemplateError(
            "--templates and --templates-from-reference both choose the prompts: give one"
        )
    if reference_dir:
        return REFERENCE_PREFIX + str(Path(reference_dir).expanduser().resolve())
    if templates and is_template_folder(templates):
        return str(Path(templates).expanduser().resolve())
    return templates


def load_templates(spec: str = DEFAULT_VERSION) -> TemplateSet:
    """The template set named by `spec`: a built-in name, a folder, `reference:DIR`, or a
    format variant of one of those, `variant:<choices>:<set>` (see `prompts.variants`).

    A bare name is a built-in set; write a folder as a path (`./mine`, `/abs/mine`).
    """
    if spec.startswith(REFERENCE_PREFIX):
        from skillmix.prompts._reference import load_reference_templates

        return load_reference_templates(spec[len(REFERENCE_PREFIX) :])
    if spec.startswith(VARIANT_PREFIX):
        from skillmix.prompts.variants import load_variant

        return load_variant(spec)
    if is_template_folder(spec):
        path = Path(spec).expanduser()
        if not path.is_dir():
            raise TemplateError(f"template folder {spec} does not exist")
        return _folder(path)
    if spec not in builtin_names():
        raise TemplateError(
            f"unknown template set '{spec}': the built-in sets are "
            f"{', '.join(builtin_names())}; give a folder as a path (./{spec})"
        )
    return _builtin(spec)
