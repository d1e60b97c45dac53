"""Catalog files in the original Skill-Mix scripts' formats (skills.csv, topics.txt), and BOMs."""

from pathlib import Path

import pytest

from conftest import skillmix
from skillmix.catalog.load import CatalogError, load_catalog

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
SKILLS = FIXTURES / "skills.csv"
TOPICS = FIXTURES / "topics.txt"
HEADER = "category,skill,definition,example,comments,status,added by\n"


def test_their_skills_and_topics_validate_on_the_command_line(tmp_path: Path):
    proc = skillmix("catalog", "validate", str(SKILLS), str(TOPICS), cwd=tmp_path)
    assert "ok: 4 skills in 4 categories, 3 topics" in proc.stdout


def test_their_columns_map_onto_ours_and_removed_rows_are_left_out():
    catalog = load_catalog([SKILLS, TOPICS])
    names = {s.name for s in catalog.skills}
    # "hindsight bias" is marked remove and "white lie" in review: not loaded, as there.
    assert names == {
        "metaphor",
        "red herring",
        "modus ponens (affirming the antecedent)",
        "folk physics",
    }
    modus = catalog.skill("modus_ponens_affirming_the_antecedent")
    assert modus.category == "logical"
    assert modus.definition == 'From "if P then Q" and "P", concluding "Q".'
    assert catalog.skill("metaphor").example == '"The city is an anthill at rush hour."'
    assert [t.name for t in catalog.topics] == ["Falconry", "Knitting", "Lighthouses"]


@pytest.mark.parametrize("status", ["remove", "Removed", " in review ", "MAYBE"])
def test_excluded_statuses_in_any_case(tmp_path: Path, status: str):
    skills = tmp_path / "skills.csv"
    skills.write_text(HEADER + f"literary,irony,d,e,,{status},\nliterary,metaphor,d,e,,keep,\n")
    catalog = load_catalog([skills, TOPICS])
    assert [s.name for s in catalog.skills] == ["metaphor"]


def test_problems_in_their_skills_csv_name_the_line_a_row_starts_on(tmp_path: Path):
    skills = tmp_path / "skills.csv"
    skills.write_text(
        HEADER
        + 'literary,metaphor,d,"an example\nover two lines",,,\n'  # lines 2-3
        + "rhetorical,red herring,,an example,,,\n"  # line 4: no definition
        + "logical,modus ponens,d,e,,,,one cell too many\n"  # line 5
    )
    with pytest.raises(CatalogError) as info:
        load_catalog([skills, TOPICS])
    text = str(info.value)
    assert f"{skills}:4: skill 'red herring': empty field 'definition'" in text
    assert f"{skills}:5: more cells than header columns" in text
    assert len(info.value.problems) == 2


def test_topics_txt_ignores_blank_lines_and_surrounding_space(tmp_path: Path):
    topics = tmp_path / "topics.txt"
    topics.write_text("\n  Sewing \n\n\tDueling\n\n")
    assert [t.name for t in load_catalog([SKILLS, topics]).topics] == ["Dueling", "Sewing"]


def test_topics_txt_duplicates_and_empty_files_are_problems(tmp_path: Path):
    topics = tmp_path / "topics.txt"
    topics.write_text("Sewing\n\nsewing\n")
    with pytest.raises(CatalogError, match=rf"{topics}:3: duplicate topic name 'sewing'"):
        load_catalog([SKILLS, topics])
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(CatalogError, match=rf"{empty}:1: no topics"):
        load_catalog([SKILLS, empty])


def test_files_with_a_byte_order_mark_load(tmp_path: Path):
    bom = "\ufeff"
    ours = tmp_path / "ours.csv"
    ours.write_text(bom + "name,category,definition,example\nirony,literary,d,e\n")
    theirs = tmp_path / "theirs.csv"
    theirs.write_text(bom + HEADER + "literary,metaphor,d,e,,,\n")
    jsonl = tmp_path / "topics.jsonl"
    jsonl.write_text(bom + '{"name": "sewing"}\n')
    txt = tmp_path / "topics.txt"
    txt.write_text(bom + "dueling\n")
    catalog = load_catalog([ours, theirs, jsonl, txt])
    assert {s.name for s in catalog.skills} == {"irony", "metaphor"}
    assert {t.name for t in catalog.topics} == {"sewing", "dueling"}
    proc = skillmix("catalog", "validate", str(ours), str(jsonl), cwd=tmp_path)
    assert "ok: 1 skills" in proc.stdout


def test_a_file_that_is_not_utf8_is_a_problem_with_its_line(tmp_path: Path):
    topics = tmp_path / "topics.txt"
    topics.write_bytes(b"Sewing\nD\xfceling\n")
    with pytest.raises(CatalogError, match=rf"{topics}:2: not UTF-8 text"):
        load_catalog([SKILLS, topics])
