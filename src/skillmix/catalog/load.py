"""Load catalogs from YAML, JSONL, CSV and plain topic lists, and say where every problem is.

Every file may hold skills, topics or both. A problem is reported with the file and the
line it is on, and all problems of a file are reported together, so a user fixes them in
one pass instead of one per run. Files may start with a UTF-8 byte order mark.

The original Skill-Mix scripts' files are read as they are:

* `skills.csv` with the header `category,skill,definition,example,comments,status,added by`
  (any CSV whose header has `skill` and no `name`): `skill` is the name, `comments` and
  `added by` are notes and are ignored, and `status` decides whether a row is part of the
  catalog. Rows marked `remove`, `removed`, `in review` or `maybe` are left out, as the
  original scripts left them out; every other status (empty, `keep`, ...) is loaded.
* `topics.txt`: one topic per line; surrounding whitespace and blank lines are ignored.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from skillmix.catalog.model import Catalog, Skill, Topic, slug
from skillmix.errors import InputError
from skillmix.userfiles import YAML_LOADER

SKILL_FIELDS = ("id", "name", "category", "definition", "example", "aliases")
TOPIC_FIELDS = ("id", "name", "category")
REQUIRED_SKILL_FIELDS = ("name", "category", "definition", "example")
BUILTIN = "builtin"
# The original scripts' skills.csv: `skill` is the name; these columns are notes.
REFERENCE_NOTE_COLUMNS = ("comments", "added by")
# Statuses whose rows the original scripts did not load (compared case-insensitively).
EXCLUDED_STATUSES = frozenset({"remove", "removed", "in review", "maybe"})


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class CatalogError(InputError):
    """A catalog could not be loaded; `problems` lists every one found, with file and line."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(f"catalog has {len(self.problems)} problem(s):\n{shown}{more}")


@dataclass
class _Record:
    """One raw skill or topic entry with the place it came from."""

    kind: str  # "skill" | "topic"
    fields: dict[str, Any]
    file: str
    line: int


