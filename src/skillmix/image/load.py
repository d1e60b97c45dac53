"""Load a visual-concept catalog from YAML and say where every problem is.

The file (the built-in one is `image/data/concepts.yaml`):

```yaml
version: "2026.1"
categories:
  - id: object
    role: object
    concepts:
      - cat
      - {name: fox, plural: foxes}
  - id: colour
    role: attribute
    question: "{be} {the_object} {concept}?"    # optional: the role's default otherwise
    concepts: [red, blue]
  - id: number
    role: count
    concepts:
      - {name: two, value: 2}
  - id: spatial
    role: relation
    max: 2                                       # a sample may take two relations
    concepts: [to the left of]
rules:
  - concept: black_and_white_photograph
    excludes: [colour]                           # concept or category ids
    reason: a black-and-white photograph shows no colour
```

A concept written as a bare name gets the id `slug(name)`. Every problem is reported with
the file, the line and the entry it is about, all of them at once (`CatalogError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from skillmix.catalog.load import CatalogError, Problem
from skillmix.catalog.model import slug
from skillmix.image.concepts import ROLES, Category, Concept, ConceptCatalog, Rule
from skillmix.image.wording import (
    PLACEHOLDERS,
    REFERENCE_PLACEHOLDERS,
    phrase_template,
    placeholders,
    question_template,
)
from skillmix.userfiles import YAML_LOADER, read_user_text

BUILTIN = "builtin"
BUILTIN_FILE = "concepts.yaml"
ROOT_KEYS = ("version", "name", "categories", "rules")
CATEGORY_FIELDS = ("id", "name", "role", "max", "question", "phrase", "description", "concepts")
CONCEPT_FIELDS = ("id", "name", "plural", "article", "value", "question", "phrase")
OBJECT_ONLY = ("plural", "article")
RULE_FIELDS = ("concept", "excludes", "reason")


@dataclass
class _Node:
    """A YAML value as plain Python, with the line it starts on."""

    value: Any
    line: int


def load_concept_catalog(source: str | Path = BUILTIN) -> ConceptCatalog:
    """Load and validate a concept catalog: the built-in one, or a YAML (or JSON) file.

    Raises `CatalogError` listing every problem with its file and line.
    """
    if str(source) == BUILTIN:
        text = resources.files("skillmix.image").joinpath("data", BUILTIN_FILE).read_text()
        return parse_concept_catalog(text, f"<builtin>/{BUILTIN_FILE}", name=BUILTIN)
    path = Path(source)
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise CatalogError([Problem(str(path), 0, "a concept catalog is a .yaml (or .json) file")])
    text = read_user_text(path, "concept catalog")
    return parse_concept_catalog(text, str(path), name=path.stem)


def parse_concept_catalog(text: str, file: str, *, name: str = "") -> ConceptCatalog:
    """A concept catalog from YAML text; `file` names it in problems."""
    try:
        root = yaml.compose(text, Loader=YAML_LOADER)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(err, "problem", None) or str(err)
        raise CatalogError([Problem(file, line, f"invalid YAML: {problem}")]) from None
    builder = _Builder(file)
    catalog = builder.build(root, name or Path(file).stem)
    if builder.problems:
        raise CatalogError(builder.problems)
    assert catalog is not None
    return catalog


def _plain(node: yaml.Node) -> Any:
    """A composed YAML node as plain Python values (scalars stay text)."""
    if isinstance(node, yaml.MappingNode):
        return {k.value: _Node(_plain(v), _line(v)) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_Node(_plain(v), _line(v)) for v in node.value]
    return node.value


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


class _Builder:
    """Turns the composed YAML into a catalog, collecting every problem on the way."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []
        self.ids: dict[str, tuple[str, int]] = {}  # id -> (what, line): one namespace

    def problem(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def build(self, root: yaml.Node | None, name: str) -> ConceptCatalog | None:
        if root is None:
            self.problem(1, "file is empty")
            return None
        if not isinstance(root, yaml.MappingNode):
            self.problem(_line(root), "expected a mapping with 'categories' (and 'rules')")
            return None
        top = _plain(root)
        for key, node in top.items():
            if key not in ROOT_KEYS:
                self.problem(node.line, f"unknown key '{key}' (allowed: {', '.join(ROOT_KEYS)})")
        version = _text(top["version"].value) if "version" in top else ""
        name = _text(top["name"].value) if "name" in top else name
        categories: list[Category] = []
        concepts: list[Concept] = []
        if "categories" not in top:
            self.problem(1, "no 'categories': a catalog needs an object category and others")
        elif not isinstance(top["categories"].value, list):
            self.problem(top["categories"].line, "'categories' must be a list")
        else:
            for node in top["categories"].value:
                built = self.category(node)
                if built is not None:
                    categories.append(built[0])
                    concepts += built[1]
        rules: list[Rule] = []
        if "rules" in top:
            if not isinstance(top["rules"].value, list):
                self.problem(top["rules"].line, "'rules' must be a list")
            else:
                rules = [r for r in map(self.rule, top["rules"].value) if r is not None]
        self.check_whole(categories, concepts, top)
        return ConceptCatalog(
            name=name,
            categories=tuple(categories),
            concepts=tuple(concepts),
            rules=tuple(rules),
            version=version,
        )

    # --- categories and concepts ------------------------------------------------------------

    def category(self, node: _Node) -> tuple[Category, list[Concept]] | None:
        if not isinstance(node.value, dict):
            self.problem(node.line, "a category must be a mapping (id, role, concepts, ...)")
            return None
        fields: dict[str, _Node] = node.value
        label = f"category '{_text(_get(fields, 'id') or _get(fields, 'name') or '?')}'"
        for key, value in fields.items():
            if key not in CATEGORY_FIELDS:
                self.problem(
                    value.line,
                    f"{label}: unknown field '{key}' (allowed: {', '.join(CATEGORY_FIELDS)})",
                )
        raw_id, raw_name = _get(fields, "id"), _get(fields, "name")
        if not raw_id and not raw_name:
            self.problem(node.line, "category: needs an 'id' (or a 'name')")
            return None
        category_id = _text(raw_id) or slug(_text(raw_name))
        role = _text(_get(fields, "role"))
        if role not in ROLES:
            where = fields["role"].line if "role" in fields else node.line
            self.problem(where, f"{label}: role must be one of {', '.join(ROLES)} (got {role!r})")
            return None
        cap = self.count_field(fields, "max", label, default=1)
        if role == "object" and cap != 1:
            self.problem(fields["max"].line, f"{label}: an object category takes no 'max'")
        category = Category(
            id=category_id,
            name=_text(raw_name) or category_id,
            role=role,  # type: ignore[arg-type]  # checked against ROLES above
            max=cap,
            question=_text(_get(fields, "question")),
            phrase=_text(_get(fields, "phrase")),
            description=" ".join(_text(_get(fields, "description")).split()),
        )
        self.claim(category_id, label, node.line)
        if role == "object" and (category.question or category.phrase):
            self.problem(node.line, f"{label}: an object category has no question or phrase")
        concepts: list[Concept] = []
        names: dict[str, int] = {}
        values: dict[int, int] = {}
        entries = fields.get("concepts")
        if entries is None or not isinstance(entries.value, list) or not entries.value:
            self.problem(
                entries.line if entries else node.line, f"{label}: 'concepts' must be a list"
            )
            entries = _Node([], node.line)
        for entry in entries.value:
            concept = self.concept(entry, category)
            if concept is None:
                continue
            key = concept.name.casefold()
            if key in names:
                self.problem(
                    entry.line,
                    f"concept '{concept.name}': duplicate name in {label} "
                    f"(first at line {names[key]})",
                )
            names.setdefault(key, entry.line)
            if concept.value is not None:
                if concept.value in values:
                    self.problem(
                        entry.line,
                        f"concept '{concept.name}': value {concept.value} is already taken "
                        f"in {label} (line {values[concept.value]})",
                    )
                values.setdefault(concept.value, entry.line)
            self.check_templates(concept, category, entry.line)
            concepts.append(concept)
        return category, concepts

    def concept(self, node: _Node, category: Category) -> Concept | None:
        if isinstance(node.value, str):
            fields: dict[str, _Node] = {"name": _Node(node.value, node.line)}
        elif isinstance(node.value, dict):
            fields = node.value
        else:
            self.problem(node.line, f"category '{category.id}': a concept is a name or a mapping")
            return None
        name = " ".join(_text(_get(fields, "name")).split())
        label = f"concept '{name or _text(_get(fields, 'id')) or '?'}'"
        for key, value in fields.items():
            if key not in CONCEPT_FIELDS:
                self.problem(
                    value.line,
                    f"{label}: unknown field '{key}' (allowed: {', '.join(CONCEPT_FIELDS)})",
                )
            elif key in OBJECT_ONLY and category.role != "object":
                self.problem(value.line, f"{label}: '{key}' is for objects only")
            elif key in ("question", "phrase") and category.role == "object":
                self.problem(value.line, f"{label}: an object has no '{key}'")
        if not name:
            self.problem(node.line, f"{label}: missing field 'name'")
            return None
        concept_id = _text(_get(fields, "id")) or slug(name)
        self.claim(concept_id, label, node.line)
        count: int | None = None
        if category.role == "count":
            if "value" not in fields:
                self.problem(node.line, f"{label}: a count concept needs a 'value' (2 for two)")
            else:
                count = self.count_field(fields, "value", label, default=1)
        elif "value" in fields:
            self.problem(fields["value"].line, f"{label}: 'value' is for count concepts only")
        return Concept(
            id=concept_id,
            name=name,
            category=category.id,
            plural=_text(_get(fields, "plural")),
            article=_text(_get(fields, "article")),
            value=count,
            question=_text(_get(fields, "question")),
            phrase=_text(_get(fields, "phrase")),
        )

    def count_field(self, fields: dict[str, _Node], key: str, label: str, default: int) -> int:
        if key not in fields:
            return default
        text = _text(fields[key].value)
        if not text.isdigit() or int(text) < 1:
            self.problem(fields[key].line, f"{label}: '{key}' must be a whole number >= 1")
            return default
        return int(text)

    def claim(self, item_id: str, label: str, line: int) -> None:
        """Ids of categories and concepts share one namespace (rules name either)."""
        if item_id in self.ids:
            first, first_line = self.ids[item_id]
            self.problem(
                line, f"{label}: duplicate id '{item_id}' (also {first} at line {first_line})"
            )
            return
        self.ids[item_id] = (label, line)

    def check_templates(self, concept: Concept, category: Category, line: int) -> None:
        if category.role == "object":
            return
        for kind, template in (
            ("question", question_template(concept, category)),
            ("phrase", phrase_template(concept, category)),
        ):
            owner = (
                f"concept '{concept.name}'"
                if getattr(concept, kind)
                else (f"category '{category.id}'")
            )
            try:
                used = placeholders(template)
            except ValueError as err:
                self.problem(line, f"{owner}: {kind} template {template!r} is malformed: {err}")
                continue
            unknown = sorted(used - set(PLACEHOLDERS))
            if unknown:
                self.problem(
                    line,
                    f"{owner}: {kind} template {template!r} uses unknown placeholder(s) "
                    f"{', '.join('{' + u + '}' for u in unknown)} "
                    f"(known: {', '.join(PLACEHOLDERS)})",
                )
            has_reference = bool(used & set(REFERENCE_PLACEHOLDERS))
            if category.role == "relation" and not has_reference:
                self.problem(
                    line,
                    f"{owner}: the {kind} of a relation must name its second object "
                    "({the_reference} or {a_reference})",
                )
            if category.role != "relation" and has_reference:
                self.problem(
                    line, f"{owner}: only relations have a second object to name in a {kind}"
                )

    # --- rules and the whole ------------------------------------------------------------------

    def rule(self, node: _Node) -> Rule | None:
        if not isinstance(node.value, dict):
            self.problem(node.line, "a rule must be a mapping (concept, excludes, reason)")
            return None
        fields: dict[str, _Node] = node.value
        for key, value in fields.items():
            if key not in RULE_FIELDS:
                self.problem(
                    value.line, f"rule: unknown field '{key}' (allowed: {', '.join(RULE_FIELDS)})"
                )
        concept = _text(_get(fields, "concept"))
        raw = _get(fields, "excludes")
        excludes = [_text(x.value) for x in raw] if isinstance(raw, list) else []
        if not concept or not excludes:
            self.problem(node.line, "rule: needs a 'concept' and a list 'excludes'")
            return None
        return Rule(concept, tuple(excludes), " ".join(_text(_get(fields, "reason")).split()))

    def check_whole(
        self, categories: list[Category], concepts: list[Concept], top: dict[str, _Node]
    ) -> None:
        objects = [c for c in categories if c.role == "object"]
        if len(objects) != 1:
            self.problem(
                1, f"a catalog needs exactly one category with role 'object' ({len(objects)} found)"
            )
        if not any(c.role != "object" for c in categories) and categories:
            self.problem(1, "a catalog needs at least one category of concepts besides objects")
        n_objects = sum(1 for c in concepts if objects and c.category == objects[0].id)
        for category in categories:
            if category.role == "relation" and category.max > n_objects - 1:
                self.problem(
                    self.ids.get(category.id, ("", 1))[1],
                    f"category '{category.id}': up to {category.max} relation(s) need "
                    f"{category.max + 1} objects (each relation has its own second object); "
                    f"the catalog has {n_objects}",
                )
        kinds = {c.id: "category" for c in categories} | {c.id: "concept" for c in concepts}
        role = {c.id: c.role for c in categories}
        category_of = {c.id: c.category for c in concepts}
        for node in (
            top["rules"].value if "rules" in top and isinstance(top["rules"].value, list) else []
        ):
            fields = node.value if isinstance(node.value, dict) else {}
            concept = _text(_get(fields, "concept"))
            if concept and kinds.get(concept) != "concept":
                self.problem(node.line, f"rule: unknown concept '{concept}'")
                continue
            if concept and role.get(category_of[concept]) == "object":
                self.problem(node.line, f"rule: '{concept}' is an object, not a concept")
            raw = _get(fields, "excludes")
            for target in raw if isinstance(raw, list) else []:
                name = _text(target.value)
                if name not in kinds:
                    self.problem(target.line, f"rule for '{concept}': unknown id '{name}'")
                elif name == concept:
                    self.problem(target.line, f"rule for '{concept}': it cannot exclude itself")
                elif kinds[name] == "category" and role.get(name) == "object":
                    self.problem(target.line, f"rule for '{concept}': cannot exclude the objects")


def _get(fields: dict[str, _Node], key: str) -> Any:
    node = fields.get(key)
    return None if node is None else node.value


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()
