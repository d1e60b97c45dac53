"""Read the output folders of the original Skill-Mix scripts (their CSV files), nothing more.

Their layout, one folder per k, seed, generation prompt and generation round:

    <root>/k3_s10_vdefault_r1/                    k, seed, prompt version, generation round
        <student>/records.csv                     one row per item: k, skills, topic,
                                                  the turns (user_i/assistant_i, or
                                                  [INST]_i/[/INST]_i), text_i (their
                                                  extraction of turn i's answer)
        <student>/graded/by_<judge>_on_<column>_<round>_<format>/records.csv
                                                  one row per item: k, skills, topic,
                                                  user_0 (grading prompt), assistant_0
                                                  (the judge's text), points_0, and
                                                  true_sentence_lim_pt_0 (their
                                                  sentence-limit point)

`points_0` holds the numbers their scripts read from the judge's text, comma-separated in
the order the judge wrote its rows; their aggregation reads them by position (the k skills
in the order of `skills`, then topic, sense and sentence limit), fills a short list with
zeros, cuts a long one, and replaces the last value with `true_sentence_lim_pt_0`.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from skillmix.errors import InputError

RECORDS = "records.csv"
GRADED = "graded"
# Columns that are not a turn of the conversation even though they end in _<i>.
_NOT_TURNS = (
    "model_input",
    "text",
    "score",
    "score_extracted",
    "points",
    "num_sentences_manual_in_student_answer",
    "true_sentence_lim_pt",
    "num_sentences_extracted_eq_num_sentences_model",
)
_ROUND_FOLDER = re.compile(r"^k(?P<k>\d+)_s(?P<seed>-?\d+)_v(?P<version>.+)_r(?P<round>\d+)$")
_GRADING_FOLDER = re.compile(r"^by_(?P<judge>.+?)_on_(?P<column>.+?_\d+)(?P<suffix>_.+)?$")
_TURN_COLUMN = re.compile(r"^(?P<role>.+)_(?P<index>\d+)$")


class ReferenceFormatError(InputError):
    """A file of the original scripts' output could not be read; the message says where."""


@dataclass(frozen=True)
class RoundFolder:
    """What a generation-round folder's name says (`k3_s10_vdefault_r1`)."""

    k: int | None
    seed: int | None
    version: str
    round: int


@dataclass(frozen=True)
class GradingFolder:
    """What a grading folder's name says (`by_gpt-4_on_text_1_2_gpt`)."""

    judge: str
    column: str  # the generation column that was graded, e.g. "text_1"
    round: int  # grading round, from 1
    format: str  # the grading prompt version, e.g. "gpt"


@dataclass(frozen=True)
class Turn:
    user: str
    assistant: str


@dataclass(frozen=True)
class _Row:
    """Where a row of records.csv is, and the item it describes."""

    file: str
    line: int
    k: int
    skills: tuple[str, ...]
    topic: str
    system: str


@dataclass(frozen=True)
class GenerationRow(_Row):
    """One item of a student's records.csv."""

    turns: tuple[Turn, ...]
    cells: dict[str, str] = field(repr=False)

    def column(self, name: str) -> str:
        if name not in self.cells:
            raise ReferenceFormatError(
                f"{self.file}:{self.line}: no column '{name}' (the grading folder's name "
                f"says it was graded; columns: {', '.join(self.cells)})"
            )
        return self.cells[name]


@dataclass(frozen=True)
class GradingRow(_Row):
    """One item of a grading folder's records.csv."""

    prompt: str  # the grading prompt (user_0)
    reply: str  # the judge's text (assistant_0)
    points_cell: str  # points_0 exactly as written
    points: tuple[float, ...]  # the numbers in points_0
    sentence_point: float | None  # true_sentence_lim_pt_0
    sentence_count: int | None  # num_sentences_manual_in_student_answer_0


def parse_round_folder(name: str) -> RoundFolder | None:
    """`k3_s10_vdefault_r1` -> k 3, seed 10, version "default", round 1; None if not so named."""
    match = _ROUND_FOLDER.match(name)
    if match is None:
        return None
    return RoundFolder(
        k=int(match["k"]),
        seed=int(match["seed"]),
        version=match["version"],
        round=int(match["round"]),
    )


def parse_grading_folder(name: str) -> GradingFolder | None:
    """`by_gpt-4_on_text_1_2_gpt` -> judge gpt-4, column text_1, round 2, format gpt.

    A name without a round (`by_gpt-4_on_text_1`) is grading round 1; None if the name
    is not a grading folder's.
    """
    match = _GRADING_FOLDER.match(name)
    if match is None:
        return None
    suffix = (match["suffix"] or "").lstrip("_")
    round_part, _, format_part = suffix.partition("_")
    if round_part.isdigit():
        return GradingFolder(match["judge"], match["column"], int(round_part), format_part)
    return GradingFolder(match["judge"], match["column"], 1, suffix)


def split_skills(cell: str) -> tuple[str, ...]:
    """Their `skills` cell ("metaphor, \\nred herring") as names, whitespace normalised."""
    return tuple(" ".join(s.split()) for s in cell.split(",") if s.strip())


