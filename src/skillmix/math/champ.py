"""CHAMP (Mao et al. 2024): 270 competition math problems with human concept annotations.

The `champ-dataset` wheel ships the data as one JSON file, `champ_dataset/dataset_files/
v0.json`. We locate it with `importlib.util.find_spec` and read it as a file; the package
itself is never imported. Its layout (version 0):

- `problems`: id -> {`_text` (the question; `_raw_text` marks math with `@@`), `category`
  (one of five), `_answer`, `solution.steps[]._text`, `ch_list` (the concepts `C_...` and
  hints `H_...` the annotators attached), `conversations` (the recorded answers of four
  models under 18 prompt settings, keyed "GPT-4|0-Shot"), `fws_annotations` (first wrong
  step of some answers)};
- `concepts`: id -> {`_text`, `name` (or null), `category`, `parent`};
- `hints`: id -> {`_text`}.

In a `MathProblem`, `concepts` are the problem's `C_` ids (the dataset's `concepts` table
gives their text, "name: statement" when the concept has a name) and `hints` the texts of
its `H_` ids, both in annotation order.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from skillmix.errors import InputError
from skillmix.math.problems import MathDataset, MathProblem

NAME = "champ"
DATA_FILE = ("dataset_files", "v0.json")
DEFAULT_SETTING = "0-Shot"


def champ_file() -> Path:
    """The CHAMP JSON file inside the installed `champ-dataset` wheel."""
    spec = importlib.util.find_spec("champ_dataset")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location).joinpath(*DATA_FILE)
        if path.is_file():
            return path
    raise InputError(
        "the CHAMP data file was not found (champ_dataset/dataset_files/v0.json)",
        hint="install it with: pip install 'champ-dataset>=1.0'",
    )


@dataclass(frozen=True)
class RecordedAnswer:
    """One model's recorded answer to a CHAMP problem under one prompt setting."""

    response: str | None  # the worked answer (None when the model produced none)
    summary: str | None  # the model's one-sentence summary of its answer
    truncated: bool  # the model hit its length limit while answering


@dataclass(frozen=True)
class _Champ:
    dataset: MathDataset
    # "GPT-4|0-Shot" -> problem id ("champ:P_...") -> the recorded answer
    conversations: dict[str, dict[str, RecordedAnswer]]


def load_champ() -> MathDataset:
    """All 270 CHAMP problems in the file's order (by category, then number)."""
    return _champ().dataset


def champ_settings() -> tuple[str, ...]:
    """The prompt settings CHAMP recorded answers under ("0-Shot", "5-Shot", ...)."""
    return tuple(dict.fromkeys(key.split("|", 1)[1] for key in _champ().conversations))


def champ_models() -> tuple[str, ...]:
    """The models whose answers CHAMP recorded ("GPT-3.5", "GPT-4", ...)."""
    return tuple(dict.fromkeys(key.split("|", 1)[0] for key in _champ().conversations))


def champ_recorded_answers(setting: str = DEFAULT_SETTING) -> dict[str, dict[str, RecordedAnswer]]:
    """model -> problem id -> its recorded answer, for one prompt setting."""
    settings = champ_settings()
    if setting not in settings:
        raise InputError(
            f"CHAMP has no recorded answers for the setting {setting!r}",
            hint=f"choose one of: {', '.join(settings)}",
        )
    return {
        key.split("|", 1)[0]: dict(answers)
        for key, answers in _champ().conversations.items()
        if key.split("|", 1)[1] == setting
    }


def champ_model_answers(
    dataset: MathDataset | None = None,
    *,
    setting: str = DEFAULT_SETTING,
    summary: bool = False,
) -> dict[str, dict[str, str]]:
    """model -> problem id -> the answer that model gave, as recorded in CHAMP.

    Real student answers without running those models. `setting` is CHAMP's prompt
    setting ("0-Shot": the bare problem; see `champ_settings`); `summary` gives the model's
    one-sentence summary of its answer instead of the worked answer. Only problems of
    `dataset` (default: all of CHAMP) are included, and only answers that exist (a model
    that hit its length limit in an earlier turn left none). Truncated answers are kept.

    The models were not asked to box their answers, and about half of CHAMP's gold
    answers are prose ("At least 1 number"), so `check_answer` finds no final answer in
    most of these texts (GPT-4, 0-Shot: 253 of 270): grade them with a judge.
    """
    if dataset is not None and dataset.name != NAME:
        raise InputError(f"recorded model answers exist only for CHAMP, not {dataset.name!r}")
    wanted = None if dataset is None else {p.id for p in dataset.problems}
    result: dict[str, dict[str, str]] = {}
    for model, answers in champ_recorded_answers(setting).items():
        texts = {}
        for problem_id, answer in answers.items():
            text = answer.summary if summary else answer.response
            if text is not None and (wanted is None or problem_id in wanted):
                texts[problem_id] = text
        result[model] = texts
    return result


def _champ() -> _Champ:
    path = champ_file()
    return _read(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=2)
def _read(path: str, mtime_ns: int) -> _Champ:  # the modification time keys the cache
    try:
        data = orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as err:
        raise InputError(f"{path}: the CHAMP file is not valid JSON: {err}") from None
    try:
        return _parse(data, path)
    except (KeyError, TypeError, AttributeError) as err:
        raise InputError(
            f"{path}: the CHAMP file is not in the layout this version reads ({err!r})",
            hint="install a champ-dataset release with dataset_files/v0.json (1.0)",
        ) from None


def _parse(data: dict[str, Any], path: str) -> _Champ:
    concepts = {cid: _concept_text(entry) for cid, entry in data["concepts"].items()}
    hints = {hid: str(entry["_text"]) for hid, entry in data["hints"].items()}
    problems = []
    conversations: dict[str, dict[str, RecordedAnswer]] = {}
    for raw_id, entry in data["problems"].items():
        problem_id = f"{NAME}:{raw_id}"
        annotations = list(dict.fromkeys(entry["ch_list"]))
        problems.append(
            MathProblem(
                id=problem_id,
                question=str(entry["_text"]),
                answer=str(entry["_answer"]),
                solution="\n".join(str(step["_text"]) for step in entry["solution"]["steps"]),
                category=str(entry["category"]),
                concepts=tuple(a for a in annotations if a in concepts),
                hints=tuple(hints[a] for a in annotations if a in hints),
            )
        )
        for key, conversation in entry["conversations"].items():
            answer = _recorded_answer(conversation["messages"])
            conversations.setdefault(key, {})[problem_id] = answer
    dataset = MathDataset.build(NAME, path, problems, concepts)
    return _Champ(dataset, conversations)


def _concept_text(entry: dict[str, Any]) -> str:
    text = str(entry["_text"])
    return f"{entry['name']}: {text}" if entry.get("name") else text


def _recorded_answer(messages: Iterable[dict[str, Any]]) -> RecordedAnswer:
    """The model's worked answer (its last turn but one) and its summary (its last turn)."""
    turns = [m for m in messages if str(m["role"]).startswith("Model.")]
    response = turns[-2] if len(turns) >= 2 else None
    summary = turns[-1] if turns else None
    return RecordedAnswer(
        response=None if response is None else response["text"],
        summary=None if summary is None else summary["text"],
        truncated=response is not None and response.get("error") is not None,
    )
