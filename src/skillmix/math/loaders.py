"""Reading the user's math problems: JSONL, JSON, CSV/TSV, Parquet, Hugging Face folders.

Each record is one problem. Fields (the first present of each list is used):

    question   question | problem | query
    answer     answer | final_answer     GSM8K layout: worked text ending "#### 42"
    solution   solution | rationale      MATH layout: a solution with \\boxed{...}
    category   category | type | subject
    concepts   concepts | skills | labels   a list, or one string split at ";" or "|"
    hints      hints                     a list, or one string split the same way
    id         id | unique_id | problem_id   (else the record's position, from 0)

The gold answer is the `answer` field (the part after "####" in GSM8K layout, the content
of its last \\boxed{} if it has one), else the last \\boxed{} of the `solution`. A JSON file
is a list of records, one record, or an object with a `problems` list and an optional
`concepts` table (id -> text). Ids become "<dataset name>:<id>"; the dataset's name is the
file's stem. Every error names the file and the line (JSON, JSONL, CSV) or the row.

A folder is a Hugging Face dataset saved with `save_to_disk`, an export folder of
`skillmix math export` (its `questions.jsonl`: id, question, answer, solution and skills),
or a folder holding exactly one .jsonl file; the last two are named after the folder.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skillmix.errors import InputError
from skillmix.math.answers import boxed_contents
from skillmix.math.problems import MathDataset, MathProblem
from skillmix.userfiles import read_user_text

QUESTION_FIELDS = ("question", "problem", "query")
ANSWER_FIELDS = ("answer", "final_answer")
SOLUTION_FIELDS = ("solution", "rationale")
CATEGORY_FIELDS = ("category", "type", "subject")
CONCEPT_FIELDS = ("concepts", "skills", "labels")
HINT_FIELDS = ("hints",)
ID_FIELDS = ("id", "unique_id", "problem_id")
FORMATS = ".jsonl, .json, .csv, .tsv or .parquet"
EXPORTED_QUESTIONS = "questions.jsonl"  # the dataset in an export folder of `math export`
_HINT = (
    "name 'champ', a .jsonl/.json/.csv/.tsv/.parquet file with question and answer "
    "fields, or a folder written by Hugging Face datasets' save_to_disk"
)
_CALCULATOR = re.compile(r"<<[^<>\n]*>>")  # GSM8K's calculator annotations: <<48/2=24>>
_LIST_SEPARATOR = re.compile(r"[;|]")


@dataclass(frozen=True)
class _Record:
    where: str  # "file:line" or "file: row N", for errors
    fields: Mapping[str, Any]


def load_path(spec: str) -> MathDataset:
    """The dataset in the file or folder `spec`."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return _load_saved_dataset(path)
    if not path.exists():
        raise InputError(f"{spec}: no such dataset file (and not a built-in dataset)", hint=_HINT)
    suffix = path.suffix.lower()
    concepts: Mapping[str, str] = {}
    if suffix == ".jsonl":
        records = list(_jsonl_records(path))
    elif suffix == ".json":
        records, concepts = _json_records(path)
    elif suffix in (".csv", ".tsv"):
        records = list(_csv_records(path, "\t" if suffix == ".tsv" else ","))
    elif suffix == ".parquet":
        records = _parquet_records(path)
    else:
        raise InputError(f"{path}: cannot read {suffix or 'this'} files as a dataset", hint=_HINT)
    return build_dataset(path.stem, str(path), records, concepts)


def build_dataset(
    name: str, source: str, records: Sequence[_Record], concepts: Mapping[str, str] | None = None
) -> MathDataset:
    """A dataset of the records in order; InputError at the first bad one."""
    if not records:
        raise InputError(f"{source}: no problems found", hint=_HINT)
    problems = []
    first_seen: dict[str, str] = {}
    for index, record in enumerate(records):
        problem = record_to_problem(record.fields, name, index, record.where)
        if problem.id in first_seen:
            raise InputError(
                f"{record.where}: the id {problem.id!r} was already used at "
                f"{first_seen[problem.id]}",
                hint="give every problem its own id",
            )
        first_seen[problem.id] = record.where
        problems.append(problem)
    return MathDataset.build(name, source, problems, concepts)


def record_to_problem(fields: Mapping[str, Any], name: str, index: int, where: str) -> MathProblem:
    """One record as a problem; `where` prefixes every error."""
    question = _text(fields, QUESTION_FIELDS, where)
    if not question:
        raise InputError(
            f"{where}: no question: expected a non-empty "
            f"{' or '.join(repr(f) for f in QUESTION_FIELDS[:2])} field",
            hint=f"the record's fields are: {', '.join(map(str, fields)) or 'none'}",
        )
    answer, solution = _answer_and_solution(fields, where)
    raw_id = _text(fields, ID_FIELDS, where)
    return MathProblem(
        id=f"{name}:{raw_id if raw_id else index}",
        question=question,
        answer=answer,
        solution=solution,
        category=_text(fields, CATEGORY_FIELDS, where) or None,
        concepts=_labels(fields, CONCEPT_FIELDS, where),
        hints=_labels(fields, HINT_FIELDS, where),
    )


