"""`skillmix math label` against a scripted teacher over real HTTP, on CHAMP.

The teacher is planted: for each question it names the skill of one of the question's
human concepts (the most frequent of the eight most frequent CHAMP concepts it has), and
for a fixed quarter of the questions, chosen by a hash, the skill of a concept the
question does not have. It groups the fine names as the test says and assigns them by
number. So the precision and recall that the agreement measure should find are known
exactly, and the test checks that it finds them. Other scripted behaviours exercise the
parsers and the repairs: JSON or bold markers by mode, a flaky question answered with
prose on one of its two draws, a hopeless one never answered, a first define reply with a
repeated name and the wrong count, a first assign reply that leaves a name out.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import canonical, sigkill_at_request, skillmix, stored_bodies
from scripted_server import Reply, ScriptedServer
from skillmix.catalog.load import load_catalog
from skillmix.math.champ import load_champ
from skillmix.math.html import build_page, label_page
from skillmix.math.label import (
    LABEL_KIND,
    LabelConfig,
    LabelPipeline,
    LabelResult,
    QuestionLabel,
    agreement_with_annotations,
    load_label_run,
)
from skillmix.math.label_agreement import (
    AnnotatedQuestion,
    cross_fitted_predictions,
    majority_mapping,
    measure_agreement,
)
from skillmix.math.label_prompts import (
    assign_schema,
    coarse_problem,
    define_schema,
    nearest_coarse,
    parse_assignments,
    parse_coarse_skills,
    parse_fine_skill,
)
from skillmix.math.problems import MathDataset, MathProblem
from skillmix.models.openai_compat import OpenAICompatModel
from skillmix.runtime.loop import run as run_async
from skillmix.store import Store

CHAMP = load_champ()
BY_TEXT = {p.question: p for p in CHAMP.problems}
FREQUENCY = Counter(c for p in CHAMP.problems for c in p.concepts)
RANKED = sorted(FREQUENCY, key=lambda c: (-FREQUENCY[c], c))
TOP = RANKED[:8]  # C_mod2, C_sumdiff_sq, ...: each on 9 or more questions
PLANTED = CHAMP.subset([p for p in CHAMP.problems if set(p.concepts) & set(TOP)])
HOPELESS = "champ:P_Combinatorics_3"  # never answered readably
FLAKY = {"champ:P_Combinatorics_2", "champ:P_Combinatorics_5"}  # prose on even seeds


def _digest(*parts: object) -> int:
    return int(hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest(), 16)


def fine_name(concept: str) -> str:
    """The fine skill the planted teacher names for a concept: `C_mod2` -> `mod2 technique`."""
    words = re.sub(r"[^A-Za-z0-9]+", " ", concept.removeprefix("C_")).strip()
    return f"{words} technique"


def noisy(problem: MathProblem) -> bool:
    return _digest(problem.id, "noise") % 4 == 0


def planted_concept(problem: MathProblem) -> str | None:
    """The concept whose skill the teacher names: a top concept of the question, or (noisy
    questions) the most frequent top concept it lacks; else its own most frequent one."""
    mine = [c for c in RANKED if c in problem.concepts]
    top = [c for c in TOP if c in problem.concepts]
    if top:
        if noisy(problem):
            return next(c for c in TOP if c not in problem.concepts)
        return top[0]
    return mine[0] if mine else None


class Teacher:
    """The scripted teacher; `group(fine name) -> coarse name` decides stage 2."""

    def __init__(self, group: Callable[[str], str], n: int, *, quirks: bool = True):
        self.group = group
        self.n = n
        self.quirks = quirks
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        first = messages[0]["content"]
        structured = "response_format" in body
        if "=== Problem ===" in first:
            return self.skill(first, body.get("seed", 0), structured)
        if "Group these skills" in first:
            return self.define(first, len(messages), structured)
        if "Assign each fine-grained skill" in first:
            return self.assign(messages, structured)
        raise AssertionError(f"unexpected request: {first[:200]}")

    def skill(self, prompt: str, seed: int, structured: bool) -> Reply:
        text = prompt.split("=== Problem ===\n")[1].split("\n=== End of problem ===")[0]
        problem = BY_TEXT[text]
        if self.quirks and (problem.id == HOPELESS or (problem.id in FLAKY and seed % 2 == 0)):
            return Reply("This problem is interesting; let me think about it more.")
        concept = planted_concept(problem)
        name = fine_name(concept) if concept else "careful case analysis"
        why = f"The solution rests on {name} & nothing else."
        if structured:
            return Reply(json.dumps({"skill": name, "rationale": why}))
        return Reply(f"**Skill:** {name}\n**Rationale:** {why}")

    def define(self, prompt: str, turns: int, structured: bool) -> Reply:
        fine = re.findall(r"^- (.+) \(\d+ problems?\)$", prompt, flags=re.M)
        names = list(dict.fromkeys(self.group(f) for f in fine))
        names += [f"spare skill {i}" for i in range(self.n - len(names))]
        if self.quirks and turns == 1 and len(names) > 1:
            names = [names[0], *names[:-1]]  # a repeated name, one skill short
        skills = [
            {"name": n, "definition": f"Using {n} well.", "example": f"A problem on {n}."}
            for n in names
        ]
        if structured:
            return Reply(json.dumps({"skills": skills}))
        lines = [f"{i}. {s['name']}: {s['definition']} Example: {s['example']}" for i, s in
                 enumerate(skills, 1)]  # fmt: skip
        return Reply("\n".join(lines))

    def assign(self, messages: list[dict[str, str]], structured: bool) -> Reply:
        first = messages[0]["content"]
        coarse = dict(
            (name, int(number))
            for number, name in re.findall(r"^(\d+)\. (.+?): Using ", first, flags=re.M)
        )
        fine = dict(
            re.findall(r"^(\d+)\. (.+)$", first.split("every skill needs at least one.")[1],
                       flags=re.M)
        )  # fmt: skip
        wanted = list(fine)
        if len(messages) > 1:  # the repair turn names what is missing
            wanted = re.findall(r"(\d+)\. [^;]+?(?=;|\. Give)", messages[-1]["content"])
        elif self.quirks and len(wanted) > 1:
            wanted = wanted[:-1]  # leave the last one out
        answer = {k: [coarse[self.group(fine[k])]] for k in wanted}
        if structured:
            return Reply(json.dumps(answer))
        return Reply("\n".join(f"{k}: {v[0]}" for k, v in answer.items()))


def identity(name: str) -> str:
    return f"Coarse {name}"


def run_pipeline(
    dataset: MathDataset, server: ScriptedServer, store: Store, **options: Any
) -> LabelResult:
    model = OpenAICompatModel("scripted", base_url=server.base_url)
    pipeline = LabelPipeline.for_dataset(store, dataset, model, **options)
    return run_async(pipeline.run())


# --- the planted labelling --------------------------------------------------------------------


def planted_counts(problems: list[MathProblem]) -> tuple[float, float, int]:
    """The precision and recall of the planted labels under the identity mapping."""
    hits = sum(planted_concept(p) in p.concepts for p in problems)
    return hits / len(problems), hits / sum(len(p.concepts) for p in problems), hits


def test_planted_labelling_gives_back_its_precision_and_recall(tmp_path: Path):
    store = Store(tmp_path / "s.sqlite")
    with ScriptedServer(Teacher(identity, 8, quirks=False)) as server:
        result = run_pipeline(PLANTED, server, store, skills=8, cluster_batch=5, workers=8)
    assert len(result.skills) == 8
    assert {s.name for s in result.skills} == {identity(fine_name(c)) for c in TOP}
    assert not result.unparsed and not result.by_similarity
    agreement = agreement_with_annotations(result, resamples=1000)
    assert {m.concept for m in agreement.mapping} == set(TOP)  # each skill -> its concept
    for m in agreement.mapping:
        assert identity(fine_name(m.concept or "")) == next(
            s.name for s in result.skills if s.id == m.skill
        )
    rows = {r.category: r for r in agreement.rows}
    for category in [*PLANTED.categories, "all"]:
        problems = [p for p in PLANTED.problems if category in ("all", p.category)]
        precision, recall, hits = planted_counts(problems)
        row = rows[category]
        assert row.questions == len(problems)
        assert row.true_positives == hits
        assert row.precision.value == pytest.approx(precision)
        assert row.recall.value == pytest.approx(recall)
        assert row.precision.low <= precision <= row.precision.high
        assert row.recall.low <= recall <= row.recall.high
    overall = rows["all"]
    # About a quarter of the questions got a wrong skill: precision near 3/4, and the
    # interval excludes both a perfect labeller and chance.
    assert 0.70 < overall.precision.value < 0.86
    assert overall.precision.high < 1.0 and overall.precision.low > 0.5
    assert overall.recall.value < overall.precision.value  # questions have several concepts
    assert (
        overall.f1.value
        == pytest.approx(2 * overall.precision.value * overall.recall.value
                         / (overall.precision.value + overall.recall.value))
    )  # fmt: skip


def test_a_noiseless_planted_teacher_scores_perfect_precision():
    clean = [
        AnnotatedQuestion(p.id, p.category or "", frozenset({c}), frozenset(p.concepts))
        for p in PLANTED.problems
        if (c := next(x for x in TOP if x in p.concepts))
    ]
    agreement = measure_agreement(clean, resamples=200)
    assert agreement.overall.precision.value == 1.0
    assert agreement.overall.questions == len(PLANTED)


def test_cross_fitting_leaves_a_skill_seen_once_unmapped():
    questions = [
        AnnotatedQuestion("a", "x", frozenset({"s"}), frozenset({"c1"})),
        AnnotatedQuestion("b", "x", frozenset({"s"}), frozenset({"c1", "c2"})),
        AnnotatedQuestion("c", "x", frozenset({"once"}), frozenset({"c3"})),
    ]
    assert majority_mapping(questions) == {"once": "c3", "s": "c1"}
    # In sample "once" maps to its own question's concept; left out, nothing remains.
    assert cross_fitted_predictions(questions) == [
        frozenset({"c1"}),
        frozenset({"c1"}),
        frozenset(),
    ]
    agreement = measure_agreement(questions, resamples=100)
    assert agreement.in_sample[-1].precision.value == 1.0
    assert agreement.overall.true_positives == 2 and agreement.overall.false_negatives == 2
    assert agreement.confusion[("s", "c1")] == 2 and agreement.skill_questions["s"] == 2


# --- reading replies --------------------------------------------------------------------------


def test_fine_skills_are_read_from_json_markers_and_cut_off_json():
    assert parse_fine_skill('{"skill": "Completing the square", "rationale": "x"}').name == (
        "Completing the square"
    )
    fenced = parse_fine_skill('Sure:\n```json\n{"Skill": "modular arithmetic"}\n```')
    assert fenced.name == "modular arithmetic" and fenced.method == "json"
    bold = parse_fine_skill("**Skill:** Vieta's formulas.\n**Rationale:** sums of roots.")
    assert (bold.name, bold.rationale, bold.method) == (
        "Vieta's formulas",
        "sums of roots.",
        "markers",
    )
    below = parse_fine_skill("Skill name:\n  telescoping sums\nReason: the terms cancel")
    assert (below.name, below.rationale) == ("telescoping sums", "the terms cancel")
    cut = parse_fine_skill('{"skill": "pigeonhole principle", "rationale": "there are mo')
    assert cut.name == "pigeonhole principle" and cut.method == "salvaged"
    assert isinstance(parse_fine_skill("I am not sure what this needs."), str)
    assert isinstance(parse_fine_skill('{"skill": "<skill name>", "rationale": "<x>"}'), str)
    sentence = "the student must carefully consider every case of the problem before answering it"
    assert isinstance(parse_fine_skill(f"Skill: {sentence}"), str)


def test_coarse_skills_and_their_problems():
    reply = json.dumps(
        {
            "skills": [
                {"name": "Algebra tricks", "definition": "d", "example": "e"},
                {"name": "algebra trick.", "definition": "d", "example": "e"},
                {"name": "Counting", "definition": "d", "example": "e"},
            ]
        }
    )
    assert [d.name for d in parse_coarse_skills(reply)] == ["Algebra tricks", "Counting"]
    problem = coarse_problem(reply, 3)
    assert "more than once" in problem and "exactly 3" in problem
    text = "1. Parity: odd and even. Example: 2n+1\n2. Bounding: estimates. Example: AM-GM"
    drafts = parse_coarse_skills(text)
    assert [(d.name, d.example) for d in drafts] == [("Parity", "2n+1"), ("Bounding", "AM-GM")]
    assert coarse_problem(text, 2) == ""


def test_assignments_are_read_in_every_form():
    fine = ["parity argument", "AM-GM bound", "pigeonhole"]
    coarse = ["Parity", "Inequalities", "Counting"]
    assert parse_assignments('{"1": [1], "2": [2, 3], "3": 3}', fine, coarse) == {
        0: (0,),
        1: (1, 2),
        2: (2,),
    }
    listed = '[{"skill": 2, "coarse": ["Inequalities"]}, {"skill": "pigeonhole", "coarse": [3]}]'
    assert parse_assignments(listed, fine, coarse) == {1: (1,), 2: (2,)}
    lines = "1: 1\n2. AM-GM bound -> 2, 3\n- 3 → Counting\n9: 1\n"
    assert parse_assignments(lines, fine, coarse) == {0: (0,), 1: (1, 2), 2: (2,)}
    assert parse_assignments('{"1": [7]}', fine, coarse) == {}  # no such coarse skill
    assert parse_assignments("no idea", fine, coarse) == {}


def test_schemas_bound_every_string_and_fix_every_key():
    assert assign_schema([2, 5], 3)["required"] == ["2", "5"]
    assert assign_schema([1], 3)["properties"]["1"]["items"]["enum"] == [1, 2, 3]
    item = define_schema(4)["properties"]["skills"]
    assert (item["minItems"], item["maxItems"]) == (4, 4)
    assert all("maxLength" in p for p in item["items"]["properties"].values())


def test_an_unassigned_fine_name_goes_to_the_nearest_coarse_skill():
    from skillmix.data.instruct.parse import SkillDraft

    coarse = [
        SkillDraft("Counting", "choosing and arranging things", "", ""),
        SkillDraft("Modular arithmetic", "remainders and congruences", "", ""),
    ]
    assert nearest_coarse("congruences modulo a prime", coarse) == 1
    assert nearest_coarse("something else", coarse) == 0


# --- the command ------------------------------------------------------------------------------


def group_of_four(name: str) -> str:
    return f"Skill group {_digest(name) % 4 + 1}"


def label_args(spec: str, out: Path, store: Path, *extra: str, limit: int = 24) -> list[str]:
    return [
        "math",
        "label",
        "--dataset",
        "champ",
        "--teacher",
        spec,
        "--skills",
        "4",
        "--limit",
        str(limit),
        "--cluster-batch",
        "6",
        "--out",
        str(out),
        "--store",
        str(store),
        "--workers",
        "4",
        *extra,
    ]


def test_label_command_end_to_end(tmp_path: Path):
    out, store = tmp_path / "out", tmp_path / "s.sqlite"
    with ScriptedServer(Teacher(group_of_four, 4)) as server:
        args = label_args(server.spec(), out, store, "--against-annotations")
        estimate = skillmix(*args, "--estimate", cwd=tmp_path)
        assert not server.requests, "estimate mode sent a request"
        # 24 questions, then define + ceil(24 / 6) assign batches at most.
        assert "total: 29 calls to send" in estimate.stdout.replace("\n", " "), estimate.stdout

        run = skillmix(*args, "--json", cwd=tmp_path)
        document = json.loads(run.stdout)
        bodies = list(server.requests)
    run_id = document["run_id"]
    assert run_id.startswith("math-label-")
    # Stage 1: every question once, the flaky ones twice at most, the hopeless one twice.
    firsts = [b["messages"][0]["content"] for b in bodies]
    counts = Counter(text for text in firsts if "=== Problem ===" in text)
    assert len(counts) == 24
    hopeless = next(p for p in CHAMP.problems if p.id == HOPELESS)
    assert next(n for text, n in counts.items() if hopeless.question in text) == 2
    assert document["unparsed"] == 1
    labels = {row["question_id"]: row for row in csv.DictReader((out / "labels.csv").open())}
    assert len(labels) == 24
    assert labels[HOPELESS]["status"] == "unparsed" and labels[HOPELESS]["reason"]
    assert labels[HOPELESS]["coarse_skill_ids"] == ""
    for qid in FLAKY:
        assert labels[qid]["status"] == "parsed"
    # Stage 2: the repairs were asked for and the groups are the planted ones.
    repairs = " ".join(document["repairs"])
    assert "more than once" in repairs and "unassigned" in repairs
    followups = [b["messages"] for b in bodies if len(b["messages"]) == 3]
    assert any("is given more than once" in m[2]["content"] for m in followups)
    assert any("got no broader skill number" in m[2]["content"] for m in followups)
    assert all(m[1]["role"] == "assistant" for m in followups), "repairs are conversations"
    names = {s["id"]: s["name"] for s in document["skills"]}
    used = {group_of_four(row["fine_skill"]) for row in labels.values() if row["fine_skill"]}
    assert len(names) == 4 and used <= set(names.values())
    for row in labels.values():
        if row["status"] == "parsed":
            assert row["assigned_by"] == "teacher"
            assert [names[c] for c in row["coarse_skill_ids"].split(";")] == [
                group_of_four(row["fine_skill"])
            ]
    # The catalog loads and is the one in the store; its categories are CHAMP's (the first
    # 24 questions are all combinatorics; a skill without questions is uncategorised).
    catalog = load_catalog(out / "skills_catalog.yaml")
    assert catalog.content_hash == document["catalog"]["hash"]
    assert {s.category for s in catalog.skills} <= {"Combinatorics", "uncategorised"}
    assert {t.name for t in catalog.topics} == {"Combinatorics"}
    stored = load_label_run(Store(store), run_id)
    assert stored.status == "done" and stored.catalog is not None
    assert stored.catalog.content_hash == catalog.content_hash
    assert stored.labels[HOPELESS].status == "unparsed"
    assert len(Store(store).records(run_id, LABEL_KIND)) == 24
    assert [s.name for s in stored.skills] == [s.name for s in catalog.skills]
    # The agreement, per category and overall, and the files.
    assert [r["category"] for r in document["agreement"]["cross_fitted"]][-1] == "all"
    assert (out / "agreement.csv").read_text().startswith("mapping,category")
    assert "C_" in (out / "confusion.csv").read_text()
    page = (out / "report.html").read_text()
    assert 'id="agreement-table"' in page and 'id="label-confusion"' in page
    # `skillmix runs` lists the run.
    runs = skillmix("runs", "--store", str(store), cwd=tmp_path)
    assert run_id in runs.stdout and "math-label" in runs.stdout

    # Evaluation commands skip it, or name what it is when given its id.
    assert (
        "no runs in" in skillmix("report", "--store", str(store), cwd=tmp_path, check=False).stderr
    )
    named = skillmix("report", run_id, "--store", str(store), cwd=tmp_path, check=False)
    assert "is a math-label run, not a Skill-Mix evaluation" in named.stderr
    assert "Traceback" not in named.stderr

    with ScriptedServer(Teacher(group_of_four, 4), port=server.port) as again_server:
        again = skillmix(*args, cwd=tmp_path)
        assert not again_server.requests, "a re-run sent requests"
        assert "0 sent" in again.stderr
        assert "Skill group" in again.stdout and "precision" in again.stdout
        estimate = skillmix(*args, "--estimate", cwd=tmp_path)
        assert "total: 0 calls to send" in estimate.stdout.replace("\n", " ")


def test_text_mode_without_structured_output(tmp_path: Path):
    out, store = tmp_path / "out", tmp_path / "s.sqlite"
    with ScriptedServer(Teacher(group_of_four, 4)) as server:
        run = skillmix(
            *label_args(server.spec(), out, store, "--no-structured", "--json", limit=12),
            cwd=tmp_path,
        )
        assert not any("response_format" in b for b in server.requests)
        assert "Skill: <skill name>" in server.requests[0]["messages"][0]["content"]
    document = json.loads(run.stdout)
    assert document["unparsed"] == 1 and len(document["skills"]) == 4
    labels = json.loads((out / "labels.json").read_text())["labels"]
    methods = Counter(label["method"] for label in labels)
    assert methods == {"markers": 11, "": 1}


def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path):
    killed_out, killed_store = tmp_path / "killed", tmp_path / "killed.sqlite"
    teacher = Teacher(group_of_four, 4)
    with ScriptedServer(teacher) as first:
        args = label_args(first.spec(), killed_out, killed_store, limit=30)
        sent_by_killed = sigkill_at_request(first, args, tmp_path, at=18)
    assert not (killed_out / "labels.csv").exists(), "the kill must land mid-run"
    runs = skillmix("runs", "--store", str(killed_store), cwd=tmp_path)
    assert "interrupted" in runs.stdout
    answered = stored_bodies(killed_store, OpenAICompatModel("scripted", base_url=first.base_url))
    assert answered, "some answers were stored before the kill"

    with ScriptedServer(teacher, port=first.port) as server:
        skillmix(*args, cwd=tmp_path)
        resumed = [canonical(b) for b in server.requests]
        assert resumed, "the kill left work to do"
        assert not answered & set(resumed), "an answered request was sent again"
        assert len(resumed) == len(set(resumed))

        mark = len(server.requests)
        clean_out, clean_store = tmp_path / "clean", tmp_path / "clean.sqlite"
        skillmix(*label_args(server.spec(), clean_out, clean_store, limit=30), cwd=tmp_path)
        assert set(sent_by_killed) | set(resumed) == {canonical(b) for b in server.requests[mark:]}
    for name in ("labels.csv", "skills_catalog.yaml"):
        assert (killed_out / name).read_text() == (clean_out / name).read_text()


def test_a_teacher_that_names_nothing_is_a_clear_error(tmp_path: Path):
    with ScriptedServer(lambda body: Reply("Hmm.")) as server:
        proc = skillmix(
            *label_args(server.spec(), tmp_path / "o", tmp_path / "s.sqlite", limit=3),
            cwd=tmp_path,
            check=False,
        )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "named no readable skill" in proc.stderr
    assert len(server.requests) == 6  # two draws per question, then a clear stop
    runs = skillmix("runs", "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
    assert "stopped" in runs.stdout


@pytest.mark.parametrize(
    "flag",
    [["--skills", "0"], ["--max-cost", "nan"], ["--dataset", "missing.jsonl"]],
)
def test_bad_options_are_user_errors(tmp_path: Path, flag: list[str]):
    args = label_args("openai:x@http://127.0.0.1:9/v1", tmp_path / "o", tmp_path / "s", limit=2)
    proc = skillmix(*args, *flag, cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "error" in proc.stderr and "Traceback" not in proc.stderr


def test_against_annotations_needs_human_labels(tmp_path: Path):
    path = tmp_path / "plain.jsonl"
    path.write_text(json.dumps({"question": "What is 1+1?", "answer": "2"}) + "\n")
    proc = skillmix(
        "math", "label", "--dataset", str(path), "--teacher", "openai:x@http://127.0.0.1:9/v1",
        "--against-annotations", "--store", str(tmp_path / "s"), cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "no human skill labels" in proc.stderr


# --- the page ---------------------------------------------------------------------------------

HOSTILE = '</script><script>alert("q")</script><img src=x onerror=alert(1)>'


def small_result(tmp_path: Path) -> LabelResult:
    hostile = MathProblem("x:1", HOSTILE, "1 & 2", "a <b>solution</b>", "Odd", ("C_mod2",))
    problems = [hostile, *[p for p in PLANTED.problems[:11]]]
    dataset = MathDataset.build("tiny", "test", problems, CHAMP.concepts)
    with ScriptedServer(Teacher(group_of_four, 3, quirks=False)) as server:
        server.policy = _hostile_aware(server.policy)
        return run_pipeline(dataset, server, Store(tmp_path / "s.sqlite"), skills=3, workers=4)


def _hostile_aware(policy: Callable[[dict[str, Any]], Reply]) -> Callable[..., Reply]:
    def answer(body: dict[str, Any]) -> Reply:
        if HOSTILE in body["messages"][0]["content"]:
            name = "mod2 technique"
            return Reply(json.dumps({"skill": name, "rationale": 'it\'s "odd" & even'}))
        return policy(body)

    return answer


def test_page_renders_model_text_only_as_json(tmp_path: Path):
    result = small_result(tmp_path)
    agreement = agreement_with_annotations(result, resamples=200)
    html = build_page(label_page(result, agreement))
    head, _, data = html.partition('<script type="application/json" id="math-data">')
    assert HOSTILE not in html and "<script>alert" not in html
    assert "onerror" not in head, "question text outside the page's JSON"
    assert "\\u003c/script\\u003e" in data
    assert "Content-Security-Policy" in head and "unsafe-inline" not in head
    for anchor in ("skills", "agreement", "confusion", "questions"):
        assert f'id="{anchor}"' in head
    payload = json.loads(data.split("</script>")[0])
    assert len(payload["questions"]) == 12
    first = payload["questions"][0]
    assert first["question"] == HOSTILE and first["concepts"][0][0] == "C_mod2"
    assert first["panels"][0]["facts"][0] == ["fine skill", "mod2 technique"]
    assert set(payload["tables"]) >= {"label-skills", "label-mapping", "label-concepts"}
    assert len(payload["tables"]["label-skills"]["rows"]) == 3


def test_browser_shows_tables_and_question_details(tmp_path: Path):
    from browser import ARTIFACTS, launch, sync_api

    result = small_result(tmp_path)
    agreement = agreement_with_annotations(result, resamples=200)
    path = tmp_path / "page.html"
    path.write_text(build_page(label_page(result, agreement)))
    errors: list[str] = []
    dialogs: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        chromium = launch(p)
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        assert page.locator("#label-skills tbody tr").count() == 3
        assert page.locator("#agreement-table tbody tr").count() == len(agreement.rows)
        assert page.locator("#label-confusion g.cell").count() >= 3
        rows = page.locator("#questions-body tr")
        assert rows.count() == 12
        page.select_option("#filter-category", "Odd")
        assert rows.count() == 1
        rows.first.click()
        detail = page.locator("#question-detail")
        assert detail.locator("#detail-question").inner_text() == HOSTILE
        assert "mod2 technique" in detail.locator(".panel").inner_text()
        assert detail.locator("#detail-concepts li").count() == 1
        page.select_option("#filter-category", "")
        page.fill("#filter-text", "technique")
        assert rows.count() == 12
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "math-label.png"), full_page=True)
        chromium.close()
    assert errors == [] and dialogs == []
    assert requests == [path.as_uri()], "the page asked for something beyond itself"


# --- the real embedded model --------------------------------------------------------------------


@pytest.mark.embedded
def test_embedded_teacher_labels_three_champ_questions(tmp_path: Path):
    proc = skillmix(
        "math", "label", "--dataset", "champ", "--teacher", "embedded", "--limit", "3",
        "--against-annotations", "--json", cwd=tmp_path, timeout=1800,
    )  # fmt: skip
    document = json.loads(proc.stdout)
    assert document["dataset"]["questions"] == 3
    assert any("smoke test" in w for w in document["warnings"])
    page = (tmp_path / "math-label" / "report.html").read_text()
    assert "smoke test of the pipeline" in page
    load_catalog(tmp_path / "math-label" / "skills_catalog.yaml")


def test_config_is_the_run_id():
    base = LabelConfig(dataset="d", dataset_hash="h", questions=3)
    assert base.run_id("v1-x") == LabelConfig(dataset="d", dataset_hash="h", questions=3).run_id(
        "v1-x"
    )
    assert base.run_id("v1-x") != base.model_copy(update={"skills": 5}).run_id("v1-x")
    assert base.run_id("v1-x") != base.run_id("v1-y")
    assert QuestionLabel.from_record(QuestionLabel("q", "c", "parsed").to_record()) == (
        QuestionLabel("q", "c", "parsed")
    )
