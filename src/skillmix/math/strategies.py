"""The prompting strategies of `skillmix math eval`: prompts, replies and exemplar choice.

Six strategies answer the same test questions (Didolkar et al. 2024; AdaptMI, He et al.
2025):

- `zero-shot`: the question alone.
- `fixed-shot`: the same k solved train examples before every question.
- `random-shot`: k train examples drawn per question.
- `skill`: the student picks, from the skill list, the skill the question needs, and is
  shown k train examples labelled with it.
- `adaptmi`: the zero-shot answer is judged by a verifier that never sees the gold
  answer; a question judged difficult is asked again with the `skill` strategy's
  examples, an easy one keeps its first answer.
- `adaptmi+`: as `adaptmi`, but for a difficult question a teacher names the skills the
  student's first answer is missing, and the examples are chosen for those skills.

Everything here is pure: the messages each step sends, how a reply is read, and which
train examples a question gets (seeded, so every strategy that asks for the same skill's
examples for the same question gets the same ones, and the same prompt: its answer is
then shared through the response cache). The pipeline that runs them is `math.eval`.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from skillmix.errors import InputError
from skillmix.math.problems import MathProblem
from skillmix.models.base import Message
from skillmix.runtime.pool import derive_seed

STRATEGIES = ("zero-shot", "fixed-shot", "random-shot", "skill", "adaptmi", "adaptmi+")
# Strategies that show train examples (and so need a pool free of test questions).
WITH_EXAMPLES = frozenset(STRATEGIES) - {"zero-shot"}
# Strategies that judge the first answer's difficulty, and the one that asks a teacher.
ADAPTIVE = frozenset({"adaptmi", "adaptmi+"})
PROMPTS_VERSION = "math-eval-v1"

Strategy = Literal["zero-shot", "fixed-shot", "random-shot", "skill", "adaptmi", "adaptmi+"]


def parse_strategies(values: Sequence[str]) -> tuple[str, ...]:
    """`--strategy` values (repeatable, comma lists, `all`) as strategies in canonical order.

    Raises InputError naming an unknown strategy and the known ones.
    """
    chosen: set[str] = set()
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                continue
            if name == "all":
                chosen.update(STRATEGIES)
            elif name in STRATEGIES:
                chosen.add(name)
            else:
                raise InputError(
                    f"unknown strategy {part.strip()!r}",
                    hint=f"use one or more of {', '.join(STRATEGIES)}, or all",
                )
    if not chosen:
        raise InputError("no strategy given", hint=f"use --strategy with {', '.join(STRATEGIES)}")
    return tuple(s for s in STRATEGIES if s in chosen)


# --- the verifier -----------------------------------------------------------------------------

VerifierKind = Literal["judge", "consistency"]


@dataclass(frozen=True)
class VerifierSpec:
    """How AdaptMI decides that a question was difficult for the student.

    `judge`: a model rates the student's solution from 0 to 10; `consistency`: the share
    of `samples` zero-shot answers that agree with the most common one. Either way the
    score lies in [0, 1] and the question is difficult when it is below `threshold`.
    """

    kind: VerifierKind
    model: str | None = None  # the judge's model spec
    samples: int = 5
    threshold: float = 0.6

    def describe(self) -> str:
        if self.kind == "judge":
            return f"judge {self.model} (difficult below {self.threshold:g} of 10/10)"
        return (
            f"consistency of {self.samples} samples (difficult below {self.threshold:g} agreeing)"
        )


def parse_verifier(text: str, *, samples: int = 5, threshold: float = 0.6) -> VerifierSpec:
    """`--verifier judge:MODEL` or `--verifier consistency` as a VerifierSpec."""
    value = text.strip()
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"--difficulty-threshold must be in (0, 1], got {threshold}")
    if value.lower() == "consistency":
        if samples < 2:
            raise InputError(
                f"--samples must be at least 2 for the consistency verifier, got {samples}"
            )
        return VerifierSpec("consistency", None, samples, threshold)
    kind, _, model = value.partition(":")
    if kind.lower() == "judge" and model.strip():
        return VerifierSpec("judge", model.strip(), samples, threshold)
    raise InputError(
        f"unknown verifier {text!r}",
        hint="use judge:MODEL (a model rates each answer, e.g. judge:openai:gpt-4o-mini) or "
        "consistency (agreement among --samples answers)",
    )


# --- what the verifier and the teacher may see ------------------------------------------------


@dataclass(frozen=True)
class BlindQuestion:
    """A test question as the verifier and the teacher see it: its text, never its answer.

    The verifier's and the teacher's prompts are built from this type alone, so neither
    the gold answer nor the worked solution can reach them; `blind` is the one way to make
    one from a problem.
    """

    id: str
    question: str


def blind(problem: MathProblem) -> BlindQuestion:
    """The question without its gold answer, solution, hints or annotations."""
    return BlindQuestion(problem.id, problem.question)


# --- prompts ----------------------------------------------------------------------------------

SOLVE_INSTRUCTION = (
    "Solve the math problem below. Work through it step by step, then write the final "
    "answer on the last line as \\boxed{ANSWER}."
)


def exemplar_text(problem: MathProblem, number: int) -> str:
    """One solved train example as the student sees it: question, solution, final answer."""
    parts = [f"Example {number}", f"Problem: {problem.question.strip()}"]
    if problem.solution and problem.solution.strip():
        parts.append(f"Solution: {problem.solution.strip()}")
    parts.append(f"Final answer: \\boxed{{{problem.answer.strip()}}}")
    return "\n".join(parts)


def solve_messages(
    question: str, exemplars: Sequence[MathProblem] = (), skills: Sequence[str] = ()
) -> list[Message]:
    """The student's prompt: the instruction, any solved examples, then the question.

    `skills` names the skills the examples were chosen for (shown above them); examples
    chosen without a skill (fixed and random shots) get a plain heading. Two strategies
    that choose the same examples for the same reason send the same prompt.
    """
    blocks = [SOLVE_INSTRUCTION]
    if exemplars:
        if skills:
            heading = "Solved examples that use the skill" + ("s" if len(skills) > 1 else "")
            blocks.append(f"{heading}: {'; '.join(skills)}.")
        else:
            blocks.append("Solved examples:")
        blocks.extend(exemplar_text(p, i + 1) for i, p in enumerate(exemplars))
        blocks.append("Now the problem to solve.")
    blocks.append(f"Problem: {question.strip()}")
    return [{"role": "user", "content": "\n\n".join(blocks)}]


def numbered_skills(skills: Sequence[str]) -> str:
    return "\n".join(f"{i + 1}. {name}" for i, name in enumerate(skills))


def skill_choice_messages(question: str, skills: Sequence[str]) -> list[Message]:
    """Ask the student which one skill of the list the question needs (not to solve it)."""
    text = (
        "Here is a list of mathematical skills:\n"
        f"{numbered_skills(skills)}\n\n"
        "Which one skill from this list is most needed to solve the problem below? Do not "
        "solve the problem. Answer with one line: Skill: <number>. <name>\n\n"
        f"Problem: {question.strip()}"
    )
    return [{"role": "user", "content": text}]


JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 10}},
    "required": ["score"],
    "additionalProperties": False,
}


def judge_messages(question: BlindQuestion, attempt: str, *, structured: bool) -> list[Message]:
    """Ask a judge how likely the student's solution is right. It is not given the answer."""
    if not isinstance(question, BlindQuestion):  # the type is the guarantee; keep it one
        raise TypeError("the verifier is given a BlindQuestion, never a problem with its answer")
    reply = (
        'Reply with JSON: {"score": N}.' if structured else "End your reply with one line: Score: N"
    )
    text = (
        "A student solved the math problem below. You are not given the correct answer. "
        "Check the student's reasoning step by step and rate how likely the final answer is "
        f"correct, as an integer N from 0 (surely wrong) to 10 (surely right). {reply}\n\n"
        f"Problem: {question.question.strip()}\n\n"
        f"Student's solution:\n{attempt.strip()}"
    )
    return [{"role": "user", "content": text}]