def _answer_and_solution(fields: Mapping[str, Any], where: str) -> tuple[str, str | None]:
    answer = _text(fields, ANSWER_FIELDS, where)
    solution = _text(fields, SOLUTION_FIELDS, where) or None
    if answer and "####" in answer:  # GSM8K: the worked answer, then "#### 42"
        worked, _, final = answer.rpartition("####")
        final = _strip_math(final)
        if not final:
            raise InputError(f"{where}: nothing after '####' in the answer", hint=_HINT)
        worked = _CALCULATOR.sub("", worked).strip()
        return final, solution or worked or None
    if answer:
        boxes = boxed_contents(answer)
        final = _strip_math(boxes[-1] if boxes else answer)
        if final:
            return final, solution
    if solution:  # MATH: the final answer is the solution's last \boxed{}
        boxes = boxed_contents(solution)
        if boxes and _strip_math(boxes[-1]):
            return _strip_math(boxes[-1]), solution
        raise InputError(
            f"{where}: no final answer: no 'answer' field and the solution has no \\boxed{{}}",
            hint="add an 'answer' field, or end the solution with \\boxed{answer}",
        )
    raise InputError(
        f"{where}: no answer: expected an 'answer' field (or a 'solution' with \\boxed{{}})",
        hint=f"the record's fields are: {', '.join(map(str, fields)) or 'none'}",
    )


def _strip_math(text: str) -> str:
    text = text.strip().removesuffix(".").strip()
    if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text.strip("$").strip()
    return text


def _first(fields: Mapping[str, Any], names: Sequence[str]) -> tuple[str, Any]:
    for name in names:
        value = fields.get(name)
        if value is not None and value != "":
            return name, value
    return "", None


def _text(fields: Mapping[str, Any], names: Sequence[str], where: str) -> str:
    name, value = _first(fields, names)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InputError(
            f"{where}: the field {name!r} should be text or a number, got {type(value).__name__}"
        )
    return str(value).strip()


def _labels(fields: Mapping[str, Any], names: Sequence[str], where: str) -> tuple[str, ...]:
    name, value = _first(fields, names)
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = _LIST_SEPARATOR.split(value)
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise InputError(
            f"{where}: the field {name!r} should be a list or text separated by ';', "
            f"got {type(value).__name__}"
        )
    for item in items:
        if not isinstance(item, str | int):
            raise InputError(f"{where}: the field {name!r} should hold text, got {item!r}")
    labels = (str(item).strip() for item in items)
    return tuple(dict.fromkeys(label for label in labels if label))


# --- formats ----------------------------------------------------------------------------


def _jsonl_records(path: Path) -> Iterator[_Record]:
    for number, line in enumerate(read_user_text(path, "dataset file").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(
                f"{where}: not valid JSON ({err.msg} at column {err.colno})",
                hint="a .jsonl file holds one JSON object per line",
            ) from None
        yield _object(value, where)


def _object(value: Any, where: str) -> _Record:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object (a problem), got {_kind(value)}")
    return _Record(where, value)


def _kind(value: Any) -> str:
    names = {list: "a list", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), "null" if value is None else type(value).__name__)