def read_generations(path: Path) -> list[GenerationRow]:
    """Every row of a student's records.csv."""
    rows = []
    for line, cells in _rows(path):
        k, skills, topic = _item(cells, path, line)
        rows.append(
            GenerationRow(
                file=str(path),
                line=line,
                k=k,
                skills=skills,
                topic=topic,
                system=cells.get("system prompt", ""),
                turns=_turns(cells),
                cells=cells,
            )
        )
    return rows


def read_gradings(path: Path) -> list[GradingRow]:
    """Every row of a grading folder's records.csv."""
    rows = []
    for line, cells in _rows(path):
        k, skills, topic = _item(cells, path, line)
        turns = _turns(cells)
        if not turns:
            raise ReferenceFormatError(
                f"{path}:{line}: no grading prompt and judge text (expected user_0 and "
                "assistant_0, or [INST]_0 and [/INST]_0)"
            )
        if "points_0" not in cells:
            raise ReferenceFormatError(f"{path}:{line}: no points_0 column")
        rows.append(
            GradingRow(
                file=str(path),
                line=line,
                k=k,
                skills=skills,
                topic=topic,
                system=cells.get("system prompt", ""),
                prompt=turns[0].user,
                reply=turns[0].assistant,
                points_cell=cells["points_0"],
                points=parse_points(cells["points_0"], f"{path}:{line}"),
                sentence_point=_optional_number(
                    cells.get("true_sentence_lim_pt_0", ""), f"{path}:{line}"
                ),
                sentence_count=_optional_int(
                    cells.get("num_sentences_manual_in_student_answer_0", ""), f"{path}:{line}"
                ),
            )
        )
    return rows


def parse_points(cell: str, where: str = "") -> tuple[float, ...]:
    """The numbers of a points_0 cell ("1.0,0.0,0.5"); an empty cell has none."""
    values = []
    for part in cell.split(","):
        if not part.strip():
            continue
        try:
            value = float(part)
        except ValueError:
            raise ReferenceFormatError(
                f"{where}: points_0 holds '{part.strip()}', which is not a number"
            ) from None
        if not math.isfinite(value):
            raise ReferenceFormatError(f"{where}: points_0 holds '{part.strip()}'")
        values.append(value)
    return tuple(values)


# --- CSV -------------------------------------------------------------------------------------


def _rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line where the row starts, cells by column) for every row; pandas wrote these files."""
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 26))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ReferenceFormatError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise ReferenceFormatError(f"{path}: not UTF-8 text ({err.reason})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ReferenceFormatError(f"{path}:1: empty file: expected a header row") from None
    except csv.Error as err:
        raise ReferenceFormatError(f"{path}:1: invalid CSV: {err}") from None
    missing = [c for c in ("k", "skills", "topic") if c not in header]
    if missing:
        raise ReferenceFormatError(
            f"{path}:1: not a Skill-Mix records.csv: no column(s) {', '.join(missing)}"
        )
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise ReferenceFormatError(f"{path}:{line}: invalid CSV: {err}") from None
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise ReferenceFormatError(
                f"{path}:{line}: {len(cells)} cells for {len(header)} header columns"
            )
        yield line, dict(zip(header, cells, strict=True))


def _item(cells: dict[str, str], path: Path, line: int) -> tuple[int, tuple[str, ...], str]:
    skills = split_skills(cells["skills"])
    topic = " ".join(cells["topic"].split())
    if not skills or not topic:
        raise ReferenceFormatError(f"{path}:{line}: empty skills or topic")
    try:
        k = int(float(cells["k"]))
    except ValueError:
        raise ReferenceFormatError(f"{path}:{line}: k is '{cells['k']}', not a number") from None
    if k != len(skills):
        raise ReferenceFormatError(
            f"{path}:{line}: k is {k} but {len(skills)} skill(s) are listed: {', '.join(skills)}"
        )
    return k, skills, topic


def _turns(cells: dict[str, str]) -> tuple[Turn, ...]:
    """The conversation: for each index, the first two role columns in header order."""
    by_index: dict[int, list[str]] = {}
    for name in cells:
        match = _TURN_COLUMN.match(name)
        if match is None or match["role"] in _NOT_TURNS:
            continue
        by_index.setdefault(int(match["index"]), []).append(name)
    turns = []
    for index in sorted(by_index):
        names = by_index[index]
        if len(names) < 2:
            break
        turns.append(Turn(user=cells[names[0]], assistant=cells[names[1]]))
    return tuple(turns)


def _optional_number(cell: str, where: str) -> float | None:
    cell = cell.strip()
    if not cell:
        return None
    if cell in ("True", "False"):
        return float(cell == "True")
    try:
        return float(cell)
    except ValueError:
        raise ReferenceFormatError(f"{where}: '{cell}' is not a number") from None


def _optional_int(cell: str, where: str) -> int | None:
    value = _optional_number(cell, where)
    return None if value is None else int(value)
