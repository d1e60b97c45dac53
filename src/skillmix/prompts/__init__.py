"""Versioned prompt templates (files under templates/<version>/), rendered with `$name` fields.

Every result records `TemplateSet.version_id`: the version name plus a hash of the files,
so an edited template can never be confused with the published one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

from skillmix.catalog.model import Skill, Topic
from skillmix.protocol.rubric import Criterion, max_sentences

DEFAULT_VERSION = "v1"
TEMPLATE_NAMES = (
    "generate_turn1",
    "generate_turn2",
    "skill_block",
    "grade",
    "format_text",
    "format_json",
)
# Templates of other jobs: not part of an evaluation's version id.
EXTRA_TEMPLATE_NAMES = ("tag",)

Message = dict[str, str]


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class TemplateSet:
    version: str
    texts: dict[str, str]

    @property
    def version_id(self) -> str:
        digest = hashlib.sha256()
        for name in TEMPLATE_NAMES:
            digest.update(name.encode() + b"\0" + self.texts[name].encode() + b"\0")
        return f"{self.version}-{digest.hexdigest()[:8]}"

    def render(self, template: str, /, **fields: object) -> str:
        try:
            return Template(self.texts[template]).substitute(fields).strip()
        except KeyError as err:
            raise TemplateError(f"template {self.version}/{template} needs field {err}") from err


@cache
def load_templates(version: str = DEFAULT_VERSION) -> TemplateSet:
    root = resources.files("skillmix.prompts").joinpath("templates", version)
    if not root.is_dir():
        raise TemplateError(f"unknown template version '{version}'")
    texts = {
        name: root.joinpath(f"{name}.txt").read_text()
        for name in (*TEMPLATE_NAMES, *EXTRA_TEMPLATE_NAMES)
    }
    return TemplateSet(version=version, texts=texts)


def _sentence_word(limit: int) -> str:
    return "sentence" if limit == 1 else "sentences"


def _skill_fields(templates: TemplateSet, skills: list[Skill]) -> dict[str, object]:
    names = [s.name for s in skills]
    joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    block = "\n".join(
        templates.render("skill_block", name=s.name, definition=s.definition, example=s.example)
        for s in skills
    )
    return {"skill_names": joined, "skill_block": block}


def generation_turn1(templates: TemplateSet, skills: list[Skill], topic: Topic) -> list[Message]:
    text = templates.render("generate_turn1", topic=topic.name, **_skill_fields(templates, skills))
    return [{"role": "user", "content": text}]


def generation_turn2(
    templates: TemplateSet, skills: list[Skill], topic: Topic, turn1: list[Message], reply: str
) -> list[Message]:
    limit = max_sentences(len(skills))
    text = templates.render(
        "generate_turn2",
        topic=topic.name,
        max_sentences=limit,
        sentence_word=_sentence_word(limit),
        **_skill_fields(templates, skills),
    )
    return [*turn1, {"role": "assistant", "content": reply}, {"role": "user", "content": text}]


def grading(
    templates: TemplateSet,
    skills: list[Skill],
    topic: Topic,
    answer: str,
    rubric: list[Criterion],
    structured: bool,
) -> list[Message]:
    judged = [c for c in rubric if c.judged]
    limit = max_sentences(len(skills))
    if structured:
        fmt = templates.render("format_json", keys=", ".join(f'"{c.key}"' for c in judged))
    else:
        fmt = templates.render(
            "format_text", example_lines="\n".join(f"{c.label}: <1 or 0>" for c in judged)
        )
    text = templates.render(
        "grade",
        topic=topic.name,
        max_sentences=limit,
        sentence_word=_sentence_word(limit),
        answer=answer,
        rubric="\n".join(f"{i}. {c.label}" for i, c in enumerate(judged, start=1)),
        format_instructions=fmt,
        **_skill_fields(templates, skills),
    )
    return [{"role": "user", "content": text}]


def tagging(
    templates: TemplateSet, passage: str, skills: list[Skill], criteria: list[Criterion]
) -> list[Message]:
    """Ask a tagger which of `skills` a corpus passage uses (one JSON 0/1 field per skill)."""
    fmt = templates.render("format_json", keys=", ".join(f'"{c.key}"' for c in criteria))
    text = templates.render(
        "tag", passage=passage, format_instructions=fmt, **_skill_fields(templates, skills)
    )
    return [{"role": "user", "content": text}]
