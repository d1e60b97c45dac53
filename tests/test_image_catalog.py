"""The visual-concept catalog: the built-in one, the loader's errors, the hash, restriction."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import skillmix
from skillmix.catalog.load import CatalogError
from skillmix.image.load import load_concept_catalog, parse_concept_catalog
from skillmix.image.sampling import max_k, sample_concepts

SMALL = """\
version: "1"
categories:
  - id: object
    role: object
    concepts: [cat, dog, {name: fox, plural: foxes}]
  - id: colour
    role: attribute
    concepts: [red, blue]
  - id: number
    role: count
    concepts:
      - {name: two, value: 2}
  - id: spatial
    role: relation
    concepts: [to the left of]
  - id: style
    role: scene
    concepts: [sepia photograph, cartoon]
rules:
  - concept: sepia_photograph
    excludes: [colour]
    reason: no colour shows
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        parse_concept_catalog(text, "cat.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_builtin_catalog_has_eight_categories_and_over_200_concepts():
    catalog = load_concept_catalog()
    categories = {c.id for c in catalog.categories}
    assert categories == {
        "object", "colour", "shape", "texture", "size", "number", "spatial", "style",
    }  # fmt: skip
    assert len(catalog.concepts) >= 200
    assert len(catalog.objects) >= 60
    assert all(len(catalog.in_category(c)) >= 7 for c in categories)
    # every relation has a second object; rules take colour away from colourless styles
    assert catalog.category("spatial").role == "relation"
    assert set(catalog.in_category("colour")) and {
        c.id for c in catalog.in_category("colour")
    } <= catalog.conflicts("black_and_white_photograph")
    assert max_k(catalog) == 8  # colour, shape, texture, size, number, style, 2 relations


def test_the_hash_is_of_the_content_not_the_file():
    first = parse_concept_catalog(SMALL, "a.yaml")
    reordered = SMALL.replace("concepts: [red, blue]", "concepts: [blue, red]").replace(
        "version", "# a comment\nversion"
    )
    assert parse_concept_catalog(reordered, "b.yaml").content_hash == first.content_hash
    changed = SMALL.replace("[red, blue]", "[red, green]")
    assert parse_concept_catalog(changed, "c.yaml").content_hash != first.content_hash
    assert load_concept_catalog().content_hash == load_concept_catalog().content_hash


def test_a_small_catalog_loads_with_defaults():
    catalog = parse_concept_catalog(SMALL, "small.yaml", name="small")
    assert catalog.concept("fox").plural == "foxes"
    assert catalog.concept("two").value == 2
    assert catalog.concept("to_the_left_of").category == "spatial"
    assert catalog.conflicts("red") == {"sepia_photograph"}
    assert catalog.conflicts("sepia_photograph") == {"red", "blue"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("role: attribute\n    concepts: [red", "role: colourful\n    concepts: [red"),
         "cat.yaml:7: category 'colour': role must be one of object, attribute"),
        (("concepts: [red, blue]", "concepts: [red, blue, Red]"),
         "cat.yaml:8: concept 'Red': duplicate name in category 'colour'"),
        (("concepts: [red, blue]", "concepts: [red, blue, cat]"),
         "cat.yaml:8: concept 'cat': duplicate id 'cat'"),
        (("{name: two, value: 2}", "{name: two}"),
         "cat.yaml:12: concept 'two': a count concept needs a 'value'"),
        (("{name: two, value: 2}", "{name: two, value: many}"),
         "cat.yaml:12: concept 'two': 'value' must be a whole number >= 1"),
        (("concepts: [red, blue]", "concepts: [red, {name: blue, plural: blues}]"),
         "cat.yaml:8: concept 'blue': 'plural' is for objects only"),
        (("role: relation\n", "role: relation\n    question: '{be} {the_object} {concept}?'\n"),
         "category 'spatial': the question of a relation must name its second object"),
        (("role: scene\n", "role: scene\n    phrase: 'in {concept} style, {colour}'\n"),
         "category 'style': phrase template 'in {concept} style, {colour}' uses unknown "
         "placeholder(s) {colour}"),
        (("role: scene\n", "role: scene\n    question: 'is it {concept}? {'\n"),
         "category 'style': question template 'is it {concept}? {' is malformed"),
        (("excludes: [colour]", "excludes: [color]"),
         "rule for 'sepia_photograph': unknown id 'color'"),
        (("concept: sepia_photograph", "concept: sepia"), "rule: unknown concept 'sepia'"),
        (("excludes: [colour]", "excludes: [sepia_photograph]"),
         "rule for 'sepia_photograph': it cannot exclude itself"),
        (("concepts: [cat, dog, {name: fox, plural: foxes}]", "concepts: [cat]"),
         "category 'spatial': up to 1 relation(s) need 2 objects"),
        (("  - id: object\n    role: object\n", "  - id: object\n    role: attribute\n"),
         "a catalog needs exactly one category with role 'object' (0 found)"),
        (("    reason: no colour shows\n", "    reason: no colour shows\n    why: it\n"),
         "cat.yaml:23: rule: unknown field 'why'"),
        (("version: \"1\"", "version: \"1\"\ntitle: x"),
         "cat.yaml:2: unknown key 'title' (allowed: version, name, categories, rules)"),
    ],
)  # fmt: skip
def test_problems_name_the_file_the_line_and_the_entry(change, expected):
    old, new = change
    assert old in SMALL
    found = problems_of(SMALL.replace(old, new, 1))
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once():
    text = SMALL.replace("{name: two, value: 2}", "{name: two}").replace(
        "excludes: [colour]", "excludes: [color]"
    )
    found = problems_of(text)
    assert len(found) == 2, found


