"""The prompts of `math label` and reading the teacher's replies (pure).

Templates are the files `prompts/templates/<version>/math_label_*.txt`, versioned apart
from the evaluation's: `LabelTemplates.version_id` (recorded with every label run) hashes
them with the answer shapes and bounds below. Every request asks either for JSON (when
the teacher decodes with a schema: `skill_schema`, `define_schema`, `assign_schema`) or
for a plain-text shape; the parsers read both, and what a weak model writes instead
(fenced or prose-wrapped JSON, JSON cut off at the token limit, bold or bulleted markers,
numbered lists, `3: 1, 4` lines). Names are cleaned and placeholders copied from the prompt
refused with the helpers of `skillmix.data.instruct.parse`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from skillmix.data.instruct.parse import (
    SkillDraft,
    clean_name,
    is_usable_name,
    load_json,
    name_key,
    parse_entries,
    parse_skill_entry,
    token_jaccard,
)
from skillmix.math.problems import MathProblem
from skillmix.prompts import DEFAULT_VERSION, TemplateSet, builtin_subset

Message = dict[str, str]

TEMPLATE_NAMES = (
    "math_label_skill",
    "math_label_solution",
    "math_label_define",
    "math_label_assign",
    "math_label_repair",
    "math_label_format_json",
    "math_label_format_text",
)
# The shape of each answer, shown to the teacher: (JSON, plain text). Placeholders are in
# angle brackets so that a weak model copying them is easy to recognise.
SHAPES: dict[str, tuple[str, str]] = {
    "skill": (
        '{"skill": "<skill name>", "rationale": "<one sentence>"}',
        "Skill: <skill name>\nRationale: <one sentence>",
    ),
    "define": (
        '{"skills": [{"name": "<broader skill name>", "definition": "<one-sentence '
        'definition>", "example": "<a short problem that needs it>"}, ...]}',
        "1. <broader skill name>: <one-sentence definition> Example: <a short problem that "
        "needs it>\n2. ...",
    ),
}
# One entry per fine name to assign, by its number: (JSON, plain text).
ASSIGN_ENTRY = ('"{number}": [<broader skill numbers>]', "{number}: <broader skill numbers>")
# Bounds that keep constrained decoding from running on inside a string (SPEC section 4).
NAME_MAX_CHARS = 80
SENTENCE_MAX_CHARS = 240


@dataclass(frozen=True)
class LabelTemplates:
    """The `math_label_*` templates of one version (files in prompts/templates/<version>/)."""

    version: str
    templates: TemplateSet

    @property
    def version_id(self) -> str:
        """Version name plus a hash of the template files, answer shapes and bounds."""
        digest = hashlib.sha256()
        for name in TEMPLATE_NAMES:
            digest.update(name.encode() + b"\0" + self.templates.texts[name].encode() + b"\0")
        shapes = [SHAPES, ASSIGN_ENTRY, NAME_MAX_CHARS, SENTENCE_MAX_CHARS]
        digest.update(json.dumps(shapes, sort_keys=True).encode())
        return f"{self.version}-{digest.hexdigest()[:8]}"

    def render(self, template: str, /, **fields: object) -> str:
        return self.templates.render(template, **fields)

    def format_instructions(self, shape: tuple[str, str], structured: bool) -> str:
        if structured:
            return self.render("math_label_format_json", shape=shape[0])
        return self.render("math_label_format_text", shape=shape[1])


@cache
def load_label_templates(version: str = DEFAULT_VERSION) -> LabelTemplates:
    """Read the `math_label_*` templates of a built-in version (`TemplateError` if missing)."""
    return LabelTemplates(version, builtin_subset(version, TEMPLATE_NAMES))


def _user(text: str) -> Message:
    return {"role": "user", "content": text}


def skill_messages(
    t: LabelTemplates, problem: MathProblem, structured: bool, show_solution: bool
) -> list[Message]:
    """Stage 1: name the one fine-grained skill `problem` needs (with the solution if shown)."""
    solution = (
        t.render("math_label_solution", solution=problem.solution)
        if show_solution and problem.solution
        else ""
    )
    text = t.render(
        "math_label_skill",
        question=problem.question,
        solution_block=solution,
        format_instructions=t.format_instructions(SHAPES["skill"], structured),
    )
    return [_user(text)]


def define_messages(
    t: LabelTemplates, fine: Sequence[tuple[str, int]], n: int, listed: int, structured: bool
) -> list[Message]:
    """Stage 2: define `n` coarse skills from the `listed` first of the fine names, given as
    (name, number of questions), most frequent first."""
    shown = fine[:listed]
    lines = "\n".join(f"- {name} ({_problems(count)})" for name, count in shown)
    rest = len(fine) - len(shown)
    note = f"(and {rest} more skills, each named for fewer problems)" if rest > 0 else ""
    text = t.render(
        "math_label_define",
        fine_list=lines,
        unlisted_note=note,
        n=n,
        format_instructions=t.format_instructions(SHAPES["define"], structured),
    )
    return [_user(text)]


def assign_shape(numbers: Sequence[int]) -> tuple[str, str]:
    """The assignment answer's shape for the fine names with these (1-based) numbers."""
    entries = [ASSIGN_ENTRY[0].format(number=i) for i in numbers]
    lines = [ASSIGN_ENTRY[1].format(number=i) for i in numbers]
    return "{" + ", ".join(entries) + "}", "\n".join(lines)