def load_catalog(
    sources: Sequence[str | Path] | str | Path = BUILTIN, *, partial: bool = False
) -> Catalog:
    """Load and validate a catalog from one or more files (or the built-in one).

    Raises `CatalogError` listing every problem with its file and line. With `partial`,
    a catalog without skills or without topics is accepted (for callers that complete it).
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    if not sources:
        sources = [BUILTIN]
    records: list[_Record] = []
    problems: list[Problem] = []
    versions: list[str] = []
    names: list[str] = []
    for source in sources:
        if str(source) == BUILTIN:
            for filename in ("skills.yaml", "topics.yaml"):
                text = resources.files("skillmix.catalog").joinpath("data", filename).read_text()
                recs, probs, version = _parse_yaml(text, f"<builtin>/{filename}")
                records += recs
                problems += probs
                versions.append(version)
            names.append("builtin")
            continue
        path = Path(source)
        if not path.is_file():
            problems.append(Problem(str(path), 0, "file not found"))
            continue
        try:
            # utf-8-sig: a leading byte order mark (common in spreadsheet exports) is dropped.
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as err:
            problems.append(Problem(str(path), _line_of(err), "not UTF-8 text"))
            continue
        suffix = path.suffix.lower()
        if suffix in (".yaml", ".yml"):
            recs, probs, version = _parse_yaml(text, str(path))
            versions.append(version)
        elif suffix == ".jsonl":
            recs, probs = _parse_jsonl(text, str(path))
        elif suffix in (".csv", ".tsv"):
            recs, probs = _parse_csv(text, str(path), delimiter="\t" if suffix == ".tsv" else ",")
        elif suffix == ".txt":
            recs, probs = _parse_topic_lines(text, str(path))
        else:
            recs, probs = (
                [],
                [
                    Problem(
                        str(path),
                        0,
                        "unknown format: use .yaml, .jsonl, .csv or .txt (one topic per line)",
                    )
                ],
            )
        records += recs
        problems += probs
        names.append(path.stem)
    skills, topics, more = _build(records)
    problems += more
    if not problems and not partial:
        if not skills:
            problems.append(Problem(", ".join(map(str, sources)), 0, "catalog has no skills"))
        if not topics:
            problems.append(Problem(", ".join(map(str, sources)), 0, "catalog has no topics"))
    if problems:
        raise CatalogError(problems)
    return Catalog(
        name="+".join(names),
        skills=tuple(skills),
        topics=tuple(topics),
        version="+".join(v for v in versions if v),
    )


def validate_catalog(sources: Sequence[str | Path]) -> list[Problem]:
    """Every problem in the given catalog files (empty when the catalog is valid)."""
    try:
        load_catalog(sources)
    except CatalogError as err:
        return err.problems
    return []


# --- YAML -----------------------------------------------------------------------------


def _parse_yaml(text: str, file: str) -> tuple[list[_Record], list[Problem], str]:
    try:
        root = yaml.compose(text, Loader=YAML_LOADER)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(err, "problem", None) or str(err)
        return [], [Problem(file, line, f"invalid YAML: {problem}")], ""
    if root is None:
        return [], [Problem(file, 1, "file is empty")], ""
    records: list[_Record] = []
    problems: list[Problem] = []
    version = ""
    if isinstance(root, yaml.MappingNode):
        for key_node, value_node in root.value:
            key = key_node.value
            if key == "version":
                version = str(value_node.value)
            elif key in ("skills", "topics"):
                kind = key[:-1]
                if not isinstance(value_node, yaml.SequenceNode):
                    problems.append(Problem(file, _line(value_node), f"'{key}' must be a list"))
                    continue
                for entry in value_node.value:
                    records += _yaml_entry(entry, kind, file, problems)
            else:
                problems.append(
                    Problem(file, _line(key_node), f"unknown key '{key}' (expected skills, topics)")
                )
    elif isinstance(root, yaml.SequenceNode):
        for entry in root.value:
            records += _yaml_entry(entry, None, file, problems)
    else:
        problems.append(Problem(file, 1, "expected a mapping with 'skills' and/or 'topics'"))
    return records, problems, version


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _yaml_entry(
    node: yaml.Node, kind: str | None, file: str, problems: list[Problem]
) -> list[_Record]:
    line = _line(node)
    if isinstance(node, yaml.ScalarNode) and kind == "topic":
        return [_Record("topic", {"name": node.value}, file, line)]
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(file, line, f"expected a {kind or 'skill or topic'} mapping"))
        return []
    fields: dict[str, Any] = {}
    for key_node, value_node in node.value:
        if isinstance(value_node, yaml.SequenceNode):
            fields[key_node.value] = [v.value for v in value_node.value]
        elif isinstance(value_node, yaml.ScalarNode):
            fields[key_node.value] = value_node.value
        else:
            problems.append(Problem(file, _line(value_node), f"'{key_node.value}' must be text"))
    return [_Record(kind or _infer_kind(fields), fields, file, line)]


# --- JSONL and CSV ----------------------------------------------------------------------


def _parse_jsonl(text: str, file: str) -> tuple[list[_Record], list[Problem]]:
    records: list[_Record] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            problems.append(Problem(file, number, f"invalid JSON: {err.msg}"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(file, number, "each line must be a JSON object"))
            continue
        kind = str(obj.pop("type", "")) or _infer_kind(obj)
        if kind not in ("skill", "topic"):
            problems.append(Problem(file, number, f"unknown type '{kind}' (use skill or topic)"))
            continue
        records.append(_Record(kind, obj, file, number))
    return records, problems


def _parse_csv(text: str, file: str, delimiter: str) -> tuple[list[_Record], list[Problem]]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        header = []
    except csv.Error as err:
        return [], [Problem(file, reader.line_num or 1, f"invalid CSV: {err}")]
    if not any(header):
        return [], [Problem(file, 1, "empty file: expected a header row")]
    reference = "skill" in header and "name" not in header
    records: list[_Record] = []
    problems: list[Problem] = []
    while True:
        line = reader.line_num + 1  # where the next record starts (it may span lines)
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            problems.append(Problem(file, line, f"invalid CSV: {err}"))
            break
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header):
            problems.append(Problem(file, line, "more cells than header columns"))
            continue
        cells_by_column = {k: v.strip() for k, v in zip(header, cells, strict=False) if k}
        kept = _reference_fields(cells_by_column) if reference else cells_by_column
        if kept is None:
            continue
        fields: dict[str, Any] = dict(kept)
        if "aliases" in fields:
            fields["aliases"] = _split_aliases(fields["aliases"])
        kind = fields.pop("type", "") or _infer_kind(fields)
        records.append(_Record(kind, fields, file, line))
    return records, problems


def _reference_fields(fields: dict[str, str]) -> dict[str, str] | None:
    """A row of the original scripts' skills.csv in our fields; None for a row left out."""
    status = " ".join(fields.pop("status", "").split()).casefold()
    if status in EXCLUDED_STATUSES:
        return None
    fields = {k: v for k, v in fields.items() if k not in REFERENCE_NOTE_COLUMNS}
    fields["name"] = fields.pop("skill")
    return fields


