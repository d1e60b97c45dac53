"""Final answers: extraction from responses, and equivalence through math-verify."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from skillmix.math import answers
from skillmix.math.answers import (
    AnswerCheck,
    check_answer,
    extract_final_answer,
    is_prose,
    normalize_text_answer,
)

# --- extraction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("So $x = \\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),  # nested braces
        ("The set is \\boxed{\\{1, 2\\}}.", "\\{1, 2\\}"),  # escaped braces inside
        ("First \\boxed{1}, then corrected: \\boxed{2}", "2"),  # the last box wins
        ("\\fbox{7}", "7"),
        ("\\boxed{3} and a box left open \\boxed{4", "3"),  # an unclosed box is skipped
        ("She pays 4 * 3 = <<4*3=12>>12.\n#### 12", "12"),
        ("#### 1,000", "1,000"),
        ("Work...\nThe answer is 42.", "42"),
        ("so the answer is 0.5.", "0.5"),
        ("The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\frac{3}{4}"),
        ("Answer: 17", "17"),
        ("**Final Answer:** 12", "12"),
        ("The answer is: $$x = 3$$", "x = 3"),
        ("Answer: 5. The answer is 6.", "6"),  # the last statement wins
        ("The boxed one wins: \\boxed{9}. The answer is 8.", "9"),  # boxes first
        ("I think it is about 12 or so", None),
        ("", None),
        ("The answer is", None),
    ],
)
def test_extract_final_answer(text: str, expected: str | None) -> None:
    assert extract_final_answer(text) == expected


# --- equivalence --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "gold"),
    [
        ("\\boxed{0.5}", "\\frac{1}{2}"),
        ("\\boxed{1/2}", "\\frac{1}{2}"),
        ("\\boxed{\\dfrac12}", "\\frac{1}{2}"),
        ("The answer is \\frac{1}{2}.", "0.5"),
        ("\\boxed{\\sqrt{8}}", "2\\sqrt{2}"),
        ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{\\sqrt{2}}{2}"),
        ("\\boxed{\\{3, 2, 1\\}}", "\\{1,2,3\\}"),  # sets: order does not matter
        ("\\boxed{(1, 2]}", "(1,2]"),  # intervals
        ("\\boxed{[0, \\infty)}", "[0,\\infty)"),
        ("#### 1,000", "1000"),  # thousands separator
        ("\\boxed{1000}", "1,000"),
        ("\\boxed{x = 3}", "3"),  # an assignment and its value
        ("\\boxed{3}", "x=3"),
        ("\\boxed{(x+1)^2}", "x^2+2x+1"),
        ("Answer: 42.0", "42"),
        ("0.5", "\\frac{1}{2}"),  # a bare one-line response is its own answer
        ("\\boxed{It is not possible}", "It is not possible"),  # prose: compared as text
        ("The answer is NO.", "No"),
    ],
)
def test_equivalent_answers(response: str, gold: str) -> None:
    result = check_answer(response, gold)
    assert result.correct, result
    assert result.reason == ""


@pytest.mark.parametrize(
    ("response", "gold", "extracted", "reason"),
    [
        ("\\boxed{0.8}", "3/4", "0.8", "not equivalent: 0.8 vs 3/4"),
        ("\\boxed{\\frac{1}{3}}", "\\frac{1}{2}", "\\frac{1}{3}", "not equivalent: "),
        ("\\boxed{(1,2)}", "[1,2]", "(1,2)", "not equivalent: (1,2) vs [1,2]"),  # open vs closed
        ("\\boxed{\\{1, 2\\}}", "\\{1,2,3\\}", "\\{1, 2\\}", "not equivalent: "),
        ("#### 999", "1,000", "999", "not equivalent: 999 vs 1,000"),
        ("\\boxed{x = 4}", "3", "x = 4", "not equivalent: "),
        ("\\boxed{\\pi}", "3.14", "\\pi", "not equivalent: "),
        (
            "I am not sure how to finish this one, sorry.",
            "12",
            None,
            "no final answer found",
        ),
        (
            "\\boxed{Yes}",
            "No",
            "Yes",
            "the gold answer is text; compared as text: 'Yes' vs 'No' differ",
        ),
        (
            "\\boxed{7}",
            "\\frac{{1}{2}",
            "7",
            "could not parse gold '\\frac{{1}{2}'; compared as text: '7' vs '\\frac{{1}{2}' differ",
        ),
    ],
)
def test_non_equivalent_answers_say_why(
    response: str, gold: str, extracted: str | None, reason: str
) -> None:
    result = check_answer(response, gold)
    assert not result.correct
    assert result.extracted == extracted
    assert result.reason.startswith(reason), result.reason


def test_methods_say_how_the_answer_was_compared() -> None:
    assert check_answer("\\boxed{2}", "2").method == "math-verify"
    assert check_answer("\\boxed{No such sequence}", "No such sequence").method == "text"
    assert check_answer("no idea at all, I give up on this problem", "2").method == "none"


def test_prose_answer_is_not_read_as_a_product_of_symbols() -> None:
    # math-verify would read "Yes" as y*e*s; a prose gold answer is compared as text.
    assert is_prose("It is not possible") and is_prose("No")
    assert not is_prose("\\sqrt{2} + \\sin x") and not is_prose("x(x-1)(x-2)")
    assert is_prose("sum_(k=1)^n 1/k")  # CHAMP's plain notation: text, not misparsed
    assert not check_answer("\\boxed{1}", "sum_(k=1)^n 1/k").correct


def test_normalize_text_answer() -> None:
    assert normalize_text_answer("$\\text{It is } 1,000.$") == "itis1000"
    assert normalize_text_answer("\\left(1, 2\\right)") == "(1,2)"


def test_to_dict() -> None:
    result = check_answer("\\boxed{0.8}", "3/4")
    assert result.to_dict() == {
        "correct": False,
        "extracted": "0.8",
        "reason": "not equivalent: 0.8 vs 3/4",
        "method": "math-verify",
    }
    assert AnswerCheck(True, "1", "").to_dict()["method"] == "math-verify"


def test_checks_run_in_worker_threads() -> None:
    # math-verify's timeouts use signal.alarm, which only the main thread may call; the
    # worker pool's threads must still get verdicts (not "signal only works in main thread").
    pairs = [("\\boxed{0.5}", "\\frac{1}{2}"), ("\\boxed{0.8}", "3/4"), ("#### 1,000", "1000")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda pair: check_answer(*pair), pairs))
    assert [r.correct for r in results] == [True, False, True]
    assert results[1].reason == "not equivalent: 0.8 vs 3/4"


def test_a_runaway_answer_is_stopped_in_any_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # sympy would work on 9^(9^(9^9)) for hours, and a thread cannot be interrupted: the
    # check runs in a child process that times itself out (killed if it does not answer).
    monkeypatch.setattr(answers, "TIMEOUT_SECONDS", 1)
    tower = "\\boxed{9^{9^{9^{9}}}}"
    with ThreadPoolExecutor(max_workers=1) as pool:
        result = pool.submit(check_answer, tower, "1").result()
    assert not result.correct and result.extracted == "9^{9^{9^{9}}}"
    assert result.reason.startswith(("could not parse answer", "not equivalent"))
    assert check_answer(tower, "1").correct is False  # the main thread: signal.alarm