def teacher_messages(question: BlindQuestion, attempt: str, skills: Sequence[str]) -> list[Message]:
    """Ask a teacher which skills of the list the student's answer is missing (AdaptMI+).

    Like the verifier, the teacher sees the question and the student's answer only.
    """
    if not isinstance(question, BlindQuestion):
        raise TypeError("the teacher is given a BlindQuestion, never a problem with its answer")
    text = (
        "A student attempted the math problem below; it may be wrong. Here is a list of "
        "mathematical skills:\n"
        f"{numbered_skills(skills)}\n\n"
        "Which skills from this list does the student's solution lack or misapply? Name at "
        "most three, the most important first, one per line as: Skill: <number>. <name>\n"
        "Do not solve the problem.\n\n"
        f"Problem: {question.question.strip()}\n\n"
        f"Student's solution:\n{attempt.strip()}"
    )
    return [{"role": "user", "content": text}]


# --- reading replies --------------------------------------------------------------------------


@dataclass(frozen=True)
class SkillChoice:
    """The skill a reply named (None: none of the list) and how it was found."""

    skill: str | None
    method: str  # "number", "name", "words" or "unparsed"


_NON_WORD = re.compile(r"[^a-z0-9]+")
# "Skill: 3. name", "- skill #3: name", "1. Skill: name" (a list marker before it is allowed).
_SKILL_LINE = re.compile(
    r"^[\s\-*#>]*(?:\d+[.)]\s+)?skill\s*[:\-#]\s*(?:no\.?\s*|#\s*)?(?:(\d+)(?:[.):\-]|\s|$))?\s*(.*)$",
    re.I,
)
# A reply that starts with a skill's number: "3", "3.", "#3:", "(3)"; not "18 * 18 = 320".
_LEADING_NUMBER = re.compile(r"^\s*(?:#|no\.?\s*|\()?(\d+)\s*(?:[.):](?!\d)|$)")


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def _key(text: str) -> str:
    """Text for matching names: lower case, words only, plurals as singulars."""
    return " ".join(_singular(w) for w in _NON_WORD.sub(" ", text.casefold()).split())


