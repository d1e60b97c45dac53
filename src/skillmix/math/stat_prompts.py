"""The teacher's prompt of STAT-Syn and reading the pair it writes (pure).

The teacher is given one skill (name and definition) and a few pool questions labelled
with it, with their final answers, as a guide to style and level, and asked for one new
problem with a worked solution and a single checkable final answer. With a backend that
decodes with a schema the reply is JSON `{"question", "solution", "answer"}` with bounded
strings, the answer last; without one, `Question:` / `Solution:` / `Answer:` sections.
`parse_pair` reads both, and JSON wrapped in prose or fences; a reply without a question,
a solution or an answer (a solution's `\\boxed{}` can stand in for the last) is
`Unparsed`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skillmix.data.instruct.parse import load_json
from skillmix.math.answers import boxed_contents
from skillmix.math.eval import Unparsed
from skillmix.math.problems import MathProblem
from skillmix.models.base import Message

PROMPTS_VERSION = "math-stat-syn-v1"
QUESTION_MAX_CHARS = 1500
SOLUTION_MAX_CHARS = 4000
ANSWER_MAX_CHARS = 200

_QUESTION_KEYS = ("question", "problem")
_SOLUTION_KEYS = ("solution", "worked_solution", "reasoning")
_ANSWER_KEYS = ("answer", "final_answer", "final answer")
_SECTION = re.compile(
    r"^[\W_]*(question|problem|solution|worked solution|final answer|answer)\s*[*_]*\s*:"
    r"\s*[*_]*\s*(.*)$",
    re.I,
)


@dataclass(frozen=True)
class WrittenPair:
    """A question, its worked solution and its final answer, as the teacher wrote them."""

    question: str
    solution: str
    answer: str


def pair_schema() -> dict[str, Any]:
    """`{"question", "solution", "answer"}`, every string bounded, the answer last."""

    def bounded(n: int) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": n}

    properties = {
        "question": bounded(QUESTION_MAX_CHARS),
        "solution": bounded(SOLUTION_MAX_CHARS),
        "answer": bounded(ANSWER_MAX_CHARS),
    }
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def write_messages(
    skill: str, definition: str, examples: Sequence[MathProblem], *, structured: bool
) -> list[Message]:
    """Ask for one new problem that exercises `skill`, shown `examples` from the pool."""
    parts = [
        "Write one new math problem that a student can only solve by applying the skill "
        "below, with a complete worked solution and its final answer. The problem must be "
        "new, not a copy or a light rewording of the examples, and have a single final "
        "answer that can be checked: a number or a closed-form expression.",
        f"Skill: {skill}" + (f": {' '.join(definition.split())}" if definition else ""),
    ]
    if examples:
        shown = [
            f"Example {i}\nProblem: {p.question.strip()}\nFinal answer: {p.answer.strip()}"
            for i, p in enumerate(examples, start=1)
        ]
        parts.append(
            "Problems from the training set that use this skill (a guide to style and "
            "level only):\n\n" + "\n\n".join(shown)
        )
    if structured:
        parts.append(
            'Reply with JSON only: {"question": "<the new problem>", "solution": "<the '
            'worked solution>", "answer": "<the final answer alone>"}.'
        )
    else:
        parts.append(
            "Reply in three parts:\nQuestion: <the new problem>\nSolution: <the worked "
            "solution>\nAnswer: <the final answer alone>"
        )
    return [{"role": "user", "content": "\n\n".join(parts)}]


def _field(data: dict[str, Any], keys: Sequence[str]) -> str:
    lowered = {str(k).strip().lower(): v for k, v in data.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            text = str(value).strip()
            if text:
                return text
    return ""


def _sections(text: str) -> dict[str, str]:
    """`Question:` / `Solution:` / `Answer:` sections (the first of each), by kind."""
    found: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        marker = _SECTION.match(line)
        if marker is not None:
            name = marker.group(1).lower()
            kind = {"problem": "question", "worked solution": "solution"}.get(name, name)
            kind = "answer" if kind == "final answer" else kind
            current = kind if kind not in found else None
            if current is not None:
                found[current] = [marker.group(2)]
            continue
        if current is not None:
            found[current].append(line)
    return {k: "\n".join(v).strip() for k, v in found.items()}


def parse_pair(text: str) -> WrittenPair | Unparsed:
    """The pair a reply writes (see the module docstring), or why there is none."""
    data = load_json(text)
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if isinstance(data, dict):
        question = _field(data, _QUESTION_KEYS)
        solution = _field(data, _SOLUTION_KEYS)
        answer = _field(data, _ANSWER_KEYS)
    else:
        parts = _sections(text)
        question = parts.get("question", "")
        solution = parts.get("solution", "")
        answer = parts.get("answer", "")
    if not answer and solution:
        boxed = boxed_contents(solution)
        answer = boxed[-1].strip() if boxed else ""
    missing = [
        name
        for name, value in (("question", question), ("solution", solution), ("answer", answer))
        if not value
    ]
    if missing:
        how = "JSON" if isinstance(data, dict) else "sections"
        return Unparsed(f"no {' or '.join(missing)} found ({how})")
    answer = answer.strip().strip("$").strip()
    boxed = boxed_contents(answer)
    return WrittenPair(question, solution, boxed[-1].strip() if boxed else answer)
