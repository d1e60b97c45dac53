"""The messages of the image pipeline: writing a prompt, checking it, asking about an image.

Three conversations, each with its own model role:

- `prompter`: `write_messages` gives the object and the concepts (each as a phrase:
  "red", "three cats", "to the left of a dog"); after a check that failed,
  `retry_messages` continues the same conversation, naming what was missing.
- `checker`: `check_messages` shows the prompt and the yes/no question of each concept;
  the reply is one 0/1 field per concept (the concept's id), read like a judge's verdict.
- `judge`: `question_messages` asks one concept's question about the image; the reply is
  `{"answer": "yes"}` or `{"answer": "no"}` (`YES_NO_SCHEMA`), read by `answers`.

`PROMPTS_VERSION` changes whenever any wording here changes: it is part of the run id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from skillmix.models.base import Message

PROMPTS_VERSION = "conceptmix-v1"
MAX_PROMPT_CHARS = 1000  # what the smallest images API (dall-e-2) takes
WRITE_INSTRUCTION = "Write a prompt for a text-to-image model."
CHECK_INSTRUCTION = "Check a prompt for a text-to-image model."

YES_NO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
    "required": ["answer"],
    "additionalProperties": False,
}


def write_messages(sample: Mapping[str, Any]) -> list[Message]:
    """The prompter's task for a stored sample (`ConceptSample.describe`)."""
    lines = "\n".join(f"- {c['category_name']}: {c['phrase']}" for c in sample["concepts"])
    user = (
        f"{WRITE_INSTRUCTION} The image must show the following, and nothing that "
        "contradicts it:\n\n"
        f"Object: {sample['object']['name']}\n{lines}\n\n"
        "Write one or two natural sentences, as a person would type them, that clearly ask "
        "for every item above. Add no other object, colour or style. Reply with the prompt "
        "only: no title, no quotes, no explanation."
    )
    return [
        {"role": "system", "content": "You write prompts for text-to-image models."},
        {"role": "user", "content": user},
    ]


def retry_messages(
    sample: Mapping[str, Any], history: Sequence[tuple[str, Sequence[str] | None]]
) -> list[Message]:
    """The prompter's conversation after prompts that did not pass the check.

    `history` holds each earlier reply with the phrases its check found missing (None:
    the check could not be read, so nothing was confirmed).
    """
    messages = write_messages(sample)
    for reply, missing in history:
        if missing is None:
            note = "I could not confirm that this prompt asks for every item of the list."
        else:
            note = f"This prompt does not clearly ask for: {'; '.join(missing)}."
        messages += [
            {"role": "assistant", "content": reply},
            {
                "role": "user",
                "content": f"{note} Write a new prompt that clearly asks for every item of "
                "the list. Reply with the prompt only.",
            },
        ]
    return messages


def check_messages(prompt: str, concepts: Sequence[Mapping[str, Any]]) -> list[Message]:
    """The checker's task: which of the sample's concepts does `prompt` ask for?"""
    lines = "\n".join(
        f'- {c["id"]}: {c["category_name"]} "{c["name"]}": {c["question"]}' for c in concepts
    )
    example = ", ".join(f'"{c["id"]}": 1' for c in concepts[:2])
    user = (
        f"{CHECK_INSTRUCTION} Here it is, between the tags:\n\n<prompt>\n{prompt}\n</prompt>\n\n"
        "For each concept below, answer 1 if an image that follows the prompt exactly must "
        "show it (so its question would be answered yes), and 0 if the prompt leaves it "
        "out, leaves it vague or contradicts it.\n\n"
        f"{lines}\n\n"
        "Answer with a JSON object with one field per concept, each 1 or 0, e.g. "
        f"{{{example}}}."
    )
    return [
        {"role": "system", "content": "You check prompts for text-to-image models."},
        {"role": "user", "content": user},
    ]


def question_messages(question: str, *, structured: bool) -> list[Message]:
    """One yes/no question about the image that goes with this request (`images`)."""
    reply = (
        'Reply with JSON: {"answer": "yes"} or {"answer": "no"}.'
        if structured
        else "Answer with one word: yes or no."
    )
    return [
        {
            "role": "system",
            "content": "You answer questions about images. Look at the image carefully and "
            "answer only what it shows.",
        },
        {"role": "user", "content": f"{question}\n{reply}"},
    ]


_LABEL = re.compile(r"^\W*(?:here is (?:a|the|your) )?(?:new |revised )?prompt\W*:\W*", re.I)
_QUOTES = "\"'`“”‘’«»"


def clean_prompt(text: str) -> str:
    """The prompt in a prompter's reply: a leading "Prompt:" label, wrapping quotes and
    Markdown emphasis removed, the first paragraph kept, at most `MAX_PROMPT_CHARS`."""
    text = text.strip()
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if len(paragraphs) > 1 and paragraphs[0].rstrip().endswith(":"):
        paragraphs = paragraphs[1:]  # "Here is a prompt:" on a line of its own
    text = paragraphs[0] if paragraphs else ""
    text = _LABEL.sub("", text)
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = " ".join(text.split())
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text[:MAX_PROMPT_CHARS].strip()