def _parse_topic_lines(text: str, file: str) -> tuple[list[_Record], list[Problem]]:
    """A topics.txt of the original scripts: one topic per line, blank lines ignored."""
    records = [
        _Record("topic", {"name": raw.strip()}, file, number)
        for number, raw in enumerate(text.splitlines(), start=1)
        if raw.strip()
    ]
    if not records:
        return [], [Problem(file, 1, "no topics: expected one topic per line")]
    return records, []


def _line_of(err: UnicodeDecodeError) -> int:
    return err.object[: err.start].count(b"\n") + 1


def _split_aliases(value: str) -> list[str]:
    sep = "|" if "|" in value else ";"
    return [a.strip() for a in value.split(sep) if a.strip()]


def _infer_kind(fields: dict[str, Any]) -> str:
    return "skill" if "definition" in fields or "example" in fields else "topic"


# --- building and validating ----------------------------------------------------------------


def _build(records: Iterable[_Record]) -> tuple[list[Skill], list[Topic], list[Problem]]:
    skills: list[Skill] = []
    topics: list[Topic] = []
    problems: list[Problem] = []
    seen: dict[tuple[str, str, str], _Record] = {}

    def check_unique(kind: str, field: str, value: str, rec: _Record) -> bool:
        key = (kind, field, value.casefold())
        if key in seen:
            first = seen[key]
            problems.append(
                Problem(
                    rec.file,
                    rec.line,
                    f"duplicate {kind} {field} '{value}' (first at {first.file}:{first.line})",
                )
            )
            return False
        seen[key] = rec
        return True

    for rec in records:
        f = rec.fields
        allowed = SKILL_FIELDS if rec.kind == "skill" else TOPIC_FIELDS
        for key in f:
            if key not in allowed:
                problems.append(
                    Problem(
                        rec.file,
                        rec.line,
                        f"unknown field '{key}' for a {rec.kind} (allowed: {', '.join(allowed)})",
                    )
                )
        required = REQUIRED_SKILL_FIELDS if rec.kind == "skill" else ("name",)
        missing = [k for k in required if k not in f]
        empty = [k for k in required if k in f and not str(f[k] or "").strip()]
        label = f"{rec.kind} '{f.get('name') or f.get('id') or '?'}'"
        for key in missing:
            problems.append(Problem(rec.file, rec.line, f"{label}: missing field '{key}'"))
        for key in empty:
            problems.append(Problem(rec.file, rec.line, f"{label}: empty field '{key}'"))
        if missing or empty:
            continue
        name = " ".join(str(f["name"]).split())
        item_id = str(f.get("id") or slug(name)).strip()
        if check_unique(rec.kind, "name", name, rec):
            check_unique(rec.kind, "id", item_id, rec)
        if rec.kind == "skill":
            aliases = f.get("aliases") or []
            if isinstance(aliases, str):
                aliases = _split_aliases(aliases)
            skills.append(
                Skill(
                    id=item_id,
                    name=name,
                    category=str(f["category"]).strip(),
                    definition=" ".join(str(f["definition"]).split()),
                    example=" ".join(str(f["example"]).split()),
                    aliases=tuple(str(a).strip() for a in aliases if str(a).strip()),
                )
            )
        else:
            topics.append(Topic(id=item_id, name=name, category=str(f.get("category") or "")))
    return skills, topics, problems