def test_invalid_yaml_and_empty_files_say_where():
    (broken,) = problems_of("categories: [\n  - x")
    assert broken.startswith("cat.yaml:2: invalid YAML")
    assert problems_of("") == ["cat.yaml:1: file is empty"]
    assert problems_of("- a\n- b\n") == [
        "cat.yaml:1: expected a mapping with 'categories' (and 'rules')"
    ]


def test_a_file_that_is_not_yaml_or_missing(tmp_path: Path):
    with pytest.raises(CatalogError, match=r"a concept catalog is a \.yaml"):
        load_concept_catalog(tmp_path / "concepts.csv")
    with pytest.raises(Exception, match="concept catalog not found"):
        load_concept_catalog(tmp_path / "missing.yaml")


def test_restricting_categories_keeps_the_objects_and_drops_foreign_rules():
    catalog = parse_concept_catalog(SMALL, "small.yaml")
    only_style = catalog.restricted({"style"})
    assert [c.id for c in only_style.categories] == ["object", "style"]
    assert only_style.rules == ()  # the rule excluded colours, which are gone
    assert only_style.content_hash != catalog.content_hash
    with_colour = catalog.restricted({"style", "colour"})
    assert with_colour.conflicts("sepia_photograph") == {"red", "blue"}
    assert max_k(with_colour) == 2
    samples = sample_concepts(with_colour, 2, 2, seed=0)  # red/blue + cartoon only
    assert {s.concept_ids for s in samples} == {("blue", "cartoon"), ("cartoon", "red")}


def test_every_builtin_template_fills(tmp_path: Path):
    """Each concept of the built-in catalog reads as a question and a phrase."""
    catalog = load_concept_catalog()
    samples = sample_concepts(catalog, max_k(catalog), 300, seed=5)
    seen = set()
    for sample in samples:
        for concept in sample.describe(catalog)["concepts"]:
            seen.add(concept["id"])
            assert concept["question"][0].isupper() and concept["question"].endswith("?")
            assert "{" not in concept["question"] + concept["phrase"]
    assert len(seen) > 100


def test_the_catalog_command_checks_a_file(tmp_path: Path):
    good = tmp_path / "small.yaml"
    good.write_text(SMALL)
    out = skillmix("image", "catalog", str(good), cwd=tmp_path).stdout
    assert "ok: 9 concepts in 5 categories, 1 rule(s); k up to 4" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.replace("{name: two, value: 2}", "{name: two}"))
    proc = skillmix("image", "catalog", str(bad), cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert f"{bad}:12: concept 'two': a count concept needs a 'value'" in proc.stderr
    builtin = skillmix("image", "catalog", "--categories", "colour,number", cwd=tmp_path).stdout
    assert "k up to 2" in builtin
    unknown = skillmix("image", "catalog", "--categories", "smell", cwd=tmp_path, check=False)
    assert unknown.returncode == 1 and "unknown concept category smell" in unknown.stderr


def test_the_yaml_parses_as_plain_yaml():
    """The data file stays readable by any YAML reader, not only ours."""
    from importlib import resources

    text = resources.files("skillmix.image").joinpath("data", "concepts.yaml").read_text()
    data = yaml.safe_load(text)
    assert {c["id"] for c in data["categories"]} >= {"object", "colour", "style"}
