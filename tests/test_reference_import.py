"""`skillmix import reference`: the original scripts' output folders as runs, compared with ours.

The fixture (tests/fixtures/reference, our wording in their formats) holds one
generation-round folder with two students, one judge and three grading rounds:

alpha-7b, item 1 (metaphor, red herring; Knitting), one sentence:
  rounds 1-2 are clean tables; round 3 lists its rows in another order, so their
  positional reading gives red herring the sense value (1, ours 0) and sense the red
  herring value (0, ours 1). Ours: red herring 0 by vote, skill fraction 0.5; theirs
  (rounded mean) all 1: full marks.
alpha-7b, item 2 (modus ponens, folk physics; Falconry), two sentences on two lines:
  their regular expression counts one (sentence point 1), our segmenter two (0);
  round 2's table has no topic row, which our parser must refuse.
beta-chat, item 1: three identical clean tables (as their scripts copied one sample);
  both readings agree. beta-chat, item 2: a prose verdict on the skills only, which our
  parser refuses (unscored); their scripts took the two numbers and padded with 0.
"""

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import skillmix
from skillmix.catalog.load import load_catalog
from skillmix.prompts.rubric import build_rubric
from skillmix.reference import import_reference
from skillmix.reference.formats import (
    GradingFolder,
    GradingRow,
    ReferenceFormatError,
    RoundFolder,
    parse_grading_folder,
    parse_points,
    parse_round_folder,
    split_skills,
)
from skillmix.reference.importer import their_points
from skillmix.scoring.reference import named_by_substring, their_scores
from skillmix.store import Store

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
ROUND = FIXTURES / "test" / "k2_s7_vdefault_r1"
TABLES = ("runs", "items", "calls", "run_calls", "generations", "grades", "reference_points")


def _import(tmp_path: Path, source: Path, *extra: str) -> dict:
    proc = skillmix(
        "import", "reference", str(source), "--store", str(tmp_path / "s.sqlite"), "--json",
        *extra, cwd=tmp_path,
    )  # fmt: skip
    return json.loads(proc.stdout)


def _report(tmp_path: Path, run_id: str) -> dict:
    proc = skillmix(
        "report", run_id, "--store", str(tmp_path / "s.sqlite"), "--json",
        "--out", str(tmp_path / "out"), cwd=tmp_path,
    )  # fmt: skip
    return json.loads(proc.stdout)


def _counts(store: Path) -> dict[str, int]:
    db = sqlite3.connect(store)
    try:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
    finally:
        db.close()


def _means(report: dict) -> list[tuple[int, int, int, float, float, float]]:
    return [
        (
            m["k"],
            m["items"],
            m["scored"],
            m["full_marks"]["mean"],
            m["all_skills"]["mean"],
            m["skill_fraction"]["mean"],
        )
        for m in report["metrics"]
    ]


def test_import_then_report_round_trip_and_reimport_changes_nothing(tmp_path: Path):
    summary = _import(tmp_path, ROUND)
    runs = {r["student"]: r for r in summary["runs"]}
    assert sorted(runs) == ["alpha-7b", "beta-chat"]  # gamma-base has no grading folder
    assert any("gamma-base" in note for note in summary["notes"])
    alpha, beta = runs["alpha-7b"], runs["beta-chat"]
    assert (alpha["items"], alpha["generation_rounds"], alpha["grading_rounds"]) == (2, 1, 3)
    assert (alpha["judge_texts"], alpha["parsed"], alpha["unparsed"]) == (6, 5, 1)
    assert (beta["judge_texts"], beta["distinct_judge_texts"], beta["parsed"]) == (6, 2, 3)
    assert alpha["causes"] == {"unparsed": 4, "sentences": 3, "value": 2}
    assert beta["causes"] == {"unparsed": 12}
    assert (alpha["points"], alpha["points_differ"], alpha["points_unparsed"]) == (30, 5, 4)

    report = _report(tmp_path, alpha["run_id"])
    assert report["config"]["protocol"] == "reference-import"
    assert report["config"]["source"]["dir"] == str(ROUND.resolve())
    assert report["config"]["judges"] == ["judge-x"]
    assert _means(report) == [(2, 2, 2, 0.0, 0.5, 0.25)]
    diff = report["reference_diff"]
    by_criterion = {c["criterion"]: c for c in diff["criteria"]}
    assert by_criterion["skill:red_herring"] == {
        "criterion": "skill:red_herring", "points": 3, "agree": 2, "differ": 1, "unparsed": 0,
    }  # fmt: skip
    assert by_criterion["length"]["differ"] == 3
    assert by_criterion["topic"]["unparsed"] == 1
    assert {e["cause"] for e in diff["examples"]} == {"unparsed", "sentences", "value"}
    value = next(e for e in diff["examples"] if e["cause"] == "value")
    assert value["source"].startswith("alpha-7b/graded/by_judge-x_on_text_1_3_gpt/records.csv:")
    assert diff["metrics"] == [
        {
            "judge": "judge-x",
            "k": 2,
            "ours": {"items": 2, "full_marks": 0.0, "all_skills": 0.5, "skill_fraction": 0.25},
            "theirs": {"items": 2, "full_marks": 1.0, "all_skills": 1.0, "skill_fraction": 1.0},
        }
    ]
    beta_report = _report(tmp_path, beta["run_id"])
    assert _means(beta_report) == [(2, 2, 1, 0.0, 0.0, 0.5)]  # one item unscored, not 0
    assert beta_report["reference_diff"]["metrics"][0]["theirs"]["skill_fraction"] == 0.25

    before = _counts(tmp_path / "s.sqlite")
    again = _import(tmp_path, ROUND)
    assert [r["run_id"] for r in again["runs"]] == [r["run_id"] for r in summary["runs"]]
    assert all(r["existed"] for r in again["runs"])
    assert _counts(tmp_path / "s.sqlite") == before
    assert before["reference_points"] == 12 and before["grades"] == 12
    assert _report(tmp_path, alpha["run_id"])["reference_diff"] == diff