def _words(text: str) -> set[str]:
    return set(_key(text).split())


def _by_number(value: str | None, skills: Sequence[str]) -> str | None:
    if value is None:
        return None
    index = int(value) - 1
    return skills[index] if 0 <= index < len(skills) else None


def _by_name(text: str, skills: Sequence[str]) -> str | None:
    """The skill whose whole name appears earliest in `text` (the longest name at a tie)."""
    haystack = f" {_key(text)} "
    found: list[tuple[int, int, str]] = []
    for skill in skills:
        needle = _key(skill)
        if needle:
            at = haystack.find(f" {needle} ")
            if at >= 0:
                found.append((at, -len(needle), skill))
    return min(found)[2] if found else None


def _by_words(text: str, skills: Sequence[str], threshold: float = 0.5) -> str | None:
    """The skill sharing the largest share of words with `text` (Jaccard >= threshold)."""
    words = _words(text)
    if not words:
        return None
    best: tuple[float, str] | None = None
    for skill in skills:
        theirs = _words(skill)
        if not theirs:
            continue
        score = len(words & theirs) / len(words | theirs)
        if score >= threshold and (best is None or score > best[0]):
            best = (score, skill)
    return best[1] if best else None


def parse_skill_choice(text: str, skills: Sequence[str]) -> SkillChoice:
    """The one skill of `skills` a reply names.

    Read in order of confidence: a "Skill: N" line's number (checked against the name
    after it when there is one), a whole skill name anywhere in the reply (the earliest),
    a bare leading number, then the "Skill:" line or first line matching a name's words.
    Small models answer in bold, with or without the number, with a different case or
    plural: all of these are read. A number that contradicts the name after it yields to
    the name.
    """
    if not skills:
        return SkillChoice(None, "unparsed")
    plain = text.replace("*", " ").replace("`", " ").strip()
    line = next(filter(None, map(_SKILL_LINE.match, plain.splitlines())), None)
    if line is not None:
        named = _by_name(line.group(2), skills) if line.group(2) else None
        numbered = _by_number(line.group(1), skills)
        if named is not None:
            return SkillChoice(named, "name")
        if numbered is not None:
            return SkillChoice(numbered, "number")
    named = _by_name(plain, skills)
    if named is not None:
        return SkillChoice(named, "name")
    leading = _LEADING_NUMBER.match(plain)
    if leading is not None and (numbered := _by_number(leading.group(1), skills)) is not None:
        return SkillChoice(numbered, "number")
    first = line.group(2) if line is not None else (plain.splitlines() or [""])[0]
    worded = _by_words(first, skills)
    if worded is not None:
        return SkillChoice(worded, "words")
    return SkillChoice(None, "unparsed")


def _names_in(text: str, skills: Sequence[str]) -> list[str]:
    """Every skill whose whole name appears in `text`, in order of appearance."""
    haystack = f" {_key(text)} "
    positions = [
        (at, skill)
        for skill in skills
        if _key(skill) and (at := haystack.find(f" {_key(skill)} ")) >= 0
    ]
    return [skill for _, skill in sorted(positions)]


