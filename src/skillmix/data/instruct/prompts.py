"""Prompt templates of Instruct-SkillMix (files `templates/<version>/instruct_*.txt`).

They are versioned apart from the evaluation templates: editing them changes
`InstructTemplates.version_id` (recorded with every example) and never the version id of
a Skill-Mix evaluation. Every request asks either for JSON (when the teacher supports
constrained decoding, with the schema from `*_schema` below) or for a plain-text format
that the parsers of `skillmix.data.instruct.parse` read back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from skillmix.prompts import DEFAULT_VERSION, TemplateSet, builtin_subset

Message = dict[str, str]

INSTRUCT_TEMPLATE_NAMES = (
    "instruct_topics",
    "instruct_skills",
    "instruct_query_types",
    "instruct_skill",
    "instruct_generate",
    "instruct_critique",
    "instruct_refine",
    "instruct_shirker",
    "instruct_format_json",
    "instruct_format_text",
)

# The shape each answer must take, shown to the teacher: (JSON, plain text). Placeholders
# are in angle brackets so that a weak model copying them verbatim is easy to recognise.
SHAPES: dict[str, tuple[str, str]] = {
    "topics": ('{"topics": ["<topic>", "<topic>", ...]}', "1. <topic>\n2. <topic>\n..."),
    "skills": (
        '{"skills": [{"name": "<skill name>", "definition": "<one-sentence definition>", '
        '"example": "<a user request that needs it>"}, ...]}',
        "1. <skill name>: <one-sentence definition> Example: <a user request that needs it>\n"
        "2. ...",
    ),
    "query_types": (
        '{"query_types": ["<query type>", "<query type>", ...]}',
        "1. <query type>\n2. <query type>\n...",
    ),
    "pair": (
        '{"instruction": "<the instruction>", "response": "<the response>"}',
        "Instruction: <the instruction>\nResponse: <the response>",
    ),
    "refine": ('{"response": "<the improved response>"}', "Response: <the improved response>"),
}

# Bounds that keep constrained decoding from running on inside a short string (SPEC
# section 4). Long text (instructions, responses) gets no maxLength: grammar backends
# expand a bound into one rule per character and refuse long ones (llama.cpp gives up
# near 2000), and --max-tokens already bounds it; a reply cut off there is rejected.
NAME_MAX_CHARS = 80
DEFINITION_MAX_CHARS = 240


@dataclass(frozen=True)
class InstructTemplates:
    """The Instruct-SkillMix templates of one version."""

    version: str
    templates: TemplateSet

    @property
    def version_id(self) -> str:
        """Version name plus a hash of the template files and answer shapes."""
        digest = hashlib.sha256()
        for name in INSTRUCT_TEMPLATE_NAMES:
            digest.update(name.encode() + b"\0" + self.templates.texts[name].encode() + b"\0")
        digest.update(json.dumps(SHAPES, sort_keys=True).encode())
        return f"{self.version}-{digest.hexdigest()[:8]}"

    def render(self, template: str, /, **fields: object) -> str:
        return self.templates.render(template, **fields)

    def format_instructions(self, shape: str, structured: bool) -> str:
        json_shape, text_shape = SHAPES[shape]
        if structured:
            return self.render("instruct_format_json", shape=json_shape)
        return self.render("instruct_format_text", shape=text_shape)


@cache
def load_instruct_templates(version: str = DEFAULT_VERSION) -> InstructTemplates:
    """Read the `instruct_*` templates of a version (raises `TemplateError` if missing)."""
    return InstructTemplates(version, builtin_subset(version, INSTRUCT_TEMPLATE_NAMES))


# --- messages ---------------------------------------------------------------------------


def _user(text: str) -> Message:
    return {"role": "user", "content": text}


def topics_messages(t: InstructTemplates, n: int, structured: bool) -> list[Message]:
    fmt = t.format_instructions("topics", structured)
    return [_user(t.render("instruct_topics", n=n, format_instructions=fmt))]


def skills_messages(t: InstructTemplates, topic: str, n: int, structured: bool) -> list[Message]:
    fmt = t.format_instructions("skills", structured)
    return [_user(t.render("instruct_skills", topic=topic, n=n, format_instructions=fmt))]


def query_types_messages(t: InstructTemplates, n: int, structured: bool) -> list[Message]:
    fmt = t.format_instructions("query_types", structured)
    return [_user(t.render("instruct_query_types", n=n, format_instructions=fmt))]


def _skill_names(skills: list[tuple[str, str]]) -> str:
    names = [name for name, _ in skills]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def generate_messages(
    t: InstructTemplates, skills: list[tuple[str, str]], query_type: str, structured: bool
) -> list[Message]:
    """Turn 1: write an (instruction, response) pair; `skills` are (name, definition)."""
    block = "\n".join(t.render("instruct_skill", name=n, definition=d) for n, d in skills)
    text = t.render(
        "instruct_generate",
        query_type=query_type,
        skill_block=block,
        format_instructions=t.format_instructions("pair", structured),
    )
    return [_user(text)]


def critique_messages(
    t: InstructTemplates,
    turn1: list[Message],
    pair_reply: str,
    skills: list[tuple[str, str]],
    query_type: str,
) -> list[Message]:
    """Turn 2, in the same conversation: critique the response just written."""
    text = t.render("instruct_critique", query_type=query_type, skill_names=_skill_names(skills))
    return [*turn1, {"role": "assistant", "content": pair_reply}, _user(text)]


def refine_messages(
    t: InstructTemplates, turn2: list[Message], critique_reply: str, structured: bool
) -> list[Message]:
    """Turn 3, in the same conversation: rewrite the response to fix the critique."""
    text = t.render(
        "instruct_refine", format_instructions=t.format_instructions("refine", structured)
    )
    return [*turn2, {"role": "assistant", "content": critique_reply}, _user(text)]


def shirker_messages(t: InstructTemplates, instruction: str) -> list[Message]:
    """A separate request for a brief, low-effort answer (the shirker ablation)."""
    return [_user(t.render("instruct_shirker", instruction=instruction))]


# --- JSON schemas for constrained decoding -----------------------------------------------


def _string(max_chars: int | None = None) -> dict[str, Any]:
    """A non-empty string, of at most `max_chars` characters when given."""
    bound = {} if max_chars is None else {"maxLength": max_chars}
    return {"type": "string", "minLength": 1, **bound}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def names_schema(key: str, n: int) -> dict[str, Any]:
    """`{key: [name, ...]}` with at most `n` bounded names (topics, query types)."""
    return _object(
        {key: {"type": "array", "items": _string(NAME_MAX_CHARS), "minItems": 1, "maxItems": n}}
    )


def skills_schema(n: int) -> dict[str, Any]:
    """`{"skills": [{name, definition, example}, ...]}` with bounded strings."""
    item = _object(
        {
            "name": _string(NAME_MAX_CHARS),
            "definition": _string(DEFINITION_MAX_CHARS),
            "example": _string(DEFINITION_MAX_CHARS),
        }
    )
    return _object({"skills": {"type": "array", "items": item, "minItems": 1, "maxItems": n}})


def pair_schema() -> dict[str, Any]:
    """`{"instruction": ..., "response": ...}`, both free text (bounded by --max-tokens)."""
    return _object({"instruction": _string(), "response": _string()})


def refine_schema() -> dict[str, Any]:
    """`{"response": ...}`, free text (bounded by --max-tokens)."""
    return _object({"response": _string()})
