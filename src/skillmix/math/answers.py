"""Final answers: find one in a model's response, and check it against the gold answer.

`extract_final_answer` takes the last `\\boxed{...}` (nested braces allowed), else the
last GSM8K `#### 42`, else the last "The (final) answer is ..." / "Answer: ...".

`check_answer` compares with math-verify (PyPI `math-verify`, imported when first needed),
which knows that `\\frac{1}{2}`, `0.5` and `1/2` are equal, as are `2\\sqrt{2}` and
`\\sqrt{8}`, `{1,2}` and `{2,1}`, `1,000` and `1000`, `x=3` and `3`. Only when math-verify
cannot parse an answer (or the gold answer is words, like "No such sequence exists") are
the two compared as normalised text, and the result says so. Every check records what was
extracted and, for a mismatch, why.
"""

from __future__ import annotations

import multiprocessing
import re
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from skillmix.errors import SkillmixError

TIMEOUT_SECONDS = 5  # for each parse and each comparison math-verify makes
_BARE_ANSWER_MAX = 60  # a response this short, on one line, is taken as the answer itself


@dataclass(frozen=True)
class AnswerCheck:
    """The verdict on one response: correct or not, what was taken from it, and why not."""

    correct: bool
    extracted: str | None  # what was taken from the response as its final answer
    reason: str  # "" when correct; else why: "no final answer found", "not equivalent: ..."
    method: str = "math-verify"  # "math-verify" | "text" (fallback) | "none" (nothing found)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- extraction --------------------------------------------------------------------------

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_HASHES = re.compile(r"####[ \t]*([^\n]*)")
_ANSWER_IS = re.compile(
    r"(?:final answer|the answer)\s*(?:is|:)\s*(?:[:=]\s*)?|\banswer\s*:\s*", re.IGNORECASE
)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n")


def extract_final_answer(text: str) -> str | None:
    """The final answer stated in `text`, or None when it states none.

    Tried in order, the last occurrence of each winning: `\\boxed{...}` / `\\fbox{...}`
    (its content, nested braces kept; an unclosed box is skipped), a GSM8K `#### ...`
    line, then "final answer is", "the answer is" or "Answer:" followed by the rest of
    the sentence. Surrounding `$...$`, `\\(...\\)`, bold markers and a final period are
    removed.
    """
    for candidate in (_last_boxed(text), _last_hashes(text), _last_answer_phrase(text)):
        if candidate is not None:
            cleaned = _clean(candidate)
            if cleaned:
                return cleaned
    return None


def boxed_contents(text: str) -> list[str]:
    """The content of every closed `\\boxed{...}` / `\\fbox{...}` in `text`, in order."""
    found = []
    for match in _BOXED.finditer(text):
        content = _braced(text, match.end())
        if content is not None:
            found.append(content)
    return found


def _braced(text: str, start: int) -> str | None:
    """The text from `start` to the brace that closes the one just before it, if any."""
    depth, i = 1, start
    while i < len(text):
        char = text[i]
        if char == "\\":  # a backslash escapes the next character: \{ and \} do not count
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:i]
        i += 1
    return None


def _last_boxed(text: str) -> str | None:
    contents = boxed_contents(text)
    return contents[-1] if contents else None


def _last_hashes(text: str) -> str | None:
    matches = _HASHES.findall(text)
    return matches[-1] if matches else None


def _last_answer_phrase(text: str) -> str | None:
    matches = list(_ANSWER_IS.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :].lstrip()
    for dollars in ("$$", "$"):  # a math span: up to its closing dollars
        if rest.startswith(dollars):
            closing = rest.find(dollars, len(dollars))
            if closing > 0:
                return rest[: closing + len(dollars)]
    end = _SENTENCE_END.search(rest)
    return rest[: end.start()] if end else rest


