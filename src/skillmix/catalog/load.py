"""Load catalogs from YAML, JSONL and CSV, and say exactly where every problem is.

Every file may hold skills, topics or both. A problem is reported with the file and the
line it is on, and all problems of a file are reported together, so a user fixes them in
one pass instead of one per run.
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

from skillmix.catalog.model import Catalog, Skill, Topic
from skillmix.protocol.rubric import slug

SKILL_FIELDS = ("id", "name", "category", "definition", "example", "aliases")
TOPIC_FIELDS = ("id", "name", "category")
REQUIRED_SKILL_FIELDS = ("name", "category", "definition", "example")
BUILTIN = "builtin"


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class CatalogError(ValueError):
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


def load_catalog(sources: Sequence[str | Path] | str | Path = BUILTIN) -> Catalog:
    """Load and validate a catalog from one or more files (or the built-in one).

    Raises `CatalogError` listing every problem with its file and line.
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
        text = path.read_text(encoding="utf-8")
        suffix = path.suffix.lower()
        if suffix in (".yaml", ".yml"):
            recs, probs, version = _parse_yaml(text, str(path))
            versions.append(version)
        elif suffix == ".jsonl":
            recs, probs = _parse_jsonl(text, str(path))
        elif suffix in (".csv", ".tsv"):
            recs, probs = _parse_csv(text, str(path), delimiter="\t" if suffix == ".tsv" else ",")
        else:
            recs, probs = [], [Problem(str(path), 0, "unknown format: use .yaml, .jsonl or .csv")]
        records += recs
        problems += probs
        names.append(path.stem)
    skills, topics, more = _build(records)
    problems += more
    if not problems:
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
        root = yaml.compose(text)
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
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        return [], [Problem(file, 1, "empty file: expected a header row")]
    records: list[_Record] = []
    problems: list[Problem] = []
    for row in reader:
        line = reader.line_num
        if None in row:
            problems.append(Problem(file, line, "more cells than header columns"))
            continue
        fields = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        if "aliases" in fields:
            fields["aliases"] = _split_aliases(fields["aliases"])
        kind = fields.pop("type", "") or _infer_kind(fields)
        records.append(_Record(kind, fields, file, line))
    return records, problems


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
