"""Math datasets: CHAMP from its wheel, the user's files in every format, splits, leaks."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skillmix.errors import InputError
from skillmix.math import champ
from skillmix.math.problems import (
    MathDataset,
    MathProblem,
    leak_check,
    load_dataset,
    normalize_question,
    without_leaks,
)

FIXTURES = Path(__file__).parent / "fixtures" / "math"


# --- CHAMP --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def champ_data() -> MathDataset:
    return load_dataset("champ")


def test_champ_counts_are_pinned(champ_data: MathDataset) -> None:
    assert len(champ_data) == 270
    assert Counter(p.category for p in champ_data) == {
        "Number-Theory": 80,
        "Inequality": 50,
        "Polynomial": 50,
        "Sequence": 50,
        "Combinatorics": 40,
    }
    assert len(champ_data.categories) == 5
    assert len(champ_data.concepts) == 89
    # Every concept in the table is used by some problem; 223 problems have at least one.
    assert {c for p in champ_data for c in p.concepts} == set(champ_data.concepts)
    assert sum(1 for p in champ_data if p.concepts) == 223
    assert sum(len(p.hints) for p in champ_data) == 456
    assert all(p.question and p.answer and p.solution for p in champ_data)
    assert len({p.id for p in champ_data}) == 270
    assert champ_data.content_hash == (
        "2fcaa6d8d3aa9b5cca20d4c52b891bc42b464d719b87f297ef06a7e783bd522e"
    )


def test_champ_problem_fields(champ_data: MathDataset) -> None:
    problem = champ_data.get("champ:P_Inequality_12")
    assert problem.question.startswith("Let (a_1, a_2, ..., a_n) be a permutation")
    assert problem.answer == "sum_(k=1)^n 1/k"
    assert problem.category == "Inequality"
    assert problem.concepts == ("C_rearrangement",)
    assert champ_data.concepts["C_rearrangement"].startswith("rearrangement inequality: ")
    assert problem.hints == (
        "Consider the sequences (1, 2, ..., n) and (1/1^2, 1/2^2, ..., 1/n^2).",
    )
    assert problem.solution is not None and len(problem.solution.splitlines()) == 4
    assert "@@" not in problem.question + problem.answer  # the marked-up text is not used
    first = champ_data.problems[0]
    assert (first.id, first.answer) == ("champ:P_Combinatorics_1", "239")
    assert first.concepts == ("C_comb_sum",) and len(first.hints) == 3


def test_champ_is_read_as_a_file_without_importing_the_package(
    champ_data: MathDataset,
) -> None:
    assert champ_data.source.endswith("champ_dataset/dataset_files/v0.json")
    assert "champ_dataset" not in sys.modules


def test_champ_recorded_model_answers(champ_data: MathDataset) -> None:
    assert champ.champ_models() == ("GPT-3.5", "GPT-4", "GPT-4 Turbo", "PaLM 2 Medium")
    settings_ = champ.champ_settings()
    assert len(settings_) == 18 and settings_[:2] == ("0-Shot", "5-Shot")
    answers = champ.champ_model_answers()
    assert {model: len(texts) for model, texts in answers.items()} == {
        "GPT-3.5": 270,
        "GPT-4": 270,
        "GPT-4 Turbo": 270,
        "PaLM 2 Medium": 270,
    }
    worked = answers["GPT-3.5"]["champ:P_Combinatorics_1"]
    assert worked.startswith("To solve this problem, we can use the concept of recursion.")
    summary = champ.champ_model_answers(setting="0-Shot", summary=True)
    assert summary["GPT-3.5"]["champ:P_Combinatorics_1"].startswith("There are 29 valid")
    recorded = champ.champ_recorded_answers("0-Shot")
    assert sum(a.truncated for a in recorded["GPT-3.5"].values()) == 6
    # Restricted to a dataset's problems (here the first ten).
    small = champ.champ_model_answers(champ_data.limit(10), setting="5-Shot")
    assert set(small["GPT-4"]) == {p.id for p in champ_data.problems[:10]}


def test_champ_model_answers_reject_an_unknown_setting_or_other_data() -> None:
    with pytest.raises(InputError, match="no recorded answers for the setting 'ten-shot'"):
        champ.champ_model_answers(setting="ten-shot")
    other = load_dataset(str(FIXTURES / "problems.jsonl"))
    with pytest.raises(InputError, match="only for CHAMP"):
        champ.champ_model_answers(other)


def test_limit_takes_the_first_problems(champ_data: MathDataset) -> None:
    ten = load_dataset("champ", limit=10)
    assert [p.id for p in ten] == [p.id for p in champ_data.problems[:10]]
    assert ten.content_hash != champ_data.content_hash
    assert ten.content_hash == champ_data.limit(10).content_hash
    assert champ_data.limit(None) is champ_data and champ_data.limit(1000) is champ_data
    with pytest.raises(InputError, match="at least 1"):
        champ_data.limit(0)


# --- the user's files ---------------------------------------------------------------------


def test_jsonl_fields_and_aliases() -> None:
    data = load_dataset(str(FIXTURES / "problems.jsonl"))
    assert data.name == "problems" and data.concepts == {}
    assert [p.id for p in data] == [
        "problems:p1",
        "problems:p2",
        "problems:p3",
        "problems:3",  # no id: the record's position
        "problems:p5",
    ]
    p1, p2, p3, p4, p5 = data.problems
    assert p1 == MathProblem(
        id="problems:p1",
        question="A train covers 60 km in 1.5 hours. What is its average speed in km/h?",
        answer="40",
        solution="Average speed is distance over time: 60 / 1.5 = 40.",
        category="Arithmetic",
        concepts=("unit rates",),
        hints=("Divide the distance by the time.",),
    )
    assert p2.answer == "x = 5" and p2.solution is None
    assert p3.concepts == ("polygon angles", "triangulation")  # "skills", split at ";"
    assert p4.answer == "\\frac{3}{4}"  # the content of a boxed answer
    assert (p5.answer, p5.category) == ("9", "Number Theory")  # a number; "type"
    assert p5.concepts == ("divisor counting", "prime factorisation")  # "labels"


def test_gsm8k_layout_splits_the_worked_answer_from_the_final_one() -> None:
    data = load_dataset(str(FIXTURES / "gsm8k_style.jsonl"))
    assert [p.answer for p in data] == ["14", "225", "2,000"]
    first = data.problems[0]
    assert first.solution == (
        "The notebooks cost 4 * 3 = 12 dollars.\nWith the pen she spends 12 + 2 = 14 dollars."
    )
    assert first.id == "gsm8k_style:0" and first.category is None


def test_math_layout_takes_the_last_box_of_the_solution() -> None:
    data = load_dataset(str(FIXTURES / "math_style.json"))
    assert [p.answer for p in data] == ["11", "3", "\\frac{1}{4}", "\\{2, 3\\}"]
    assert [p.category for p in data] == [
        "Prealgebra",
        "Algebra",
        "Counting & Probability",
        "Algebra",
    ]
    assert data.problems[0].question == "What is the value of $\\sqrt{49} + \\sqrt{16}$?"
    assert data.problems[0].solution is not None and "\\boxed{11}" in data.problems[0].solution


def test_csv_with_a_multiline_cell() -> None:
    data = load_dataset(str(FIXTURES / "problems.csv"))
    assert [p.id for p in data] == ["problems:c1", "problems:c2", "problems:c3"]
    assert data.problems[1].concepts == ("squaring binomials", "distributive law")
    assert data.problems[1].answer == "x^2 + 4x + 4"
    assert data.problems[2].question == (
        "A rectangle is 7 cm long and 4 cm wide.\nWhat is its perimeter, in cm?"
    )


def test_json_object_with_a_concept_table() -> None:
    data = load_dataset(str(FIXTURES / "with_concepts.json"))
    assert dict(data.concepts) == {
        "K_pyth": "Pythagorean theorem: in a right triangle, a^2 + b^2 = c^2.",
        "K_sq": "Difference of squares: a^2 - b^2 = (a - b)(a + b).",
    }
    assert [p.concepts for p in data] == [("K_pyth",), ("K_sq",)]


def _jsonl_rows() -> list[dict[str, object]]:
    path = FIXTURES / "problems.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_parquet_reads_like_jsonl(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rows = [
        {k: v for k, v in row.items() if k in ("id", "question", "answer")} for row in _jsonl_rows()
    ]
    rows = [{**row, "answer": str(row["answer"]), "id": row.get("id")} for row in rows]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "problems.parquet")
    from_parquet = load_dataset(str(tmp_path / "problems.parquet"))
    from_jsonl = load_dataset(str(FIXTURES / "problems.jsonl"))
    assert [(p.id, p.question, p.answer) for p in from_parquet] == [
        (p.id, p.question, p.answer) for p in from_jsonl
    ]


def test_saved_hugging_face_dataset(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = [
        {"question": f"What is {n} + {n}?", "answer": f"Double {n}.\n#### {2 * n}"}
        for n in range(1, 5)
    ]
    splits = datasets.DatasetDict(
        train=datasets.Dataset.from_list(rows[:3]), test=datasets.Dataset.from_list(rows[3:])
    )
    splits.save_to_disk(str(tmp_path / "adding"))
    test = load_dataset(str(tmp_path / "adding" / "test"))
    assert test.name == "adding-test"
    assert [(p.id, p.answer, p.solution) for p in test] == [("adding-test:0", "8", "Double 4.")]
    with pytest.raises(InputError, match=r"has 2 splits \(train, test\); name the one") as err:
        load_dataset(str(tmp_path / "adding"))
    assert "adding/train" in err.value.hint
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "single"))
    assert len(load_dataset(str(tmp_path / "single"))) == 4


# --- malformed input: file and line -------------------------------------------------------


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "broken.jsonl",
            '{"question": "1+1?", "answer": "2"}\n\n{"question": "2+2?", "answer": \n',
            r"broken\.jsonl:3: not valid JSON",
        ),
        (
            "noanswer.jsonl",
            '{"question": "1+1?", "answer": "2"}\n{"question": "2+2?"}\n',
            r"noanswer\.jsonl:2: no answer: expected an 'answer' field",
        ),
        (
            "noquestion.jsonl",
            '{"prompt": "1+1?", "answer": "2"}\n',
            r"noquestion\.jsonl:1: no question",
        ),
        (
            "nobox.jsonl",
            '{"problem": "1+1?", "solution": "It is two."}\n',
            r"nobox\.jsonl:1: no final answer: .* no \\boxed\{\}",
        ),
        (
            "emptyfinal.jsonl",
            '{"question": "1+1?", "answer": "One and one.\\n#### "}\n',
            r"emptyfinal\.jsonl:1: nothing after '####'",
        ),
        (
            "twice.jsonl",
            '{"id": "a", "question": "1+1?", "answer": "2"}\n'
            '{"id": "a", "question": "2+2?", "answer": "4"}\n',
            r"twice\.jsonl:2: the id 'twice:a' was already used at .*twice\.jsonl:1",
        ),
        (
            "array.jsonl",
            '["1+1?", "2"]\n',
            r"array\.jsonl:1: expected a JSON object \(a problem\), got a list",
        ),
        (
            "badlabels.jsonl",
            '{"question": "1+1?", "answer": "2", "skills": {"a": 1}}\n',
            r"badlabels\.jsonl:1: the field 'skills' should be a list",
        ),
        (
            "records.json",
            '[\n  {"question": "1+1?", "answer": "2"},\n\n  {"question": "2+2?"}\n]\n',
            r"records\.json:4: no answer",
        ),
        (
            "object.json",
            '{\n "problems": [\n  {"question": "1+1?", "answer": "2"},\n  {"answer": "4"}\n ]\n}',
            r"object\.json:4: no question",
        ),
        ("syntax.json", '[\n {"question": "1+1?",\n]\n', r"syntax\.json:3: not valid JSON"),
        (
            "noquestion.csv",
            "prompt,answer\n1+1?,2\n",
            r"noquestion\.csv:1: no question column",
        ),
        (
            "rows.csv",
            'question,answer\n1+1?,2\n"two\nplus two?",\n',
            r"rows\.csv:4: no answer",
        ),
        ("extra.csv", "question,answer\n1+1?,2,3\n", r"extra\.csv:2: more fields than"),
        ("empty.jsonl", "\n\n", r"empty\.jsonl: no problems found"),
        ("notes.txt", "1+1?\n", r"notes\.txt: cannot read \.txt files"),
    ],
)
def test_malformed_input_names_file_and_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        load_dataset(_write(tmp_path, name, text))


def test_missing_path_and_plain_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such dataset file") as err:
        load_dataset(str(tmp_path / "nowhere.jsonl"))
    assert "champ" in err.value.hint
    with pytest.raises(InputError, match="not a dataset saved with Hugging Face"):
        load_dataset(str(tmp_path))


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        b'{"question": "1+1?", "answer": "2"}\n{"question": "caf\xe9", "answer": "1"}\n'
    )
    with pytest.raises(InputError, match=r"latin1\.jsonl:2: the dataset file is not UTF-8"):
        load_dataset(str(path))


# --- splits -------------------------------------------------------------------------------


def test_split_is_disjoint_stratified_and_deterministic(champ_data: MathDataset) -> None:
    train, test = champ_data.split(0.2, seed=7)
    train_ids, test_ids = {p.id for p in train}, {p.id for p in test}
    assert not train_ids & test_ids
    assert train_ids | test_ids == {p.id for p in champ_data}
    assert len(test) == 54
    assert Counter(p.category for p in test) == {
        "Number-Theory": 16,
        "Inequality": 10,
        "Polynomial": 10,
        "Sequence": 10,
        "Combinatorics": 8,
    }
    order = [p.id for p in champ_data]
    assert [p.id for p in test] == [i for i in order if i in test_ids]  # dataset order kept
    again_train, again_test = champ_data.split(0.2, seed=7)
    assert (again_train.content_hash, again_test.content_hash) == (
        train.content_hash,
        test.content_hash,
    )
    other = champ_data.split(0.2, seed=8)[1]
    assert {p.id for p in other} != test_ids
    assert train.concepts == champ_data.concepts and test.name == "champ"


def test_split_rejects_a_share_outside_0_1(champ_data: MathDataset) -> None:
    for share in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(InputError, match="between 0 and 1"):
            champ_data.split(share, seed=0)


@settings(max_examples=60, deadline=None)
@given(
    categories=st.lists(st.sampled_from(["a", "b", "c", None]), min_size=2, max_size=40),
    share=st.floats(0.05, 0.95),
    seed=st.integers(0, 10),
)
def test_split_sizes_follow_the_share_in_every_category(
    categories: list[str | None], share: float, seed: int
) -> None:
    problems = [
        MathProblem(f"q{i}", f"question {i}", "1", category=c) for i, c in enumerate(categories)
    ]
    data = MathDataset.build("toy", "memory", problems)
    train, test = data.split(share, seed)
    assert len(test) == round(share * len(problems))
    assert len(train) + len(test) == len(problems)
    assert not {p.id for p in train} & {p.id for p in test}
    sizes, tested = Counter(categories), Counter(p.category for p in test)
    for category, size in sizes.items():
        assert abs(tested[category] - share * size) < 1.0 + 1e-9


def test_build_rejects_repeated_ids() -> None:
    problems = [MathProblem("x", "q1", "1"), MathProblem("x", "q2", "2")]
    with pytest.raises(InputError, match="problem id 'x' is used twice"):
        MathDataset.build("toy", "memory", problems)
    with pytest.raises(InputError, match="problem id 'x' is used twice"):
        MathDataset("toy", "memory", tuple(problems))


def test_content_hash_covers_problems_and_concepts_only() -> None:
    problems = (MathProblem("a", "What is 1+1?", "2", concepts=("K",)),)
    built = MathDataset.build("toy", "memory", problems, {"K": "addition"})
    direct = MathDataset("renamed", "elsewhere", problems, {"K": "addition"})
    assert built.content_hash == direct.content_hash and len(built.content_hash) == 64
    assert MathDataset("toy", "memory", problems, {"K": "sums"}).content_hash != (
        built.content_hash
    )
    changed = (MathProblem("a", "What is 1+1?", "3", concepts=("K",)),)
    assert MathDataset.build("toy", "memory", changed, {"K": "addition"}).content_hash != (
        built.content_hash
    )


def test_problem_dict_round_trip(champ_data: MathDataset) -> None:
    for problem in champ_data.problems[:20]:
        assert MathProblem.from_dict(json.loads(json.dumps(problem.to_dict()))) == problem


# --- leaks ----------------------------------------------------------------------------------

LONG = (
    "A farmer plants apple trees in a square grid with 12 trees on each side and then adds "
    "one extra row of 12 trees along the northern fence so that the orchard can be watered "
    "by a single pipe. How many apple trees are there in the orchard after the extra row?"
)


def test_leak_check_finds_exact_and_near_duplicates() -> None:
    train = [
        MathProblem("tr:1", "What is 2 + 3?", "5"),
        MathProblem("tr:2", LONG, "156"),
        MathProblem("tr:3", "How many primes are there below 20?", "8"),
    ]
    test = [
        MathProblem("te:1", "  what is 2+3 ", "5"),  # case, spaces and punctuation differ
        MathProblem("te:2", LONG.replace("northern", "southern"), "156"),  # one word differs
        MathProblem("te:3", "What is 2 - 3?", "-1"),  # different mathematics
        MathProblem("te:4", "How many squares are there below 50?", "7"),
    ]
    assert leak_check(train, test) == [("tr:1", "te:1"), ("tr:2", "te:2")]
    assert leak_check(train, test[2:]) == []


def test_leak_check_compares_every_test_copy_with_train() -> None:
    # Two test copies of one train question: both are leaks, not only the first.
    train = [MathProblem("tr:1", LONG, "156")]
    test = [
        MathProblem("te:1", LONG.replace("northern", "southern"), "156"),
        MathProblem("te:2", LONG.replace("northern", "eastern"), "156"),
    ]
    assert leak_check(train, test) == [("tr:1", "te:1"), ("tr:1", "te:2")]


def test_champ_has_near_duplicate_templates_that_a_split_can_leak(
    champ_data: MathDataset,
) -> None:
    # CHAMP repeats a few templates with one number changed: 10 pairs at 0.8 (measured),
    # so every problem leaks onto itself and 20 ordered near pairs remain.
    assert len(leak_check(champ_data.problems, champ_data.problems)) == 270 + 20
    train, test = champ_data.split(0.2, seed=0)
    pairs = [
        ("champ:P_Inequality_6", "champ:P_Inequality_28"),  # "> 0.1?" / "> 1/15?"
        ("champ:P_Number-Theory_10", "champ:P_Number-Theory_26"),  # "by 5?" / "by 3?"
        ("champ:P_Number-Theory_55", "champ:P_Number-Theory_26"),  # and "by 4?"
    ]
    assert leak_check(train.problems, test.problems) == pairs
    clean, removed = without_leaks(train, test)
    assert removed == pairs
    assert len(clean) == len(train) - 3
    assert {p.id for p in clean} == {p.id for p in train} - {a for a, _ in pairs}
    assert leak_check(clean.problems, test.problems) == []
    assert without_leaks(clean, test) == (clean, [])


def test_normalize_question_keeps_mathematics() -> None:
    assert normalize_question("  What IS 2+3?\n") == "what is 2+3"
    assert normalize_question("2+3") != normalize_question("2-3")