_WRAPPERS: Sequence[tuple[str, str]] = (
    ("$$", "$$"),
    ("$", "$"),
    ("\\(", "\\)"),
    ("\\[", "\\]"),
    ("\\textbf{", "}"),
)


def _clean(answer: str) -> str:
    answer = answer.strip()
    changed = True
    while changed:
        changed = False
        answer = answer.strip().removesuffix(".").strip().strip("*").strip()
        for left, right in _WRAPPERS:
            fits = len(answer) >= len(left) + len(right)
            if fits and answer.startswith(left) and answer.endswith(right):
                answer, changed = answer[len(left) : len(answer) - len(right)], True
                break
    return answer.strip()


# --- checking ----------------------------------------------------------------------------


def check_answer(response: str, gold: str) -> AnswerCheck:
    """Whether `response` states the `gold` final answer.

    The response's answer is `extract_final_answer(response)`; a response that is a single
    short line with no marker is taken as the answer itself ("0.5", "x = 3"). The two are
    compared with math-verify; when it cannot parse one of them, or the gold answer is
    prose, they are compared as normalised text (case, spaces, `$`, thousands separators
    and `\\text{}` ignored) and `method` is "text".
    """
    extracted = extract_final_answer(response)
    if extracted is None:
        bare = _clean(response)
        if bare and "\n" not in bare and len(bare) <= _BARE_ANSWER_MAX:
            extracted = bare if is_prose(gold) or not is_prose(bare) else None
    if extracted is None:
        return AnswerCheck(False, None, "no final answer found", "none")
    gold_answer = extract_final_answer(gold) if _BOXED.search(gold) else None
    gold_answer = gold_answer or _clean(gold)
    if not gold_answer:
        return AnswerCheck(False, extracted, "the gold answer is empty", "none")
    if is_prose(gold_answer):
        return _text_check(extracted, gold_answer, "the gold answer is text")
    compared = _compare(gold_answer, extracted)
    if compared is None:
        return _text_check(extracted, gold_answer, "math-verify did not finish in time")
    gold_parsed, answer_parsed, equal = compared
    if not gold_parsed:
        return _text_check(extracted, gold_answer, f"could not parse gold '{gold_answer}'")
    if not answer_parsed:
        return _text_check(extracted, gold_answer, f"could not parse answer '{extracted}'")
    if equal:
        return AnswerCheck(True, extracted, "")
    return AnswerCheck(False, extracted, f"not equivalent: {extracted} vs {gold_answer}")


def _text_check(extracted: str, gold: str, why: str) -> AnswerCheck:
    if normalize_text_answer(extracted) == normalize_text_answer(gold):
        return AnswerCheck(True, extracted, "", "text")
    return AnswerCheck(
        False, extracted, f"{why}; compared as text: '{extracted}' vs '{gold}' differ", "text"
    )


_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def normalize_text_answer(answer: str) -> str:
    """An answer as text for a last-resort comparison: `\\text{}`, `$`, spaces, case,
    thousands separators, `\\left`/`\\right` and a final period ignored."""
    text = _TEXT_WRAPPER.sub(r"\1", answer)
    text = text.replace("$", "").replace("\\left", "").replace("\\right", "")
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = _THOUSANDS.sub("", text)
    return "".join(text.casefold().split()).removesuffix(".")


# Words that are mathematics, not prose, when they appear without a backslash.
_MATH_WORDS = frozenset(
    {
        *("sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh"),
        *("cosh", "tanh", "log", "ln", "lg", "exp", "sqrt", "max", "min", "gcd", "lcm"),
        *("mod", "det", "pi", "inf", "infty", "dx", "dy", "dt"),
    }
)
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}(?![A-Za-z])")


def is_prose(answer: str) -> bool:
    """Whether an answer is words ("No", "It is not possible"), not a formula."""
    without_text = _TEXT_WRAPPER.sub(r" \1 ", answer)
    return any(w.casefold() not in _MATH_WORDS for w in _WORD.findall(without_text))