def parse_missing_skills(text: str, skills: Sequence[str], limit: int = 3) -> list[str]:
    """The skills (at most `limit`, in the order named, without repeats) a teacher named.

    A "Skill: N. name" line or a numbered line names one skill (read as
    `parse_skill_choice` reads a reply); any other line names every skill whose whole
    name it contains.
    """
    found: list[str] = []
    for line in text.replace("*", " ").splitlines():
        if _SKILL_LINE.match(line) or _LEADING_NUMBER.match(line):
            choice = parse_skill_choice(line, skills).skill
            named = [choice] if choice is not None else []
        else:
            named = _names_in(line, skills)
        for skill in named:
            if skill not in found:
                found.append(skill)
    return found[:limit]


_SCORE_LINE = re.compile(r"score\s*[:=]?\s*\**\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?", re.I)
_OUT_OF_TEN = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*10\b")


def parse_judge_score(text: str) -> float | None:
    """A judge's 0-10 rating as a share in [0, 1], or None when the reply has none.

    Reads JSON `{"score": N}`, the last "Score: N" line, or the last "N/10"; a value
    outside 0..10 is not a rating.
    """
    stripped = text.strip()
    value: float | None = None
    try:
        data = json.loads(stripped)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("score"), (int, float)):
        value = float(data["score"])
    else:
        matches = _SCORE_LINE.findall(stripped) or _OUT_OF_TEN.findall(stripped)
        if matches:
            value = float(matches[-1])
    if value is None or not 0.0 <= value <= 10.0:
        return None
    return value / 10.0


# --- agreement among samples ------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    """How far a student's samples agree: the share that gives the most common answer."""

    share: float
    majority: str | None  # that answer (None when no sample had one)
    answers: tuple[str | None, ...]  # each sample's extracted answer


def agreement(
    answers: Sequence[str | None], same: Callable[[str, str], bool] | None = None
) -> Agreement:
    """The majority share of `answers` (None: a sample without a final answer, which
    agrees with nothing but counts in the total). `same` decides that two answers are
    equal (default: equal after trimming spaces); the first answer of each group names it.
    """
    equal = same or (lambda a, b: a.replace(" ", "") == b.replace(" ", ""))
    groups: list[list[str]] = []
    for answer in answers:
        if answer is None or not answer.strip():
            continue
        for group in groups:
            if equal(group[0], answer):
                group.append(answer)
                break
        else:
            groups.append([answer])
    if not answers:
        return Agreement(0.0, None, ())
    best = max(groups, key=len, default=None)
    share = len(best) / len(answers) if best else 0.0
    return Agreement(share, best[0] if best else None, tuple(answers))


# --- which train examples a question gets -----------------------------------------------------


def fixed_shots(pool: Sequence[MathProblem], k: int, seed: int) -> tuple[str, ...]:
    """The k train examples every question gets under `fixed-shot` (seeded)."""
    ids = sorted(p.id for p in pool)
    rng = random.Random(derive_seed(seed, "fixed-shot"))
    return tuple(rng.sample(ids, min(k, len(ids))))


def random_shots(
    pool: Sequence[MathProblem], k: int, seed: int, question_id: str
) -> tuple[str, ...]:
    """The k train examples of one question under `random-shot` (seeded by the question)."""
    ids = sorted(p.id for p in pool)
    rng = random.Random(derive_seed(seed, "random-shot", question_id))
    return tuple(rng.sample(ids, min(k, len(ids))))


def skill_shots(
    by_skill: Mapping[str, Sequence[str]],
    skills: Sequence[str],
    k: int,
    seed: int,
    question_id: str,
) -> tuple[str, ...]:
    """Up to k train examples labelled with `skills`, taken in turn from each skill.

    Each skill's examples are shuffled by (seed, skill, question), so the same skill gives
    the same examples to the same question whichever strategy asks: `skill`, `adaptmi`'s
    second pass and `adaptmi+` naming that one skill send one prompt. An example labelled
    with two of the skills is shown once.
    """
    queues: list[list[str]] = []
    for skill in skills:
        ids = sorted(by_skill.get(skill, ()))
        random.Random(derive_seed(seed, "skill-shots", skill, question_id)).shuffle(ids)
        queues.append(ids)
    chosen: list[str] = []
    while len(chosen) < k and any(queues):
        for queue in queues:
            while queue and queue[0] in chosen:
                queue.pop(0)
            if queue and len(chosen) < k:
                chosen.append(queue.pop(0))
    return tuple(chosen)


def examples_by_skill(
    pool: Sequence[MathProblem], labels: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Skill -> the ids of the train problems labelled with it, in pool order."""
    out: dict[str, list[str]] = {}
    for problem in pool:
        for skill in labels.get(problem.id, ()):
            out.setdefault(skill, []).append(problem.id)
    return out