def _json_records(path: Path) -> tuple[list[_Record], Mapping[str, str]]:
    text = read_user_text(path, "dataset file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    concepts: Mapping[str, str] = {}
    if isinstance(data, dict) and not any(f in data for f in QUESTION_FIELDS):
        items = data.get("problems")
        if not isinstance(items, list):
            raise InputError(
                f"{path}: expected a list of problems, one problem, or an object with a "
                "'problems' list",
                hint=_HINT,
            )
        concepts = _concept_table(data.get("concepts"), path)
        start = _find_list(text, "problems", items)
    elif isinstance(data, dict):
        return [_Record(f"{path}:1", data)], concepts
    elif isinstance(data, list):
        items, start = data, text.index("[")
    else:
        raise InputError(f"{path}: expected a list of problems, got {_kind(data)}", hint=_HINT)
    lines = _element_lines(text, start) if start is not None else [None] * len(items)
    records = [
        _object(item, f"{path}:{line}" if line else f"{path}: problem {i + 1}")
        for i, (item, line) in enumerate(zip(items, lines, strict=True))
    ]
    return records, concepts


def _concept_table(value: Any, path: Path) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InputError(f"{path}: 'concepts' should map each concept id to its text")
    return value


def _find_list(text: str, key: str, expected: list[Any]) -> int | None:
    """Where the list under `key` starts in `text` (checked by decoding it), else None."""
    decoder = json.JSONDecoder()
    for match in re.finditer(rf'"{re.escape(key)}"\s*:\s*\[', text):
        start = match.end() - 1
        try:
            if decoder.raw_decode(text, start)[0] == expected:
                return start
        except json.JSONDecodeError:
            continue
    return None


def _element_lines(text: str, start: int) -> list[int]:
    """The line on which each element of the (valid) JSON array at `start` begins."""
    decoder = json.JSONDecoder()
    lines: list[int] = []
    position = _skip_space(text, start + 1)
    line, counted = 1, 0
    while text[position] != "]":
        line += text.count("\n", counted, position)
        counted = position
        lines.append(line)
        _, position = decoder.raw_decode(text, position)
        position = _skip_space(text, position)
        if text[position] == ",":
            position = _skip_space(text, position + 1)
    return lines


def _skip_space(text: str, position: int) -> int:
    while text[position] in " \t\r\n":
        position += 1
    return position


def _csv_records(path: Path, delimiter: str) -> Iterator[_Record]:
    text = read_user_text(path, "dataset file")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = reader.fieldnames or []
        if not any(f in header for f in QUESTION_FIELDS):
            raise InputError(
                f"{path}:1: no question column: expected a 'question' or 'problem' column",
                hint=f"the header has: {', '.join(header) or 'nothing'}",
            )
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if None in row:
                raise InputError(f"{where}: more fields than the header has columns")
            yield _Record(where, {k: v for k, v in row.items() if v is not None})
    except csv.Error as err:
        raise InputError(f"{path}:{reader.line_num}: not valid CSV ({err})") from None


def _parquet_records(path: Path) -> list[_Record]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            f"{path}: reading Parquet needs pyarrow, which is not installed",
            hint="pip install pyarrow",
        ) from None
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as err:  # pyarrow raises several types for a bad file
        raise InputError(f"{path}: not a readable Parquet file ({err})") from None
    return [_Record(f"{path}: row {i + 1}", row) for i, row in enumerate(rows)]


def _load_saved_dataset(path: Path) -> MathDataset:
    """A folder written by `datasets` `save_to_disk`: one split, or a dict of splits."""
    name = path.name
    if (path / "dataset_dict.json").is_file():
        splits = _splits(path)
        if len(splits) != 1:
            raise InputError(
                f"{path}: this saved dataset has {len(splits)} splits "
                f"({', '.join(splits)}); name the one to use",
                hint=f"pass the split's folder, e.g. {path / (splits[0] if splits else 'test')}",
            )
        path = path / splits[0]
        name = f"{name}-{splits[0]}"
    elif not (path / "dataset_info.json").is_file() and not (path / "state.json").is_file():
        return _load_jsonl_folder(path)
    elif (path.parent / "dataset_dict.json").is_file():
        name = f"{path.parent.name}-{name}"
    try:
        import datasets
    except ImportError:
        raise InputError(
            f"{path}: reading a saved Hugging Face dataset needs `datasets`, not installed",
            hint="pip install datasets",
        ) from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:  # datasets raises several types for a damaged folder
        raise InputError(f"{path}: cannot load the saved dataset ({err})") from None
    if not isinstance(loaded, datasets.Dataset):
        raise InputError(f"{path}: expected one split of a saved dataset", hint=_HINT)
    rows = loaded.to_list()
    records = [_Record(f"{path}: row {i + 1}", row) for i, row in enumerate(rows)]
    return build_dataset(name, str(path), records)


def _load_jsonl_folder(path: Path) -> MathDataset:
    """A folder with the questions of an export (`skillmix math export` writes
    `questions.jsonl` next to its card and chat-format records), else with exactly one
    .jsonl file: that file's problems, named after the folder."""
    exported = path / EXPORTED_QUESTIONS
    files = [exported] if exported.is_file() else sorted(path.glob("*.jsonl"))
    files = [f for f in files if f.is_file()]
    if len(files) != 1:
        found = ", ".join(f.name for f in files)
        raise InputError(
            f"{path}: a folder, but not a dataset saved with Hugging Face save_to_disk "
            f"(no dataset_info.json or dataset_dict.json), nor one with {EXPORTED_QUESTIONS} "
            f"or a single .jsonl file ({f'{len(files)} of them: {found}' if files else 'none'})",
            hint="name the file itself" if files else _HINT,
        )
    return build_dataset(path.name, str(files[0]), list(_jsonl_records(files[0])))


def _splits(path: Path) -> list[str]:
    try:
        splits = json.loads((path / "dataset_dict.json").read_text("utf-8"))["splits"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"{path / 'dataset_dict.json'}: cannot read the splits ({err})") from None
    return [str(split) for split in splits]