# --- math-verify, with a timeout in any thread -------------------------------------------
#
# math-verify times out a parse or a comparison with signal.alarm, which only the main
# thread may use (the worker pool's event loop runs there). Another thread cannot stop a
# runaway sympy computation (9^{9^{9^9}}) at all, so from other threads the comparison runs
# in a child process, whose main thread times itself out; a child that still does not
# answer is killed and replaced.


def _math_verify() -> Any:
    try:
        import math_verify
    except ImportError:
        raise SkillmixError(
            "checking math answers needs math-verify, which is not installed",
            hint="pip install 'math-verify>=0.7'",
        ) from None
    return math_verify


Comparison = tuple[bool, bool, bool]  # (gold parsed, answer parsed, equivalent)


def _compare(gold: str, answer: str) -> Comparison | None:
    """math-verify's verdict on two answers; None when it did not finish in time."""
    _math_verify()  # a missing package is the user's error, raised here
    if threading.current_thread() is threading.main_thread():
        return compare_in_main_thread(gold, answer, TIMEOUT_SECONDS)
    return _ISOLATED.compare(gold, answer, TIMEOUT_SECONDS)


def compare_in_main_thread(gold: str, answer: str, timeout: int) -> Comparison:
    """Parse both answers and compare them; each step is stopped after `timeout` seconds
    (math-verify then reports "not parsed" or "not equal"). Main thread only."""
    gold_parsed = _parse(gold, timeout)
    if not gold_parsed:
        return False, False, False
    answer_parsed = _parse(answer, timeout)
    if not answer_parsed:
        return True, False, False
    return True, True, _verify(gold_parsed, answer_parsed, timeout)


def _parse(answer: str, timeout: int) -> list[Any]:
    math_verify = _math_verify()
    try:
        parsed = math_verify.parse(f"\\boxed{{{answer}}}", parsing_timeout=timeout)
    except Exception:  # a parser failure (or timeout) is "cannot parse", not a crash
        return []
    # math-verify returns [sympy object, string]; strings alone mean it found no math.
    parsed = list(parsed or [])
    return parsed if any(not isinstance(item, str) for item in parsed) else []


def _verify(gold: list[Any], answer: list[Any], timeout: int) -> bool:
    math_verify = _math_verify()
    try:
        return bool(math_verify.verify(gold, answer, timeout_seconds=timeout))
    except Exception:
        return False


_GRACE_SECONDS = 30  # on top of the child's own timeouts: its start, a loaded machine


class _IsolatedComparer:
    """One child process that runs `compare_in_main_thread` for the other threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None

    def compare(self, gold: str, answer: str, timeout: int) -> Comparison | None:
        with self._lock:
            connection = self._connect()
            try:
                connection.send((gold, answer, timeout))
                if connection.poll(3 * timeout + _GRACE_SECONDS):
                    result: Comparison | None = connection.recv()
                    return result
            except (EOFError, OSError):
                pass  # the child died: replace it
            self._stop()
            return None

    def _connect(self) -> Connection:
        if self._process is None or self._connection is None or not self._process.is_alive():
            self._stop()
            context = multiprocessing.get_context("spawn")
            parent, child = context.Pipe()
            process = context.Process(
                target=_serve, args=(child,), name="skillmix-math-verify", daemon=True
            )
            process.start()
            child.close()
            self._process, self._connection = process, parent
        return self._connection

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.join()
        if self._connection is not None:
            self._connection.close()
        self._process = self._connection = None


def _serve(connection: Connection) -> None:
    """The child's loop: (gold, answer, timeout) in, a Comparison (or None) out."""
    while True:
        try:
            gold, answer, timeout = connection.recv()
        except (EOFError, OSError):
            return
        try:
            result: Comparison | None = compare_in_main_thread(gold, answer, timeout)
        except Exception:
            result = None
        connection.send(result)


_ISOLATED = _IsolatedComparer()
