"""The teacher's prompt of `math profile` and reading its verdicts (pure).

For a wrong answer the teacher is shown the question, its reference answer (and worked
solution, unless `show_solution` is off), the student's solution and the skills the
question needs, numbered. It gives one verdict per skill: 1 when the student's solution
lacks or misapplies the skill, 0 when it does not. With a backend that decodes with a
schema the reply is JSON with one fixed 0/1 field per skill number (`verdict_schema`):
no free text inside the schema, which small models would run on until the token limit
(SPEC section 4). Without one, the teacher writes `N: 0|1` lines, or a `Missing: 1, 3`
(or `Missing: none`) line; `parse_verdicts` reads all of these, and JSON wrapped in prose
or fences. A verdict is tied to a skill by its number, never by the row it appears on,
and a reply that leaves a skill without a verdict is *unparsed*: drawn again, then
recorded and counted as unparsed, never read as "nothing missing".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from skillmix.data.instruct.parse import load_json
from skillmix.math.eval import Unparsed
from skillmix.math.problems import MathProblem
from skillmix.models.base import Message

PROMPTS_VERSION = "math-profile-v1"
DEFINITION_MAX_CHARS = 240  # a skill's definition is cut to this in the prompt

_YES = {"1", "yes", "true", "missing", "lacks", "lacking", "misapplied", "misapplies", "y"}
_NO = {"0", "no", "false", "fine", "ok", "correct", "present", "applied", "n"}
_NUMBERED = re.compile(r"^[\W_]*(?:skill\s*)?#?(\d+)\b(.*)$", re.I)
_SEPARATOR = re.compile(r"[:=]|\s[-–—]\s|->|→")
_WORD = re.compile(r"[\W_]*([a-z0-9]+)", re.I)
_MISSING_LINE = re.compile(r"^[\W_]*missing(?:\s+skills?)?\s*[:=]\s*(.*)$", re.I)
_NONE = re.compile(r"^\W*(none|nothing|no skills?|-)\W*$", re.I)


def verdict_schema(n: int) -> dict[str, Any]:
    """One required 0/1 integer per skill number "1".."n", and nothing else."""
    properties = {str(i): {"type": "integer", "enum": [0, 1]} for i in range(1, n + 1)}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _skill_lines(skills: Sequence[tuple[str, str]]) -> str:
    lines = []
    for i, (name, definition) in enumerate(skills, start=1):
        text = " ".join(definition.split())
        if len(text) > DEFINITION_MAX_CHARS:
            text = text[: DEFINITION_MAX_CHARS - 1].rstrip() + "…"
        lines.append(f"{i}. {name}" + (f": {text}" if text and text != name else ""))
    return "\n".join(lines)


def missing_messages(
    problem: MathProblem,
    attempt: str,
    skills: Sequence[tuple[str, str]],
    *,
    structured: bool,
    show_solution: bool = True,
) -> list[Message]:
    """Ask which of the question's skills (name, definition) the wrong answer lacks."""
    numbers = ", ".join(f'"{i}": 0 or 1' for i in range(1, len(skills) + 1))
    if structured:
        reply = f"Reply with JSON only: {{{numbers}}}."
    else:
        reply = (
            'Reply with one line per skill: "<number>: 1" if the student\'s solution lacks '
            'or misapplies that skill, "<number>: 0" if it does not.'
        )
    parts = [
        "A student's solution to the math problem below reaches a wrong final answer. "
        "Solving the problem needs the skills listed below. For each skill, decide whether "
        "the student's solution lacks it or misapplies it (1) or uses it correctly (0). "
        "Do not solve the problem again.",
        f"Skills the problem needs:\n{_skill_lines(skills)}",
        f"Problem: {problem.question.strip()}",
    ]
    if show_solution and problem.solution and problem.solution.strip():
        parts.append(f"Reference solution: {problem.solution.strip()}")
    parts.append(f"Reference answer: {problem.answer.strip()}")
    parts.append(f"Student's solution:\n{attempt.strip()}")
    parts.append(reply)
    return [{"role": "user", "content": "\n\n".join(parts)}]


