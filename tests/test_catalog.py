from pathlib import Path

import pytest

from skillmix.catalog.load import CatalogError, load_catalog, validate_catalog


def test_builtin_catalog_meets_the_spec():
    cat = load_catalog()
    assert len(cat.skills) >= 100
    assert len(cat.topics) >= 100
    assert len(cat.categories) >= 6
    assert all(s.definition and s.example and s.name for s in cat.skills)
    assert len({s.name.lower() for s in cat.skills}) == len(cat.skills)


def test_content_hash_ignores_file_order_and_format(tmp_path: Path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text(
        "skills:\n"
        "  - {name: metaphor, category: literary, definition: d1, example: e1}\n"
        "  - {name: irony, category: literary, definition: d2, example: e2, aliases: [ironies]}\n"
        "topics: [sewing, dueling]\n"
    )
    csv_skills = tmp_path / "skills.csv"
    csv_skills.write_text(
        "name,category,definition,example,aliases\n"
        "irony,literary,d2,e2,ironies\n"
        "metaphor,literary,d1,e1,\n"
    )
    jsonl_topics = tmp_path / "topics.jsonl"
    jsonl_topics.write_text('{"name": "dueling"}\n\n{"type": "topic", "name": "sewing"}\n')
    a = load_catalog([yaml_file])
    b = load_catalog([csv_skills, jsonl_topics])
    assert a.content_hash == b.content_hash
    assert a.skill("irony").aliases == ("ironies",)


def test_every_problem_named_with_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "skills:\n"
        "  - name: metaphor\n"  # line 2
        "    category: literary\n"
        "    definition: a figure\n"
        "    example: time is a thief\n"
        "  - name: Metaphor\n"  # line 6: duplicate name
        "    category: literary\n"
        "    definition: again\n"
        "    example: x\n"
        "  - name: irony\n"  # line 10: empty definition, missing example
        "    category: literary\n"
        "    definition: ''\n"
        "topics: [sewing]\n"
    )
    with pytest.raises(CatalogError) as info:
        load_catalog([bad])
    text = str(info.value)
    assert f"{bad}:6: duplicate skill name 'Metaphor' (first at {bad}:2)" in text
    assert f"{bad}:10: skill 'irony': missing field 'example'" in text
    assert f"{bad}:10: skill 'irony': empty field 'definition'" in text
    assert len(info.value.problems) == 3


def test_csv_and_jsonl_problems_have_lines(tmp_path: Path):
    skills = tmp_path / "s.csv"
    skills.write_text("name,category,definition,example\nmetaphor,literary,,e\nirony,literary,d\n")
    topics = tmp_path / "t.jsonl"
    topics.write_text('{"name": "sewing"}\n{not json\n')
    problems = validate_catalog([skills, topics])
    rendered = [str(p) for p in problems]
    assert f"{skills}:2: skill 'metaphor': empty field 'definition'" in rendered
    assert any(r.startswith(f"{skills}:3:") and "'example'" in r for r in rendered)
    assert any(r.startswith(f"{topics}:2: invalid JSON") for r in rendered)


def test_invalid_yaml_and_missing_file(tmp_path: Path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("skills:\n  - name: [unclosed\n")
    problems = validate_catalog([broken, tmp_path / "nope.csv"])
    assert problems[0].file == str(broken) and problems[0].line >= 2
    assert "invalid YAML" in problems[0].message
    assert problems[1].message == "file not found"


def test_unknown_fields_are_reported(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text(
        "skills:\n  - {name: a, category: c, definition: d, example: e, defintion: typo}\n"
        "topics: [t]\n"
    )
    [problem] = validate_catalog([f])
    assert problem.line == 2 and "unknown field 'defintion'" in problem.message