def assign_messages(
    t: LabelTemplates, coarse: Sequence[SkillDraft], batch: Sequence[str], structured: bool
) -> list[Message]:
    """Stage 2: assign each fine name of `batch` to coarse skills by number."""
    text = t.render(
        "math_label_assign",
        coarse_list="\n".join(f"{j}. {d.name}: {d.definition}" for j, d in enumerate(coarse, 1)),
        fine_list="\n".join(f"{i}. {name}" for i, name in enumerate(batch, 1)),
        format_instructions=t.format_instructions(
            assign_shape(range(1, len(batch) + 1)), structured
        ),
    )
    return [_user(text)]


def repair_messages(
    t: LabelTemplates,
    messages: Sequence[Message],
    reply: str,
    problem: str,
    shape: tuple[str, str],
    structured: bool,
) -> list[Message]:
    """The same conversation with the reply and a turn naming what to fix."""
    text = t.render(
        "math_label_repair",
        problem=problem,
        format_instructions=t.format_instructions(shape, structured),
    )
    return [*messages, {"role": "assistant", "content": reply}, _user(text)]


def _string(max_chars: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_chars}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def skill_schema() -> dict[str, Any]:
    """`{"skill": name, "rationale": sentence}`: the name first, both bounded."""
    return _object({"skill": _string(NAME_MAX_CHARS), "rationale": _string(SENTENCE_MAX_CHARS)})


def define_schema(n: int) -> dict[str, Any]:
    """`{"skills": [{name, definition, example}] * n}` with bounded strings."""
    item = _object(
        {
            "name": _string(NAME_MAX_CHARS),
            "definition": _string(SENTENCE_MAX_CHARS),
            "example": _string(SENTENCE_MAX_CHARS),
        }
    )
    return _object({"skills": {"type": "array", "items": item, "minItems": n, "maxItems": n}})


def assign_schema(numbers: Sequence[int], n: int) -> dict[str, Any]:
    """One required key per fine name (its number) holding 1..n coarse skill numbers."""
    refs = {"type": "integer", "enum": list(range(1, n + 1))}
    entry = {"type": "array", "items": refs, "minItems": 1, "maxItems": n}
    return _object({str(i): entry for i in numbers})


def _problems(n: int) -> str:
    return f"{n} problem" + ("" if n == 1 else "s")


# --- reading the replies ---------------------------------------------------------------------


@dataclass(frozen=True)
class FineSkill:
    """A fine-grained skill read from a stage-1 reply; `method` says how it was read."""

    name: str
    rationale: str
    method: str  # "json", "salvaged" (JSON cut off after the name) or "markers"


_SKILL_MARK = re.compile(
    r"^[ \t#>*_-]*(?:the[ \t]+)?(?:fine[- ]grained[ \t]+)?skill(?:[ \t]+name)?[ \t*_]*"
    r"(?::|[-–—][ \t])[ \t*_]*(.*)$",
    re.I | re.M,
)
_RATIONALE_MARK = re.compile(
    r"^[ \t#>*_-]*(?:rationale|reason|why|explanation|justification)[ \t*_]*:[ \t*_]*",
    re.I | re.M,
)
_JSON_FIELD = r'"{key}"\s*:\s*"((?:[^"\\]|\\.)*)'
_QUOTES = "\"'“”‘’«»"
_SKILL_KEYS = ("skill", "name", "skill_name", "fine_skill", "fine_grained_skill")
_RATIONALE_KEYS = ("rationale", "reason", "why", "explanation", "justification")


