"""The messages of each step, rendered from a template set."""

from __future__ import annotations

from collections.abc import Sequence

from skillmix.catalog.model import Skill, Topic
from skillmix.prompts._sets import FORMAT_TEMPLATES, JudgeFormat, TemplateSet
from skillmix.prompts.rubric import (
    Criterion,
    max_sentences,
    number_words,
    sentence_limit_words,
)

Message = dict[str, str]


def _joined(names: Sequence[str]) -> str:
    """`a, b and c`."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _skill_lines(templates: TemplateSet, template: str, skills: Sequence[Skill]) -> str:
    return "\n".join(
        templates.render_skill(template, s, number) for number, s in enumerate(skills, start=1)
    )


def _rubric_lines(templates: TemplateSet, shown: Sequence[Criterion]) -> str:
    """`$rubric`: one line per criterion, as `rubric_line.txt` lays it out ("1. label")."""
    if not templates.has("rubric_line"):
        return "\n".join(f"{i}. {c.label}" for i, c in enumerate(shown, start=1))
    return "\n".join(
        templates.render("rubric_line", number=i, label=c.label)
        for i, c in enumerate(shown, start=1)
    )


def task_fields(
    templates: TemplateSet,
    skills: Sequence[Skill],
    topic: Topic,
    *,
    tell_not_to_name: bool = False,
) -> dict[str, object]:
    """The fields that describe the task, shared by the student's turns and the judge.

    `skills` are in the order the prompt lists them.
    """
    k = len(skills)
    limit = max_sentences(k)
    names = [s.name for s in skills]
    fields: dict[str, object] = {
        "topic": topic.name,
        "k": k,
        "k_words": number_words(k),
        "skill_names": _joined(names),
        "skill_list": ", ".join(names),
        "skill_block": _skill_lines(templates, "skill_block", skills),
        "max_sentences": limit,
        "sentence_word": "sentence" if limit == 1 else "sentences",
        "sentence_limit": sentence_limit_words(k),
        "naming_instruction": (templates.render("naming_instruction") if tell_not_to_name else ""),
    }
    for field, template in (
        ("skill_definitions", "skill_definition"),
        ("skill_entries", "skill_entry"),
    ):
        if templates.has(template):
            fields[field] = _skill_lines(templates, template, skills)
    return fields


def student_turns(
    templates: TemplateSet,
    skills: Sequence[Skill],
    topic: Topic,
    *,
    tell_not_to_name: bool = False,
) -> list[str]:
    """The text of each of the student's user turns, in order (the answer of the last is
    graded)."""
    fields = task_fields(templates, skills, topic, tell_not_to_name=tell_not_to_name)
    return [templates.render(name, **fields) for name in templates.student_turns]


def generation_turn1(
    templates: TemplateSet, skills: Sequence[Skill], topic: Topic, *, tell_not_to_name: bool = False
) -> list[Message]:
    """The first student turn as a conversation."""
    first = student_turns(templates, skills, topic, tell_not_to_name=tell_not_to_name)[0]
    return [{"role": "user", "content": first}]


def generation_turn2(
    templates: TemplateSet,
    skills: Sequence[Skill],
    topic: Topic,
    turn1: list[Message],
    reply: str,
    *,
    tell_not_to_name: bool = False,
) -> list[Message]:
    """The conversation after the student's first reply, ending with the second turn."""
    second = student_turns(templates, skills, topic, tell_not_to_name=tell_not_to_name)[1]
    return [*turn1, {"role": "assistant", "content": reply}, {"role": "user", "content": second}]


def grading(
    templates: TemplateSet,
    skills: Sequence[Skill],
    topic: Topic,
    answer: str,
    shown: Sequence[Criterion],
    judge_format: JudgeFormat,
    *,
    tell_not_to_name: bool = False,
) -> list[Message]:
    """The judge's prompt: the task as the student saw it, the answer, the `shown`
    criteria and how to write the verdict (`json`, `lines` or `table`).

    A set whose `judge_skill_order` is alphabetical lists the skills to the judge by name.
    """
    if templates.judge_skill_order == "alphabetical":
        skills = sorted(skills, key=lambda s: s.name.casefold())
    fields = task_fields(templates, skills, topic, tell_not_to_name=tell_not_to_name)
    template = FORMAT_TEMPLATES[judge_format]
    if templates.has(template):
        fields["format_instructions"] = templates.render(
            template,
            keys=", ".join(f'"{c.key}"' for c in shown),
            example_lines="\n".join(f"{c.label}: <1 or 0>" for c in shown),
        )
    text = templates.render(
        "grade",
        answer=answer,
        rubric=_rubric_lines(templates, shown),
        rubric_items=", ".join(c.label for c in shown),
        **fields,
    )
    return [{"role": "user", "content": text}]


def tagging(
    templates: TemplateSet, passage: str, skills: list[Skill], criteria: list[Criterion]
) -> list[Message]:
    """Ask a tagger which of `skills` a corpus passage uses (one JSON 0/1 field per skill)."""
    fmt = templates.render("format_json", keys=", ".join(f'"{c.key}"' for c in criteria))
    names = [s.name for s in skills]
    text = templates.render(
        "tag",
        passage=passage,
        format_instructions=fmt,
        skill_names=_joined(names),
        skill_block=_skill_lines(templates, "skill_block", skills),
    )
    return [{"role": "user", "content": text}]
