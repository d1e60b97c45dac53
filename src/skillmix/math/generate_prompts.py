"""The prompts of `math generate` and reading the teacher's replies (pure).

One conversation per skill pair: the teacher *writes* a question that needs both skills,
*solves* it, *critiques* question and solution (a verdict of four 0/1 points: valid,
solvable, needs skill 1, needs skill 2, then at most two sentences of problems), and while
the verdict fails *refines* the question, solves it again and critiques again. Templates
are the files `prompts/templates/<version>/math_generate_*.txt`; `GenerateTemplates.version_id`
(recorded with every run) hashes them with the answer shapes below.

The critique asks for JSON when the teacher decodes with a schema (`critique_schema`: one
fixed 0/1 field per point, the bounded problems string last, as SPEC section 4 advises),
else for `Valid: 1` lines; `parse_critique` reads both and what weak models write instead.
A question is read from a `Question:` line (bold, any case), else the whole reply.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from skillmix.catalog.model import Skill
from skillmix.data.instruct.parse import load_json
from skillmix.prompts import DEFAULT_VERSION, TemplateSet, builtin_subset

Message = dict[str, str]

TEMPLATE_NAMES = (
    "math_generate_write",
    "math_generate_solve",
    "math_generate_critique",
    "math_generate_refine",
    "math_generate_skill",
    "math_generate_format_json",
    "math_generate_format_text",
)
# The critique's points, in the order asked; the problems sentence comes after them.
POINTS = ("valid", "solvable", "needs_skill_1", "needs_skill_2")
PROBLEMS_MAX_CHARS = 300
CRITIQUE_SHAPE = (
    '{"valid": <1 or 0>, "solvable": <1 or 0>, "needs_skill_1": <1 or 0>, '
    '"needs_skill_2": <1 or 0>, "problems": "<at most two sentences, or none>"}',
    "Valid: <1 or 0>\nSolvable: <1 or 0>\nNeeds skill 1: <1 or 0>\nNeeds skill 2: <1 or 0>\n"
    "Problems: <at most two sentences, or none>",
)


@dataclass(frozen=True)
class GenerateTemplates:
    """The `math_generate_*` templates of one version (prompts/templates/<version>/)."""

    version: str
    templates: TemplateSet

    @property
    def version_id(self) -> str:
        """Version name plus a hash of the template files, the critique shape and bounds."""
        digest = hashlib.sha256()
        for name in TEMPLATE_NAMES:
            digest.update(name.encode() + b"\0" + self.templates.texts[name].encode() + b"\0")
        digest.update(json.dumps([CRITIQUE_SHAPE, POINTS, PROBLEMS_MAX_CHARS]).encode())
        return f"{self.version}-{digest.hexdigest()[:8]}"

    def render(self, template: str, /, **fields: object) -> str:
        return self.templates.render(template, **fields)


@cache
def load_generate_templates(version: str = DEFAULT_VERSION) -> GenerateTemplates:
    """Read the `math_generate_*` templates of a built-in version (`TemplateError` if missing)."""
    return GenerateTemplates(version, builtin_subset(version, TEMPLATE_NAMES))


def _user(text: str) -> Message:
    return {"role": "user", "content": text}


def _assistant(text: str) -> Message:
    return {"role": "assistant", "content": text}


def skill_block(t: GenerateTemplates, skills: Sequence[Skill]) -> str:
    """The skills as numbered lines: name, definition and example."""
    return "\n".join(
        t.render(
            "math_generate_skill",
            number=i,
            name=s.name,
            definition=s.definition.strip(),
            example=s.example.strip(),
        )
        for i, s in enumerate(skills, 1)
    )


def write_messages(t: GenerateTemplates, skills: Sequence[Skill]) -> list[Message]:
    """Turn 1: write a question that needs every one of `skills` (a pair)."""
    return [_user(t.render("math_generate_write", skill_block=skill_block(t, skills)))]


def solve_turn(
    t: GenerateTemplates, history: Sequence[Message], question_reply: str
) -> list[Message]:
    """The conversation so far, the reply that wrote the question, then: solve it."""
    return [*history, _assistant(question_reply), _user(t.render("math_generate_solve"))]


def critique_turn(
    t: GenerateTemplates,
    history: Sequence[Message],
    solution: str,
    skills: Sequence[Skill],
    structured: bool,
) -> list[Message]:
    """The conversation so far, the solution, then: critique question and solution."""
    shape = CRITIQUE_SHAPE[0] if structured else CRITIQUE_SHAPE[1]
    form = "math_generate_format_json" if structured else "math_generate_format_text"
    text = t.render(
        "math_generate_critique",
        skill_1=skills[0].name,
        skill_2=skills[1].name,
        format_instructions=t.render(form, shape=shape),
    )
    return [*history, _assistant(solution), _user(text)]


def refine_turn(
    t: GenerateTemplates, history: Sequence[Message], critique: str, skills: Sequence[Skill]
) -> list[Message]:
    """The conversation so far, the critique, then: rewrite the question to fix it."""
    names = " and ".join(s.name for s in skills)
    return [
        *history,
        _assistant(critique),
        _user(t.render("math_generate_refine", skill_names=names)),
    ]


def critique_schema() -> dict[str, Any]:
    """The critique as JSON: a fixed 0/1 field per point, then a bounded problems string."""
    flag = {"type": "integer", "enum": [0, 1]}
    properties: dict[str, Any] = {point: flag for point in POINTS}
    properties["problems"] = {"type": "string", "maxLength": PROBLEMS_MAX_CHARS}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


# --- reading the replies ---------------------------------------------------------------------

_QUESTION_MARK = re.compile(
    r"^[ \t#>*_]*(?:the[ \t]+)?(?:revised[ \t]+|new[ \t]+|rewritten[ \t]+)?"
    r"(?:question|problem)[ \t*_]*:[ \t*_]*",
    re.I | re.M,
)
_AFTER_QUESTION = re.compile(
    r"^[ \t#>*_]*(?:solution|answer|final answer|explanation)[ \t*_]*:", re.I | re.M
)
_PLACEHOLDER = re.compile(r"<(?:the|a)[^<>]*(?:problem|question)[^<>]*>", re.I)


def parse_question(text: str) -> str:
    """The question of a write or refine reply ("" when there is none).

    The text after the last `Question:` (or `Problem:`) marker, in any case, bold or as a
    heading, up to a `Solution:` or `Answer:` marker; without a marker, the reply up to
    such a marker. A placeholder copied from the prompt is no question.
    """
    markers = list(_QUESTION_MARK.finditer(text))
    body = text[markers[-1].end() :] if markers else text
    end = _AFTER_QUESTION.search(body)
    question = body[: end.start()] if end else body
    question = question.strip().strip("*_").strip()
    return "" if not question or _PLACEHOLDER.fullmatch(question) else question


@dataclass(frozen=True)
class CritiqueVerdict:
    """A readable critique: the four points (1 yes, 0 no), the problems named, how read."""

    valid: int
    solvable: int
    needs: tuple[int, int]  # needs skill 1, needs skill 2 (in the order presented)
    problems: str
    method: str  # "json" or "lines"

    @property
    def passed(self) -> bool:
        return bool(self.valid and self.solvable and all(self.needs))

    def failures(self) -> list[str]:
        """The points the verdict fails, as reason codes (empty when it passes)."""
        out = []
        if not self.valid:
            out.append("invalid")
        if not self.solvable:
            out.append("unsolvable")
        if not all(self.needs):
            out.append("skill-not-needed")
        return out


_YES = {"1", "yes", "true", "y", "1.0"}
_NO = {"0", "no", "false", "n", "0.0"}
_LINE_KEYS = {
    "valid": ("valid", "validity", "is valid"),
    "solvable": ("solvable", "solvability", "is solvable"),
    "needs_skill_1": ("needs skill 1", "needs_skill_1", "skill 1", "needs skill one"),
    "needs_skill_2": ("needs skill 2", "needs_skill_2", "skill 2", "needs skill two"),
    "problems": ("problems", "problem", "issues", "comments"),
}
_LINE = re.compile(r"^[ \t#>*_-]*([A-Za-z][A-Za-z _0-9]*?)[ \t*_]*[:=][ \t*_]*(.*)$", re.M)


def _flag(value: Any) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and value in (0, 1):
        return int(value)
    if isinstance(value, str):
        word = value.strip().strip("*_.`\"'").strip().casefold()
        word = word.split()[0] if word.split() else word
        if word in _YES:
            return 1
        if word in _NO:
            return 0
    return None


def _json_verdict(data: dict[Any, Any]) -> dict[str, Any]:
    lowered = {re.sub(r"[\s-]+", "_", str(k).strip().casefold()): v for k, v in data.items()}
    return {point: lowered.get(point) for point in (*POINTS, "problems")}


def _line_verdict(text: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for match in _LINE.finditer(text):
        label = " ".join(match.group(1).replace("_", " ").casefold().split())
        for point, labels in _LINE_KEYS.items():
            if point not in found and label in labels:
                found[point] = match.group(2)
    return found


def parse_critique(text: str) -> CritiqueVerdict | str:
    """The verdict of a critique reply, or a short reason why it cannot be read.

    Reads `{"valid": 1, ...}` JSON (bare, fenced or in prose; values 0/1, true/false or
    yes/no), else `Valid: 1` style lines in any case, bold or bulleted. Every one of the
    four points must be read: a verdict with a point missing is unreadable, never a pass.
    """
    data = load_json(text)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict):
        raw, method = _json_verdict(data), "json"
    else:
        raw, method = _line_verdict(text), "lines"
    flags = {point: _flag(raw.get(point)) for point in POINTS}
    missing = [point for point, value in flags.items() if value is None]
    if missing:
        if not any(raw.get(point) is not None for point in POINTS):
            return "no verdict found (neither JSON nor 'Valid: 1' lines)"
        return f"no 0/1 value for {', '.join(missing)}"
    problems = raw.get("problems")
    problems_text = " ".join(str(problems).split()) if problems is not None else ""
    return CritiqueVerdict(
        valid=flags["valid"] or 0,
        solvable=flags["solvable"] or 0,
        needs=(flags["needs_skill_1"] or 0, flags["needs_skill_2"] or 0),
        problems=problems_text[:PROBLEMS_MAX_CHARS],
        method=method,
    )