def _field(data: Mapping[Any, Any], keys: Sequence[str]) -> str | None:
    lowered = {str(k).lower().replace(" ", "_"): v for k, v in data.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _sentence(text: str) -> str:
    """A rationale as one line; a placeholder copied from the prompt is no rationale."""
    text = " ".join(text.split()).strip().strip(_QUOTES).strip()
    return "" if "<" in text and ">" in text else text


def _fine(raw: str, rationale: str, method: str) -> FineSkill | None:
    name = clean_name(raw)
    if not is_usable_name(raw, name) or len(name) > NAME_MAX_CHARS:
        return None
    return FineSkill(name, _sentence(rationale), method)


def parse_fine_skill(text: str) -> FineSkill | str:
    """The skill of a stage-1 reply, or a short reason why there is none.

    Reads `{"skill", "rationale"}` JSON (bare, fenced, in prose, or cut off after the
    name), else `Skill:` and `Rationale:` lines in any case, bold or bulleted. A name copied
    from the prompt (`<skill name>`) or a whole sentence posing as a name is refused.
    """
    data = load_json(text)
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict):
        name = _field(data, _SKILL_KEYS)
        if name is not None:
            found = _fine(name, _field(data, _RATIONALE_KEYS) or "", "json")
            return found or f"the skill name {name!r} is a placeholder or not a name"
    if text.lstrip().startswith(("{", "```")):
        cut = re.search(_JSON_FIELD.format(key="skill"), text, re.I)
        if cut:
            reason = re.search(_JSON_FIELD.format(key="rationale"), text, re.I)
            found = _fine(
                _unescape(cut.group(1)), _unescape(reason.group(1)) if reason else "", "salvaged"
            )
            if found:
                return found
    marker = _SKILL_MARK.search(text)
    if marker is None:
        return "no skill found (neither JSON nor a 'Skill:' line)"
    name = marker.group(1).strip()
    after = text[marker.end() :]
    if not name:  # the name on the next line
        lines = [line for line in after.splitlines() if line.strip()]
        name = lines[0] if lines else ""
        after = after.split(name, 1)[1] if name else after
    because = _RATIONALE_MARK.search(after)
    rationale = after[because.end() :] if because else after
    return _fine(name, rationale, "markers") or f"the skill name {name!r} is not a usable name"


def _unescape(raw: str) -> str:
    try:
        return str(json.loads(f'"{raw.rstrip(chr(92))}"'))
    except json.JSONDecodeError:
        return raw


def parse_coarse_skills(text: str) -> list[SkillDraft]:
    """The coarse skills of a define reply, distinct by name, in the order given.

    JSON `{"skills": [...]}` or a list, else numbered `Name: definition Example: ...`
    lines; entries whose name is a placeholder or a sentence are left out. Empty when
    nothing could be read.
    """
    drafts: list[SkillDraft] = []
    seen: set[tuple[str, ...]] = set()
    for draft in _all_drafts(text):
        if name_key(draft.name) not in seen:
            seen.add(name_key(draft.name))
            drafts.append(draft)
    return drafts


def coarse_problem(text: str, n: int) -> str:
    """What is wrong with a define reply (empty when nothing): count or repeated names."""
    names = [d.name for d in _all_drafts(text)]
    drafts = parse_coarse_skills(text)
    keys = [name_key(name) for name in names]
    repeated = sorted({names[i] for i, key in enumerate(keys) if keys.count(key) > 1})
    problems = []
    if repeated:
        problems.append(
            "every broader skill needs its own name, but "
            + ", ".join(repr(name) for name in repeated)
            + " is given more than once"
        )
    if len(drafts) != n:
        problems.append(f"it has {len(drafts)} broader skills, and exactly {n} are needed")
    return "; ".join(problems) + ("." if problems else "")


def _all_drafts(text: str) -> list[SkillDraft]:
    """Every usable coarse skill entry of a define reply, repeats included."""
    drafts = []
    for entry in parse_entries(text, "skills"):
        draft, _ = parse_skill_entry(entry, "")
        if draft is not None:
            drafts.append(draft)
    return drafts