def test_the_terminal_report_shows_where_the_readings_differ(tmp_path: Path):
    run_id = _import(tmp_path, ROUND)["runs"][0]["run_id"]
    proc = skillmix(
        "report", run_id, "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "o"),
        cwd=tmp_path,
    )  # fmt: skip
    assert "their points vs ours, per criterion" in proc.stdout
    assert "sentences" in proc.stdout and "theirs" in proc.stdout


def test_round_folders_of_one_root_become_generation_rounds(tmp_path: Path):
    root = tmp_path / "test"
    for name in ("k2_s7_vdefault_r1", "k2_s7_vdefault_r2"):
        shutil.copytree(ROUND, root / name)
    summary = _import(tmp_path, root)
    alpha = next(r for r in summary["runs"] if r["student"] == "alpha-7b")
    assert (alpha["items"], alpha["generation_rounds"], alpha["judge_texts"]) == (2, 2, 12)
    report = _report(tmp_path, alpha["run_id"])
    assert report["config"]["reference"]["generation_rounds"] == [1, 2]
    assert sorted(report["config"]["source"]["folders"]) == [
        "k2_s7_vdefault_r1",
        "k2_s7_vdefault_r2",
    ]
    single = Store(tmp_path / "single.sqlite")
    one = import_reference(single, ROUND).runs[0]
    assert {i["item_id"] for i in single.items(one.run_id)} == {
        i["item_id"] for i in Store(tmp_path / "s.sqlite").items(alpha["run_id"])
    }


def test_a_student_folder_alone_can_be_imported(tmp_path: Path):
    summary = import_reference(Store(tmp_path / "s.sqlite"), ROUND / "beta-chat")
    assert [r.student for r in summary.runs] == ["beta-chat"]
    assert summary.runs[0].judge_texts == 6


