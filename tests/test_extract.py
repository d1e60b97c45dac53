from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skillmix.protocol.extract import Extracted, extract_answer

TEXT = "The hive was a fortress of gold."


@pytest.mark.parametrize(
    "reply",
    [
        f"Answer: {TEXT}\nExplanation: a metaphor.",
        f"answer: {TEXT}\n\nexplanation: a metaphor.",
        f"**Answer:** {TEXT}\n\n**Explanation:** a metaphor.",
        f"**Answer**: {TEXT}\n**Explanation**: a metaphor.",
        f"*Answer:* {TEXT}\n*Explanation:* a metaphor.",
        f"ANSWER - {TEXT}\nEXPLANATION - a metaphor.",
        f"### Answer\n{TEXT}\n\n### Explanation\na metaphor.",
        f"Improved answer: {TEXT}\nExplanation: a metaphor.",
        f"Revised Answer: {TEXT}\nExplanation: a metaphor.",
        f"Final answer (revised): {TEXT}\nExplanation of the skills: a metaphor.",
        f"Sure! Answer: {TEXT}\nExplanation: a metaphor.",
        f"Explanation: a metaphor.\nAnswer: {TEXT}",
        f"Answer:\n```\n{TEXT}\n```\nExplanation: a metaphor.",
        f'Answer: "{TEXT}"\nExplanation: a metaphor.',
        f"Answer: “{TEXT}”\nExplanation: a metaphor.",
        f"Answer: '{TEXT}'\nExplanation: a metaphor.",
        f"Answer: _{TEXT}_\nExplanation: a metaphor.",
        f"Answer:   {TEXT}   \n\nExplanation:   a metaphor.   \n\n",
    ],
)
def test_marked_answer_and_explanation(reply: str) -> None:
    assert extract_answer(reply) == Extracted(TEXT, "a metaphor.", marker_found=True)


@pytest.mark.parametrize(
    "reply",
    [
        TEXT,
        f"  {TEXT}  \n\n",
        f"Here is the improved text:\n\n{TEXT}",
        f"Sure! Here is the revised version:\n{TEXT}",
        f'"{TEXT}"',
        f"```text\n{TEXT}\n```",
        f"Here is the improved text:\n\n“{TEXT}”",
    ],
)
def test_unmarked_answer(reply: str) -> None:
    assert extract_answer(reply) == Extracted(TEXT, None, marker_found=False)


def test_unmarked_answer_with_explanation() -> None:
    reply = f"Here is the improved text:\n\n{TEXT}\n\nExplanation: a metaphor."
    assert extract_answer(reply) == Extracted(TEXT, "a metaphor.", marker_found=False)


def test_preamble_that_ends_with_an_answer_marker() -> None:
    reply = f"Sure! Here's my revised answer:\n{TEXT}"
    assert extract_answer(reply) == Extracted(TEXT, None, marker_found=True)


def test_first_line_that_is_part_of_the_text_is_kept() -> None:
    reply = "Sure enough, the bees swarmed.\nThe keeper smiled."
    assert extract_answer(reply).answer == reply


def test_last_answer_section_wins() -> None:
    reply = (
        "Answer: The first try.\nExplanation: first.\n\n"
        f"Improved answer: {TEXT}\nExplanation: second."
    )
    assert extract_answer(reply) == Extracted(TEXT, "second.", marker_found=True)


def test_empty_restated_answer_falls_back_to_the_previous_one() -> None:
    reply = f"Answer: {TEXT}\nExplanation: first.\nAnswer:\nExplanation: second."
    assert extract_answer(reply).answer == TEXT


def test_quotes_inside_the_answer_are_kept() -> None:
    reply = 'Answer: "Stop!" she said. "Go."'
    assert extract_answer(reply).answer == '"Stop!" she said. "Go."'
    assert extract_answer("Answer: 'The bee's knees.'").answer == "The bee's knees."


def test_answer_word_in_prose_is_not_a_marker() -> None:
    reply = "Answer the call, said the queen bee.\nThe hive obeyed."
    assert extract_answer(reply) == Extracted(reply, None, marker_found=False)


@pytest.mark.parametrize("reply", ["", "   ", "\n\n"])
def test_empty_reply(reply: str) -> None:
    assert extract_answer(reply) == Extracted("", None, marker_found=False)


def test_marker_without_text() -> None:
    assert extract_answer("Answer:") == Extracted("", None, marker_found=True)


@given(st.text(max_size=300))
def test_never_raises_and_answer_comes_from_the_reply(reply: str) -> None:
    result = extract_answer(reply)
    assert isinstance(result.answer, str)
    assert result.answer == result.answer.strip()
    assert result.answer in reply
    assert result.explanation is None or result.explanation in reply


_plain = st.text(alphabet="abcdefghij klmnop.,;", min_size=1, max_size=60).filter(
    lambda s: any(c.isalpha() for c in s)
)


@given(_plain, _plain, st.sampled_from(["Answer:", "**Answer:**", "ANSWER -", "Revised answer:"]))
def test_marked_sections_round_trip(answer: str, explanation: str, marker: str) -> None:
    reply = f"{marker} {answer}\nExplanation: {explanation}\n"
    result = extract_answer(reply)
    assert result == Extracted(answer.strip(), explanation.strip(), marker_found=True)


def test_explanation_on_the_same_line_as_the_answer():
    got = extract_answer("Answer: The hive hums. Explanation: it personifies the hive.")
    assert got.answer == "The hive hums."
    assert got.explanation == "it personifies the hive."
    bold = extract_answer("**Answer:** Bees dance. **Explanation:** a metaphor")
    assert bold.answer == "Bees dance." and bold.explanation == "a metaphor"