_LINE_NUMBER = re.compile(r"^[\s*_#>•-]*\(?(\d{1,4})\)?[.):]?(?=\s|$|:)(.*)$")
_SEPARATORS = re.compile(r"\s*(?:->|→|=>|=|:)\s*")


def _refs(value: Any, coarse: Sequence[str]) -> tuple[int, ...]:
    """0-based coarse indices named by `value`: numbers (1-based) or coarse names."""
    items = value if isinstance(value, list) else [value]
    keys = [name_key(name) for name in coarse]
    found: set[int] = set()
    for item in items:
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if 1 <= item <= len(coarse):
                found.add(item - 1)
            continue
        if not isinstance(item, str):
            continue
        numbers = [int(n) for n in re.findall(r"\b\d{1,4}\b", item)]
        hits = {n - 1 for n in numbers if 1 <= n <= len(coarse)}
        if not hits:
            key = name_key(item)
            hits = {j for j, k in enumerate(keys) if k and k == key}
            if not hits:
                hits = {j for j, k in enumerate(keys) if k and _contains(key, k)}
        found |= hits
    return tuple(sorted(found))


def _contains(text: tuple[str, ...], name: tuple[str, ...]) -> bool:
    n = len(name)
    return any(text[i : i + n] == name for i in range(len(text) - n + 1))


def _fine_index(key: Any, fine: Sequence[str]) -> int | None:
    """The 0-based index of the fine name a key names: its number, or the name itself."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key - 1 if 1 <= key <= len(fine) else None
    text = str(key).strip()
    if re.fullmatch(r"\d{1,4}", text):
        number = int(text)
        return number - 1 if 1 <= number <= len(fine) else None
    wanted = name_key(clean_name(text))
    return next((i for i, name in enumerate(fine) if name_key(name) == wanted), None)


def parse_assignments(
    text: str, fine: Sequence[str], coarse: Sequence[str]
) -> dict[int, tuple[int, ...]]:
    """Fine name index -> coarse skill indices (all 0-based) read from an assign reply.

    JSON `{"3": [1, 4]}` (keys may also be the fine names, values coarse names), a list of
    `{"skill": 3, "coarse": [1, 4]}` objects, or `3: 1, 4` lines (also `3. name -> 2`).
    Only entries naming a known fine name and at least one known coarse skill are kept.
    """
    pairs: list[tuple[Any, Any]] = []
    data = load_json(text)
    if isinstance(data, dict):
        inner = next((v for k, v in data.items() if str(k).lower() == "assignments"), data)
        data = inner
    if isinstance(data, dict):
        pairs = list(data.items())
    elif isinstance(data, list):
        for entry in data:
            if isinstance(entry, dict):
                key = _field_any(entry, ("skill", "fine", "number", "id", "fine_skill"))
                value = _field_any(entry, ("coarse", "broader", "broad", "skills", "groups"))
                if key is not None and value is not None:
                    pairs.append((key, value))
    if not pairs:
        for line in text.splitlines():
            match = _LINE_NUMBER.match(line)
            if match is None:
                continue
            parts = _SEPARATORS.split(match.group(2))
            pairs.append((int(match.group(1)), parts[-1] if len(parts) > 1 else parts[0]))
    found: dict[int, tuple[int, ...]] = {}
    for key, value in pairs:
        index = _fine_index(key, fine)
        refs = _refs(value, coarse)
        if index is not None and refs:
            found[index] = tuple(sorted(set(found.get(index, ())) | set(refs)))
    return found


def _field_any(entry: Mapping[Any, Any], keys: Sequence[str]) -> Any:
    lowered = {str(k).lower(): v for k, v in entry.items()}
    return next((lowered[k] for k in keys if k in lowered), None)


def nearest_coarse(fine: str, coarse: Sequence[SkillDraft]) -> int:
    """The coarse skill whose name and definition share the most words with `fine`
    (token Jaccard; ties: the first). The fallback for a fine name left unassigned."""
    key = name_key(fine)
    scores = [token_jaccard(key, name_key(f"{d.name} {d.definition}")) for d in coarse]
    return max(range(len(coarse)), key=lambda j: (scores[j], -j))