def test_an_explicit_catalog_must_cover_every_skill(tmp_path: Path):
    partial = tmp_path / "skills.csv"
    partial.write_text(
        "name,category,definition,example\nmetaphor,literary,d,e\nred herring,rhetorical,d,e\n"
    )
    topics = FIXTURES / "topics.txt"
    proc = skillmix(
        "import", "reference", str(ROUND), "--store", str(tmp_path / "s.sqlite"),
        "--catalog", str(partial), "--catalog", str(topics), cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    message = " ".join(proc.stderr.split())
    assert "'modus ponens (affirming the antecedent)', 'folk physics'" in message
    assert not (tmp_path / "s.sqlite").exists() or _counts(tmp_path / "s.sqlite")["runs"] == 0


def test_an_explicit_catalog_is_the_run_catalog(tmp_path: Path):
    store = Store(tmp_path / "s.sqlite")
    files = [FIXTURES / "skills.csv", FIXTURES / "topics.txt"]
    summary = import_reference(store, ROUND, catalog_sources=files)
    assert summary.catalog_hash == load_catalog(files).content_hash
    assert all(
        store.get_run(r.run_id)["catalog_hash"] == summary.catalog_hash for r in summary.runs
    )


def test_without_definitions_the_catalog_has_the_names_that_appear(tmp_path: Path):
    # deep enough that the search for skills.csv (the folder and four parents) stays here
    copy = tmp_path / "a" / "b" / "c" / "d" / "k2_s7_vdefault_r1"
    shutil.copytree(ROUND, copy)
    store = Store(tmp_path / "s.sqlite")
    summary = import_reference(store, copy)
    catalog = store.get_catalog(summary.catalog_hash)
    assert {s.name for s in catalog.skills} == {
        "metaphor", "red herring", "modus ponens (affirming the antecedent)", "folk physics",
    }  # fmt: skip
    assert {s.definition for s in catalog.skills} == {""}
    assert {t.name for t in catalog.topics} == {"Knitting", "Falconry"}
    assert any("no definition found" in note for note in summary.notes)


def test_a_folder_without_graded_records_is_refused(tmp_path: Path):
    (tmp_path / "empty" / "student").mkdir(parents=True)
    proc = skillmix(
        "import", "reference", str(tmp_path / "empty"), "--store", str(tmp_path / "s.sqlite"),
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "no graded records found" in " ".join(proc.stderr.split())


def test_a_bad_points_cell_is_reported_with_file_and_line(tmp_path: Path):
    copy = tmp_path / "k2_s7_vdefault_r1"
    shutil.copytree(ROUND, copy)
    graded = copy / "beta-chat" / "graded" / "by_judge-x_on_text_1_2_gpt" / "records.csv"
    graded.write_text(graded.read_text().replace('"0.0,0.0"', '"0.0,zero"'))
    with pytest.raises(ReferenceFormatError, match=rf"{graded}:\d+: points_0 holds 'zero'"):
        import_reference(Store(tmp_path / "s.sqlite"), copy)


def test_folder_names_are_read_as_their_scripts_wrote_them():
    assert parse_round_folder("k3_s10_vdefault_r2") == RoundFolder(3, 10, "default", 2)
    assert parse_round_folder("k3_s10_vllama_k_greater_2_r1") == RoundFolder(
        3, 10, "llama_k_greater_2", 1
    )
    assert parse_round_folder("results") is None
    assert parse_grading_folder("by_gpt-4_on_text_1_2_gpt") == GradingFolder(
        "gpt-4", "text_1", 2, "gpt"
    )
    assert parse_grading_folder("by_llama2-70b-chat_on_text_1_3_llama") == GradingFolder(
        "llama2-70b-chat", "text_1", 3, "llama"
    )
    assert parse_grading_folder("by_gpt-4_on_text_1") == GradingFolder("gpt-4", "text_1", 1, "")
    assert parse_grading_folder("notes") is None


def test_cells_are_read_as_their_scripts_wrote_them():
    assert split_skills("metaphor,  \ncomplex question (loaded question ),  \nred herring") == (
        "metaphor",
        "complex question (loaded question )",
        "red herring",
    )
    assert parse_points("1.0,0.5,0.0") == (1.0, 0.5, 0.0)
    assert parse_points("") == ()
    with pytest.raises(ReferenceFormatError, match="not a number"):
        parse_points("1.0,,x", "f.csv:3")


def _grading(points: tuple[float, ...], sentence_point: float | None) -> GradingRow:
    return GradingRow(
        file="f.csv", line=2, k=2, skills=("metaphor", "red herring"), topic="Knitting",
        system="", prompt="", reply="", points_cell="", points=points,
        sentence_point=sentence_point, sentence_count=1,
    )  # fmt: skip


def test_their_points_are_read_by_position_padded_and_cut():
    catalog = load_catalog([FIXTURES / "skills.csv", FIXTURES / "topics.txt"])
    rubric = build_rubric(
        [catalog.skill("metaphor"), catalog.skill("red_herring")], catalog.topic("knitting")
    )
    ids = [c.id for c in rubric]
    assert ids == ["skill:metaphor", "skill:red_herring", "topic", "sense", "length"]
    points, given = their_points(_grading((1.0, 0.5), 0.0), rubric)
    assert (list(points.values()), given) == ([1.0, 0.5, 0.0, 0.0, 0.0], 2)
    points, given = their_points(_grading((1, 1, 1, 1, 0, 1, 6), 1.0), rubric)
    assert (list(points.values()), given) == ([1.0, 1.0, 1.0, 1.0, 1.0], 5)


def test_their_metrics_and_naming_test():
    skills, others = ["a", "b"], ["topic", "sense", "length"]
    full = their_scores(dict.fromkeys([*skills, *others], 1.0), skills, others)
    assert full.as_tuple() == (1.0, 1.0, 1.0)
    one_off = their_scores({"a": 1, "b": 1, "topic": 1, "sense": 0, "length": 1}, skills, others)
    assert one_off.as_tuple() == (0.0, 1.0, 0.0)
    # their rint: a tie (mean 0.5) rounds to 0, as numpy does
    assert round(0.5) == 0 and round(1.5) == 2
    assert named_by_substring("A clear Metaphorical sky.", "metaphor")
    assert named_by_substring("a loaded complex question", "complex question (loaded question)")
    assert not named_by_substring("A red sky.", "red herring")
