"""Reading the teacher's replies (pure): lists, names, skill entries, pairs, responses.

Every parser accepts what a weak teacher actually writes: JSON bare, fenced, wrapped in
prose or cut off at the token limit; numbered, bulleted or plain lists; `Instruction:` /
`Response:` markers in bold, as headings, in any case. Names are cleaned (markup,
numbering, quotes) and placeholders copied from the prompt are dropped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

NO_DEFINITION = "(the teacher gave no definition)"
NO_EXAMPLE = "(the teacher gave no example)"
MAX_NAME_WORDS = 12  # a longer "name" is a sentence the parser picked up, not a name

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_BULLET = re.compile(r"^\s*(?:[-*•+]|\(?\d{1,3}[.):]|\(?[a-zA-Z][.)])\s+(?=\S)")
_MARKUP = re.compile(r"[*_`#]+")
_QUOTES = "\"'“”‘’«»"
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"\s*(:)?')
_FLAT_OBJECT = re.compile(r"\{[^{}]*\}")
_EXAMPLE = re.compile(r"\(?\s*\b(?:example|e\.g\.)\s*:\s*(.+?)\)?\s*$", re.I | re.S)
_NAME_SPLIT = re.compile(r"\s*:\s+|\s+[-–—]+\s+|\s*[–—]\s*")
_INSTRUCTION_MARK = re.compile(
    r"^[ \t#>*_]*(?:the[ \t]+)?(?:user[ \t]+)?(?:instruction|prompt)[ \t*_]*(?::|(?=\n)|$)[ \t*_]*",
    re.I | re.M,
)
_RESPONSE_MARK = re.compile(
    r"^[ \t#>*_]*(?:the[ \t]+)?(?:improved[ \t]+|revised[ \t]+|rewritten[ \t]+|final[ \t]+)?"
    r"(?:assistant[ \t]+)?(?:response|answer)[ \t*_]*(?::|(?=\n)|$)[ \t*_]*",
    re.I | re.M,
)
_PLACEHOLDER_KEYS = {
    ("topic",),
    ("skill",),
    ("skill", "name"),
    ("name",),
    ("query", "type"),
    ("type",),
}


def load_json(text: str) -> Any:
    """The JSON value in a reply (bare, fenced or surrounded by prose), or None."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        candidate = candidate.strip()
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
        for opener, closer in (("{", "}"), ("[", "]")):
            start, end = candidate.find(opener), candidate.rfind(closer)
            if 0 <= start < end:
                try:
                    return json.loads(candidate[start : end + 1])
                except json.JSONDecodeError:
                    continue
    return None


def _salvage_json(text: str) -> list[Any]:
    """Complete values of a truncated JSON list: flat objects, else string values."""
    objects: list[Any] = []
    for match in _FLAT_OBJECT.finditer(text):
        try:
            objects.append(json.loads(match.group(0)))
        except json.JSONDecodeError:
            continue
    if objects:
        return objects
    values: list[Any] = []
    for match in _STRING.finditer(text):
        if match.group(2):  # a key, not a value
            continue
        try:
            values.append(json.loads(f'"{match.group(1)}"'))
        except json.JSONDecodeError:
            values.append(match.group(1))
    return values


def _list_lines(text: str) -> list[str]:
    """Entries of a numbered or bulleted list; else plain lines; else comma-separated."""
    lines = [line for line in text.splitlines() if line.strip()]
    bulleted = [_BULLET.sub("", line).strip() for line in lines if _BULLET.match(line)]
    if bulleted:
        return bulleted
    plain = [line.strip() for line in lines if not line.rstrip().endswith(":")]
    if len(plain) == 1 and ("," in plain[0] or ";" in plain[0]):
        return [part.strip() for part in re.split(r"[;,]", plain[0]) if part.strip()]
    return plain


def parse_entries(text: str, key: str) -> list[Any]:
    """The entries of a list answer: `{key: [...]}` or `[...]` JSON, else list lines.

    Accepts fenced or prose-wrapped JSON, another key holding a list, JSON cut off at the
    token limit (its complete entries), numbered or bulleted lists and plain lines.
    """
    data = load_json(text)
    if isinstance(data, dict):
        lowered = {str(k).lower().replace(" ", "_"): v for k, v in data.items()}
        value = lowered.get(key)
        if not isinstance(value, list):
            value = next((v for v in data.values() if isinstance(v, list)), None)
        if isinstance(value, list):
            return value
        if data:
            return [data]  # a single entry, e.g. one skill object
    if isinstance(data, list):
        return data
    stripped = text.strip()
    if stripped.startswith(("{", "[", "```")):
        salvaged = _salvage_json(stripped)
        return [v for v in salvaged if not (isinstance(v, str) and v.lower() == key)]
    return _list_lines(text)


def clean_name(text: str) -> str:
    """`**2. Active listening.**` -> `Active listening`: no markup, numbering, quotes."""
    name = _MARKUP.sub("", text)
    name = _BULLET.sub("", name).strip()
    for _ in range(2):
        name = name.strip().strip(_QUOTES).strip().rstrip(".;:,!?").strip()
    return " ".join(name.split())


def _singular(word: str) -> str:
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def name_key(name: str) -> tuple[str, ...]:
    """What makes two names the same: lower-case alphanumeric words, singular."""
    return tuple(_singular(w) for w in re.findall(r"[a-z0-9]+", name.lower()))


