"""Write DataRecords as training sets: JSONL (chat messages), Parquet and a Hugging Face dataset.

All three hold the same rows and columns. `messages` is a list of {role, content} (an
Arrow list of structs in Parquet and in the dataset, which is what chat-template trainers
expect); `skills` is a list of strings; the free-form maps (`judge_verdicts`, `scores`,
`provenance`) are real objects in JSONL and JSON text in the columnar formats, so that
one schema fits every pipeline and every run.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from skillmix.data.dedup import Rejection
from skillmix.data.records import DataRecord
from skillmix.errors import InputError, SkillmixError

FORMATS = ("jsonl", "parquet", "hf")
FILE_NAMES = {"jsonl": "records.jsonl", "parquet": "records.parquet", "hf": "hf"}
JSON_COLUMNS = ("judge_verdicts", "scores", "provenance")
INSTALL_HINT = "pip install 'skillmix[data]'"


class MissingDependency(SkillmixError, RuntimeError):
    """An optional package the export needs is not installed."""


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependency(
            f"writing this format needs the '{module.split('.')[0]}' package",
            hint=f"{INSTALL_HINT}, or choose other --formats (jsonl needs no extra package)",
        ) from err


def parse_formats(value: str | Sequence[str]) -> tuple[str, ...]:
    """'jsonl,parquet' or ["jsonl", "hf"] -> validated format names, in order, no repeats.

    Raises `InputError` naming the unknown ones.
    """
    parts = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    unknown = [p for p in parts if p not in FORMATS]
    if unknown or not parts:
        raise InputError(
            f"unknown export format(s) {unknown or parts}: choose from {', '.join(FORMATS)}"
        )
    return tuple(dict.fromkeys(parts))


def check_formats(value: str | Sequence[str]) -> tuple[str, ...]:
    """Validate format names and import what they need now, before any long job starts."""
    chosen = parse_formats(value)
    if {"parquet", "hf"} & set(chosen):
        _require("pyarrow")
    if "hf" in chosen:
        _require("datasets")
    return chosen


def _check_messages(record: DataRecord) -> None:
    for message in record.messages:
        if set(message) != {"role", "content"} or not all(
            isinstance(v, str) for v in message.values()
        ):
            raise ValueError(
                f"record {record.id}: each message must be {{'role': str, 'content': str}}, "
                f"got {sorted(message)}"
            )


def arrow_schema() -> Any:
    """The columnar schema shared by Parquet and the Hugging Face dataset."""
    pa = _require("pyarrow")
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema(
        [
            ("id", pa.string()),
            ("pipeline", pa.string()),
            ("messages", pa.list_(message)),
            ("skills", pa.list_(pa.string())),
            ("teacher", pa.string()),
            ("topic", pa.string()),
            ("query_type", pa.string()),
            ("k", pa.int64()),
            ("judge_verdicts", pa.string()),
            ("scores", pa.string()),
            ("shirker", pa.bool_()),
            ("provenance", pa.string()),
        ]
    )


def columnar_row(record: DataRecord) -> dict[str, Any]:
    """A record as one row of the columnar formats (free-form maps as JSON text)."""
    row = record.to_dict()
    for column in JSON_COLUMNS:
        row[column] = json.dumps(row[column], sort_keys=True, ensure_ascii=False)
    return row


def arrow_table(records: Sequence[DataRecord]) -> Any:
    pa = _require("pyarrow")
    schema = arrow_schema()
    rows = [columnar_row(r) for r in records]
    return pa.Table.from_pylist(rows, schema=schema)


def write_jsonl(records: Iterable[DataRecord], path: str | Path) -> int:
    """One JSON object per line: the chat messages and every provenance field."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
            n += 1
    return n


def write_rejections(rejected: Iterable[Rejection], path: str | Path) -> int:
    """The rejected records, one JSON object per line, each with its `reason` and `detail`."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as f:
        for r in rejected:
            row = {"reason": r.reason, "detail": r.detail, **r.record.to_dict()}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_jsonl(path: str | Path) -> list[DataRecord]:
    """Records back from a JSONL export."""
    with Path(path).open(encoding="utf-8") as f:
        return [DataRecord(**json.loads(line)) for line in f if line.strip()]


def _clear_saved_dataset(path: Path) -> None:
    """Remove an earlier `save_to_disk` folder at `path` (and refuse to touch anything else)."""
    if not path.exists():
        return
    if path.is_dir() and (path / "state.json").exists():
        shutil.rmtree(path)
    elif path.is_dir() and not any(path.iterdir()):
        path.rmdir()
    else:
        raise FileExistsError(f"{path} exists and is not a saved dataset: choose another --out")


def export_records(
    records: Iterable[DataRecord],
    out_dir: str | Path,
    formats: Sequence[str] = FORMATS,
    *,
    description: str = "",
) -> dict[str, Path]:
    """Write records to `out_dir` in each format; return {format: path written}.

    - jsonl: `records.jsonl`, loadable with `pandas.read_json(path, lines=True)`;
    - parquet: `records.parquet`, loadable with `pandas.read_parquet`;
    - hf: `hf/`, a `datasets.Dataset` saved with `save_to_disk` (load it with
      `datasets.load_from_disk`); `description` becomes its `info.description`.

    Parquet needs `pyarrow` and hf needs `datasets` (`pip install 'skillmix[data]'`);
    a missing package raises MissingDependency before anything is written.
    """
    chosen = parse_formats(formats)
    records = list(records)
    for record in records:
        _check_messages(record)
    table = arrow_table(records) if {"parquet", "hf"} & set(chosen) else None
    datasets = _require("datasets") if "hf" in chosen else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for fmt in chosen:
        path = out / FILE_NAMES[fmt]
        if fmt == "jsonl":
            write_jsonl(records, path)
        elif fmt == "parquet":
            pq = _require("pyarrow.parquet")
            pq.write_table(table, path)
        else:
            assert datasets is not None and table is not None
            features = datasets.Features.from_arrow_schema(table.schema)
            info = datasets.DatasetInfo(description=description, features=features)
            dataset = datasets.Dataset.from_dict(table.to_pydict(), features=features, info=info)
            _clear_saved_dataset(path)
            bars = not datasets.utils.are_progress_bars_disabled()
            datasets.utils.disable_progress_bars()  # the caller shows its own progress
            try:
                # One shard at least: an empty dataset saved with 0 shards cannot be loaded.
                dataset.save_to_disk(str(path), num_shards=max(1, len(records) // 100_000))
            finally:
                if bars:
                    datasets.utils.enable_progress_bars()
        paths[fmt] = path
    return paths
