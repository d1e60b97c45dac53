"""The original Skill-Mix scripts' prompt files, read at run time (`--templates-from-reference`).

Their prompts are JSON files: a list of strings, one per user turn, with `{placeholder}`
fields filled by Python's `str.format`. The student's turns come from
`prompts/generation/<name>.json` (default `default`), the judge's single turn from
`prompts/grade/<name>.json` (default `gpt`, the published GPT-4 grader). Each placeholder
is mapped onto the field of ours that carries the same information, and the text is
turned into one of our templates, so a run sends their wording with our protocol around
it. No copy of their text is kept in this package: point `DIR` at a checkout of their
repository (or at its `prompts` folder).

How each skill is listed (`{skills_defs_and_examples_simple}` and the like) comes from
our `skill_block`, `skill_definition` and `skill_entry` templates of the v2 set, which
follow the published layout (bold name, definition, example).
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Formatter

from skillmix.prompts._sets import (
    DEFAULT_TEMPLATES,
    GRADE_FIELDS,
    TASK_FIELDS,
    TemplateError,
    TemplateSet,
    load_templates,
)

DEFAULT_GENERATION = "default"
DEFAULT_GRADE = "gpt"

# Their placeholder -> our field with the same content.
PLACEHOLDERS: dict[str, str] = {
    "topic": "topic",
    "skills_str": "skill_list",
    "skills_defs_and_examples_simple": "skill_block",
    "skills_defs_and_examples": "skill_entries",
    "skills_defs": "skill_definitions",
    "num_skills": "k",
    "num_skills_str": "k_words",
    "num_sentences": "max_sentences",
    "num_sentences_str": "sentence_limit",
    "student_answer": "answer",
    "rubric_items": "rubric_items",
}
# The per-skill layouts a reference set takes from our default set.
_LAYOUTS = ("skill_block", "skill_definition", "skill_entry")


def reference_prompts_dir(root: Path) -> Path:
    """The folder holding `generation/` and `grade/`: `root/prompts` or `root` itself."""
    for candidate in (root / "prompts", root):
        if (candidate / "generation").is_dir() and (candidate / "grade").is_dir():
            return candidate
    raise TemplateError(
        f"{root} has neither prompts/generation/ and prompts/grade/ nor generation/ and "
        "grade/: --templates-from-reference expects a checkout of the original Skill-Mix "
        "scripts (or its prompts folder)"
    )


def load_reference_templates(
    root: str | Path, generation: str = DEFAULT_GENERATION, grade: str = DEFAULT_GRADE
) -> TemplateSet:
    """A template set from the original scripts' prompt files under `root`."""
    base = reference_prompts_dir(Path(root).expanduser())
    generation_file = base / "generation" / f"{generation}.json"
    grade_file = base / "grade" / f"{grade}.json"
    turns = _read_turns(generation_file)
    grading = _read_turns(grade_file)
    if len(grading) != 1:
        raise TemplateError(
            f"{grade_file}: a grading prompt is one user turn, but the file has {len(grading)}"
        )
    texts = {
        f"generate_turn{n}": _to_template(text, generation_file, n, TASK_FIELDS)
        for n, text in enumerate(turns, start=1)
    }
    texts["grade"] = _to_template(grading[0], grade_file, 1, GRADE_FIELDS)
    layouts = load_templates(DEFAULT_TEMPLATES)
    texts.update({name: layouts.texts[name] for name in _LAYOUTS})
    return TemplateSet(version="reference", texts=texts, source=str(base.resolve()))


def _read_turns(path: Path) -> list[str]:
    """A prompt file's turns: a non-empty JSON list of strings."""
    if not path.is_file():
        raise TemplateError(f"{path}: no such file (a JSON list of prompt strings is expected)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise TemplateError(f"{path}: not UTF-8 text ({err})") from err
    except json.JSONDecodeError as err:
        raise TemplateError(f"{path}:{err.lineno}:{err.colno}: not valid JSON ({err.msg})") from err
    if not isinstance(data, list) or not data:
        shape = "an empty list" if data == [] else f"a JSON {type(data).__name__}"
        raise TemplateError(
            f"{path}: expected a JSON list of strings, one per user turn, but found {shape}"
        )
    for n, turn in enumerate(data, start=1):
        if not isinstance(turn, str):
            raise TemplateError(f"{path}: turn {n} is a JSON {type(turn).__name__}, not a string")
    return data


def _to_template(text: str, path: Path, turn: int, allowed: frozenset[str]) -> str:
    """Their `str.format` text as one of our `$field` templates."""
    where = f"{path}, turn {turn}"
    try:
        pieces = list(Formatter().parse(text))
    except ValueError as err:
        raise TemplateError(f"{where}: {err} (write {{{{ and }}}} for literal braces)") from err
    out: list[str] = []
    for literal, field, spec, conversion in pieces:
        out.append(literal.replace("$", "$$"))
        if field is None:
            continue
        ours = PLACEHOLDERS.get(field)
        if ours is None or ours not in allowed:
            usable = sorted(p for p, f in PLACEHOLDERS.items() if f in allowed)
            raise TemplateError(
                f"{where}: unknown placeholder {{{field}}}; this file may use "
                + ", ".join(f"{{{p}}}" for p in usable)
            )
        if spec or conversion:
            raise TemplateError(
                f"{where}: placeholder {{{field}}} has a format spec or conversion, which "
                "skillmix does not apply; write it as a plain {" + field + "}"
            )
        out.append("${" + ours + "}")
    return "".join(out)