def _flag(value: Any) -> bool | None:
    """A 0/1 verdict in the forms replies use (1, "1", true, "yes", "missing"), or None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().strip("*`'\".").lower()
        if word in _YES:
            return True
        if word in _NO:
            return False
    return None


def _numbers(text: str, n: int) -> list[int] | None:
    """The skill numbers a "Missing:" line lists (None: a number outside 1..n)."""
    found = [int(x) for x in re.findall(r"\d+", text)]
    if any(not 1 <= x <= n for x in found):
        return None
    return sorted(set(found))


def _from_json(data: Any, n: int) -> list[int] | Unparsed | None:
    if not isinstance(data, dict):
        return None
    if "missing" in data and isinstance(data["missing"], list):
        values = data["missing"]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            found = _numbers(" ".join(map(str, values)), n)
            return found if found is not None else Unparsed("a skill number out of range")
    keys = {re.sub(r"\D", "", str(k)): v for k, v in data.items()}
    flags = {i: _flag(keys.get(str(i))) for i in range(1, n + 1)}
    absent = [i for i, flag in flags.items() if flag is None]
    if absent:
        return Unparsed(f"no 0/1 verdict for skill(s) {', '.join(map(str, absent))} in the JSON")
    return [i for i, flag in flags.items() if flag]


def _line_verdict(line: str) -> tuple[int, bool] | None:
    """(skill number, verdict) of a line such as `2: 1`, `Skill 2 (Counting): yes`,
    `2. Counting - missing` or `2) 0`; None for any other line. The verdict is the first
    0/1 word after a separator, so a skill name with a hyphen or a colon in a trailing
    explanation does not hide it."""
    numbered = _NUMBERED.match(line)
    if numbered is None:
        return None
    number, rest = int(numbered.group(1)), numbered.group(2)
    starts = [m.end() for m in _SEPARATOR.finditer(rest)]
    if not starts:  # "2) 1", "2 yes"
        starts = [0]
    for start in starts:
        word = _WORD.match(rest, start)
        if word is not None and (flag := _flag(word.group(1))) is not None:
            return number, flag
    return None


def parse_verdicts(text: str, n: int) -> list[int] | Unparsed:
    """The numbers (1-based, ascending) of the skills a reply finds lacking or misapplied.

    Reads JSON (`{"1": 0, "2": 1}`, or `{"missing": [2]}`), else `N: 0|1` lines (also
    yes/no, bold, "Skill 2 (name): 1"), else a `Missing: 2, 3` or `Missing: none` line.
    Every one of the `n` skills needs a verdict (a "Missing:" line gives all of them at
    once); otherwise the reply is `Unparsed`, with the reason.
    """
    if n < 1:
        return []
    data = load_json(text)
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    read = _from_json(data, n)
    if isinstance(read, list):
        return read
    flags: dict[int, bool] = {}
    missing_line: list[int] | None = None
    for line in text.replace("*", " ").splitlines():
        marked = _MISSING_LINE.match(line)
        if marked is not None and missing_line is None:
            body = marked.group(1).strip()
            if _NONE.match(body) or not body:
                missing_line = []
            else:
                missing_line = _numbers(body, n)
                if missing_line is None:
                    return Unparsed(f"a skill number out of range in {line.strip()[:80]!r}")
            continue
        verdict = _line_verdict(line)
        if verdict is not None and 1 <= verdict[0] <= n and verdict[0] not in flags:
            flags[verdict[0]] = verdict[1]
    if len(flags) == n:
        return sorted(i for i, flag in flags.items() if flag)
    if missing_line is not None:
        return missing_line
    if isinstance(read, Unparsed):
        return read
    if flags:
        absent = [str(i) for i in range(1, n + 1) if i not in flags]
        return Unparsed(f"no verdict for skill(s) {', '.join(absent)}")
    return Unparsed("no verdict found (neither JSON nor 'N: 0/1' lines)")