def token_jaccard(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """Jaccard similarity of two names' word sets (1.0 for two empty names)."""
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def is_usable_name(raw: str, name: str) -> bool:
    """False for placeholders copied from the prompt and sentences posing as names."""
    if "<" in raw and ">" in raw:
        return False
    key = name_key(name)
    return bool(key) and key not in _PLACEHOLDER_KEYS and len(name.split()) <= MAX_NAME_WORDS


@dataclass(frozen=True)
class SkillDraft:
    """A skill as the teacher proposed it, before deduplication."""

    name: str
    definition: str
    example: str
    topic: str


def _text_field(entry: dict[str, Any], *keys: str) -> str:
    lowered = {str(k).lower(): v for k, v in entry.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, list):
            value = value[0] if value else ""
        if value is not None and str(value).strip():
            return " ".join(str(value).split())
    return ""


def parse_skill_entry(entry: Any, topic: str) -> tuple[SkillDraft | None, str]:
    """One skill from a JSON object or a `Name: definition Example: request` line.

    Returns (draft, "") or (None, the raw name that was dropped).
    """
    if isinstance(entry, dict):
        raw = _text_field(entry, "name", "skill", "skill_name", "title")
        definition = _text_field(entry, "definition", "description", "explanation")
        example = _text_field(entry, "example", "examples", "example_request")
    else:
        text = " ".join(str(entry).split())
        example = ""
        found = _EXAMPLE.search(text)
        if found:
            example, text = found.group(1).strip(), text[: found.start()]
        parts = _NAME_SPLIT.split(text, maxsplit=1)
        raw = parts[0]
        definition = parts[1].strip() if len(parts) > 1 else ""
    name = clean_name(raw)
    if not is_usable_name(raw, name):
        return None, raw
    definition = definition.strip().strip(_QUOTES).strip()
    example = example.strip().strip(_QUOTES).strip()
    if "<" in definition and ">" in definition:
        definition = ""
    if "<" in example and ">" in example:
        example = ""
    return SkillDraft(name, definition or NO_DEFINITION, example or NO_EXAMPLE, topic), ""


def parse_names(text: str, key: str) -> tuple[list[str], list[str]]:
    """Clean, distinct names from a list answer: (names, raw entries dropped)."""
    names: list[str] = []
    dropped: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for entry in parse_entries(text, key):
        raw = entry if isinstance(entry, str) else _text_field(entry, "name", key, "type", "topic")
        raw = " ".join(str(raw).split())
        name = clean_name(raw)
        if not is_usable_name(raw, name):
            if raw:
                dropped.append(raw)
            continue
        if name_key(name) in seen:
            continue
        seen.add(name_key(name))
        names.append(name)
    return names, dropped


@dataclass(frozen=True)
class ParsedPair:
    """An (instruction, response) pair read from the first turn."""

    instruction: str
    response: str


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in _QUOTES:
        text = text[1:-1].strip()
    return text


def _json_text(data: Any, *keys: str) -> str | None:
    if not isinstance(data, dict):
        return None
    lowered = {str(k).lower(): v for k, v in data.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, str):
            return value
    return None


_JSON_INSTRUCTION = re.compile(r'"instruction"\s*:\s*"((?:[^"\\]|\\.)*)"', re.I)
_JSON_RESPONSE_START = re.compile(r'"response"\s*:\s*"((?:[^"\\]|\\.)*)', re.I)


def _salvage_pair(text: str) -> tuple[str | None, str | None]:
    """A pair from JSON cut off inside the response (the refinement rewrites it anyway)."""
    instruction = _JSON_INSTRUCTION.search(text)
    response = _JSON_RESPONSE_START.search(text, instruction.end() if instruction else 0)
    if instruction is None or response is None:
        return None, None

    def decode(raw: str) -> str:
        try:
            return str(json.loads(f'"{raw.rstrip(chr(92))}"'))
        except json.JSONDecodeError:
            return raw

    return decode(instruction.group(1)), decode(response.group(1))


def parse_pair(text: str) -> ParsedPair | str:
    """(instruction, response) from JSON or `Instruction:` / `Response:` markers.

    Returns the pair, or a short reason why there is none. Markers may be bold, headed,
    in any case, or alone on their line.
    """
    data = load_json(text)
    instruction = _json_text(data, "instruction", "prompt", "query", "question", "input")
    response = _json_text(data, "response", "answer", "output")
    if (instruction is None or response is None) and text.lstrip().startswith("{"):
        instruction, response = _salvage_pair(text)
    if instruction is None or response is None:
        start = _INSTRUCTION_MARK.search(text)
        if start is None:
            if text.lstrip().startswith("{"):
                return "malformed or cut-off JSON, and no 'Instruction:' marker"
            return "no instruction found (neither JSON nor an 'Instruction:' marker)"
        end = _RESPONSE_MARK.search(text, start.end())
        if end is None:
            return "no response found after the instruction (no 'Response:' marker)"
        instruction = text[start.end() : end.start()]
        response = text[end.end() :]
    instruction, response = _unquote(instruction), _unquote(response)
    if not instruction:
        return "the instruction is empty"
    if not response:
        return "the response is empty"
    return ParsedPair(instruction, response)


def parse_response(text: str) -> str:
    """The rewritten (or shirker) response: JSON `response`, else the text without markers."""
    value = _json_text(load_json(text), "response", "answer", "improved_response", "output")
    if value is not None:
        return _unquote(value)
    if _INSTRUCTION_MARK.search(text):
        pair = parse_pair(text)
        if isinstance(pair, ParsedPair):
            return pair.response
    marker = _RESPONSE_MARK.match(text.lstrip())
    if marker:
        text = text.lstrip()[marker.end() :]
    return _unquote(text)
