"""`skillmix audit` finds effects planted in scripted judges on real local HTTP servers.

Each scenario runs the real engine (or the real `skillmix run`) against OpenAI-compatible
servers on 127.0.0.1 whose judges carry one planted effect of a known size, then asks the
real `skillmix audit --json` whether it finds it: flagged, with the right sign, and with
the true size inside its 95% interval. A judge without the effect runs beside it and must
not be flagged. Every judge decides from a hash of what it is shown, so every run (and
every audit, whose bootstrap is seeded) is the same on every machine.

| planted effect                         | check           | true size                  |
|----------------------------------------|-----------------|----------------------------|
| passes long answers more often         | length_bias     | +0.6 log-odds per 10 words |
| prefers its own student's marker       | self_preference | +0.25 pass rate (DiD)      |
| flips 20% of verdicts at random        | consistency     | 32% of pairs differ        |
| fails criteria shown last              | rubric_order    | -2.0 log-odds last - first |
| lenient against human verdicts         | leniency        | +0.20 pass rate            |
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from conftest import skillmix
from scripted_server import Policy, Reply, ScriptedServer, _digest, honest_policy
from skillmix.catalog.load import load_catalog
from skillmix.config import RunConfig
from skillmix.jsonsafe import finite
from skillmix.models import resolve_model
from skillmix.prompts.rubric import build_rubric
from skillmix.protocol.engine import Engine
from skillmix.review.server import BackgroundServer
from skillmix.store import Store

# --- scripted students and judges --------------------------------------------------------------


def uniform(*parts: object) -> float:
    """A number in [0, 1) from a hash of `parts`: the scripted models' only randomness."""
    return _digest(*parts) % 1_000_003 / 1_000_003


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


FILLER = ("quietly", "the", "river", "kept", "turning", "past", "old", "mills", "and", "bright")


def student(words: Callable[[int], int], marker: str = "") -> Policy:
    """A student whose answer is one sentence of `words(seed)` filler words after the topic,
    starting with `marker` when given (a signature a judge may recognise)."""

    def policy(body: dict[str, Any]) -> Reply:
        first = body["messages"][0]["content"]
        topic = re.search(r"about (.+?) that illustrates", first).group(1)  # type: ignore[union-attr]
        n = words(body.get("seed", 0))
        text = " ".join([marker, "On", topic, *(FILLER[i % len(FILLER)] for i in range(n))])
        return Reply(f"Answer: {text.strip()}.\nExplanation: it does.")

    return policy


Decide = Callable[[str, str, int, int, int], int]  # answer, key, position, shown, seed -> 0/1


def judge(decide: Decide) -> Policy:
    """A judge answering the schema's keys (in the order shown) with `decide`."""

    def policy(body: dict[str, Any]) -> Reply:
        last = body["messages"][-1]["content"]
        answer = last.split("=== Text to grade ===")[1].split("=== End of text ===")[0].strip()
        keys = list(body["response_format"]["json_schema"]["schema"]["properties"])
        seed = body.get("seed", 0)
        verdicts = {k: decide(answer, k, i, len(keys), seed) for i, k in enumerate(keys)}
        return Reply(json.dumps(verdicts))

    return policy


def passes(p: float, *parts: object) -> int:
    return int(uniform(*parts) < p)


def truth(answer: str, key: str) -> int:
    """What a careful human says about a criterion of an answer (half of them are met)."""
    return passes(0.5, answer, key, "truth")


# --- running and auditing -----------------------------------------------------------------------


@contextmanager
def servers(**policies: Policy) -> Iterator[dict[str, ScriptedServer]]:
    """One scripted server per model, named by its keyword (the model's name)."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(ScriptedServer(policy, model=name))
            for name, policy in policies.items()
        }


# Units in flight: enough to keep the scripted servers busy, few enough that their listen
# queues never overflow (a refused connection is retried after a back-off: slow, not wrong).
WORKERS = 4


def run_engine(store_path: Path, config: RunConfig) -> str:
    store = Store(store_path)
    engine = Engine(
        store,
        config,
        load_catalog(),
        resolve_model(config.student),
        [resolve_model(j) for j in config.judges],
        workers=WORKERS,
    )
    result = asyncio.run(engine.run())
    store.close()
    assert result.unparsed_rounds == 0
    return result.run_id


def audit(store_path: Path, *args: str) -> dict[str, Any]:
    """`skillmix audit ARGS --json`, as a user runs it."""
    proc = skillmix("audit", *args, "--store", str(store_path), "--json", cwd=store_path.parent)
    return dict(json.loads(proc.stdout))


def finding(result: dict[str, Any], check: str, judge: str, criterion: str = "all") -> Any:
    [found] = [
        f
        for f in result["findings"]
        if (f["check"], f["judge"], f["criterion"]) == (check, judge, criterion)
    ]
    return found


def assert_found(found: dict[str, Any], true_size: float) -> None:
    """Flagged, the right sign, the true size inside the interval."""
    e = found["estimate"]
    print(
        f"{found['check']}: true {true_size:+.3f}, estimate {e['value']:+.3f} "
        f"[{e['low']:+.3f}, {e['high']:+.3f}], n={e['n']} {found['n_label']}, "
        f"p adj. {found['p_adjusted']:.2g}, flagged={found['flagged']}"
    )
    assert found["flagged"], found
    assert math.copysign(1, e["value"]) == math.copysign(1, true_size - found["null"]), found
    assert e["low"] <= true_size <= e["high"], found


def assert_apart(found: dict[str, Any], true_size: float) -> None:
    """A judge without the planted effect, graded in the same run: its estimate is near
    no effect and its interval excludes the planted size. (Whether it is flagged is left
    to chance at the test's level: one null judge flagged in twenty is the design; the
    false-alarm rate over many seeds is measured in the audit's own tests.)"""
    e = found["estimate"]
    print(
        f"{found['check']} (null judge): estimate {e['value']:+.3f} "
        f"[{e['low']:+.3f}, {e['high']:+.3f}], p adj. {found['p_adjusted']:.2g}, "
        f"flagged={found['flagged']}"
    )
    assert not e["low"] <= true_size <= e["high"], found
    assert abs(e["value"] - found["null"]) < abs(true_size - found["null"]) / 2, found


def run_config(student_spec: str, judges: list[str], **design: Any) -> RunConfig:
    return RunConfig(student=student_spec, judges=tuple(judges), **design)


# --- (a) length ---------------------------------------------------------------------------------

LENGTH_SLOPE = 0.6  # log-odds of a pass per 10 words


def test_a_judge_that_passes_long_answers_more_often(tmp_path: Path):
    def long_lover(answer: str, key: str, position: int, shown: int, seed: int) -> int:
        words = len(answer.split())
        return passes(sigmoid(-1.2 + LENGTH_SLOPE * words / 10), answer, key, seed, "long")

    def steady(answer: str, key: str, position: int, shown: int, seed: int) -> int:
        return passes(0.6, answer, key, seed, "steady")

    store_path = tmp_path / "s.sqlite"
    with servers(
        student=student(lambda seed: 2 + _digest(seed, "len") % 40),
        long=judge(long_lover),
        steady=judge(steady),
    ) as s:
        config = run_config(
            s["student"].spec(),
            [s["long"].spec(), s["steady"].spec()],
            k=(2,),
            items=15,
            generation_rounds=4,
            grading_rounds=2,
        )
        run_id = run_engine(store_path, config)
        result = audit(store_path, run_id)
    assert_found(finding(result, "length_bias", s["long"].spec()), LENGTH_SLOPE)
    assert_apart(finding(result, "length_bias", s["steady"].spec()), LENGTH_SLOPE)


# --- (b) self-preference ------------------------------------------------------------------------

OWN_BONUS = 0.25  # judge A's extra pass rate on texts carrying student A's marker


def test_a_judge_that_prefers_its_own_students_marker(tmp_path: Path):
    def partial(answer: str, key: str, position: int, shown: int, seed: int) -> int:
        p = 0.55 + (OWN_BONUS if answer.startswith("Verily") else 0.0)
        return passes(p, answer, key, seed, "a")

    def fair(answer: str, key: str, position: int, shown: int, seed: int) -> int:
        return passes(0.55, answer, key, seed, "b")

    store_path = tmp_path / "s.sqlite"
    with servers(
        **{
            "alpha-student": student(lambda seed: 8, marker="Verily"),
            "beta-student": student(lambda seed: 8, marker="Truly"),
            "alpha-judge": judge(partial),
            "beta-judge": judge(fair),
        }
    ) as s:
        judges = [s["alpha-judge"].spec(), s["beta-judge"].spec()]
        design = {"k": (2,), "items": 20, "generation_rounds": 2, "grading_rounds": 3}
        runs = [
            run_engine(store_path, run_config(s[name].spec(), judges, **design))
            for name in ("alpha-student", "beta-student")
        ]
        families = [
            arg
            for name in s
            for arg in ("--family", f"{s[name].spec()}={name.split('-')[0].upper()}")
        ]
        result = audit(store_path, *runs, *families)
        # The page of both runs audits them together: self-preference is on it.
        skillmix("html", *runs, "--store", str(store_path), "--out", "both.html", cwd=tmp_path)
    found = finding(result, "self_preference", s["alpha-judge"].spec())
    assert_found(found, OWN_BONUS)
    assert found["verdict"].startswith("favours") and "own family" in found["verdict"]
    # With two judges and two students the difference in differences of one judge is
    # that of the other: judge B is measured as much "against A's texts" as A "for" them.
    twin = finding(result, "self_preference", s["beta-judge"].spec())
    assert twin["estimate"]["value"] == pytest.approx(found["estimate"]["value"])
    page = (tmp_path / "both.html").read_text()
    section = page.split('<section id="audit">')[1].split("</section>")[0]
    assert "Self-preference" in section and 'id="audit-self_preference"' in section
    # (without --family, the page reads the families from the model names: "alpha-judge")
    assert escape(found["verdict"].split(" by ")[0].replace("ALPHA", "alpha")) in section


# --- (c) consistency ----------------------------------------------------------------------------

FLIP = 0.2  # each verdict flipped at random in each grading round
PAIRS_DIFFER = 2 * FLIP * (1 - FLIP)  # two rounds differ when exactly one flipped


def test_a_judge_that_flips_a_fifth_of_its_verdicts(tmp_path: Path):
    def flipper(answer: str, key: str, position: int, shown: int, seed: int) -> int:
        base = passes(0.6, answer, key, "base")
        return base ^ passes(FLIP, answer, key, seed, "flip")

    def steady(answer: str, key: str, position: int, shown: int, seed: int) -> int:
        return passes(0.6, answer, key, "base")

    store_path = tmp_path / "s.sqlite"
    with servers(student=honest_policy, flipper=judge(flipper), steady=judge(steady)) as s:
        config = run_config(
            s["student"].spec(),
            [s["flipper"].spec(), s["steady"].spec()],
            k=(2,),
            items=15,
            generation_rounds=2,
            grading_rounds=3,
        )
        run_id = run_engine(store_path, config)
        result = audit(store_path, run_id)
        report = json.loads(
            skillmix("report", run_id, "--store", str(store_path), "--json", cwd=tmp_path).stdout
        )
        text = skillmix("audit", run_id, "--store", str(store_path), cwd=tmp_path).stdout
    assert_found(finding(result, "consistency", s["flipper"].spec()), PAIRS_DIFFER)
    steady_found = finding(result, "consistency", s["steady"].spec())
    assert_apart(steady_found, PAIRS_DIFFER)
    assert not steady_found["flagged"]  # it never flips: nothing to test against the limit
    assert steady_found["estimate"]["value"] == 0
    # `report --json` carries the same audit; the terminal shows it as a table.
    assert finite(report["audit"]["findings"]) == result["findings"]
    assert report["audit"]["lead"] == result["lead"]
    assert "Findings" in text and "inconsistent" in text and "p adj." in text
    assert "What these runs cannot tell" in text and "No human review" in text


# --- (d) rubric order ---------------------------------------------------------------------------

POSITION_SLOPE = -2.0  # log-odds of a pass, shown last rather than first


def test_a_judge_whose_verdict_depends_on_rubric_position(tmp_path: Path):
    def first_come(answer: str, key: str, position: int, shown: int, seed: int) -> int:
        x = position / (shown - 1)
        return passes(sigmoid(1.5 + POSITION_SLOPE * x), answer, key, seed, "pos")

    def blind(answer: str, key: str, position: int, shown: int, seed: int) -> int:
        return passes(0.7, answer, key, seed, "blind")

    with servers(student=honest_policy, first=judge(first_come), blind=judge(blind)) as s:
        args = [
            "--student", s["student"].spec(),
            "--judge", s["first"].spec(),
            "--judge", s["blind"].spec(),
            "--k", "2", "--items", "20",
            "--generation-rounds", "2", "--grading-rounds", "4",
            "--rubric-order", "shuffled",
            "--workers", str(WORKERS),
            "--store", "s.sqlite",
        ]  # fmt: skip
        skillmix("run", *args, cwd=tmp_path)
        store = Store(tmp_path / "s.sqlite", read_only=True)
        [run] = store.list_runs()
        store.close()
        assert run["config"]["rubric_order"] == "shuffled"
        result = audit(tmp_path / "s.sqlite", run["id"])
    assert_found(finding(result, "rubric_order", s["first"].spec()), POSITION_SLOPE)
    assert_apart(finding(result, "rubric_order", s["blind"].spec()), POSITION_SLOPE)


# --- (e) leniency against human verdicts --------------------------------------------------------

LENIENT = 0.4  # share of unmet criteria the lenient judge passes anyway
LENIENCY = 0.5 * LENIENT  # half the criteria are unmet: +0.20 on the pass rate


def post(server: BackgroundServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        server.base_url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def test_a_judge_lenient_against_human_verdicts(tmp_path: Path):
    def lenient(answer: str, key: str, position: int, shown: int, seed: int) -> int:
        return truth(answer, key) or passes(LENIENT, answer, key, "lenient")

    def careful(answer: str, key: str, position: int, shown: int, seed: int) -> int:
        return truth(answer, key) ^ passes(0.1, answer, key, "slip")

    store_path = tmp_path / "s.sqlite"
    with servers(
        student=student(lambda seed: 4 + _digest(seed, "len") % 12),
        lenient=judge(lenient),
        careful=judge(careful),
    ) as s:
        config = run_config(
            s["student"].spec(),
            [s["lenient"].spec(), s["careful"].spec()],
            k=(2,),
            items=25,
            generation_rounds=2,
            grading_rounds=1,
        )
        run_id = run_engine(store_path, config)
        before = audit(store_path, run_id)

        # A reviewer gives the true verdicts through the review app's HTTP API.
        store = Store(store_path, read_only=True)
        catalog = load_catalog()
        items = {i["item_id"]: i for i in store.items(run_id)}
        generations = store.generations(run_id)
        store.close()
        with BackgroundServer(store_path, run_id) as app:
            for g in generations:
                item = items[g["item_id"]]
                skills = [catalog.skill(x) for x in item["skill_ids"]]
                rubric = build_rubric(skills, catalog.topic(item["topic_id"]))
                verdicts = {c.id: truth(g["answer"], c.key) for c in rubric if c.judged}
                body = {
                    "reviewer": "ann",
                    "item_id": g["item_id"],
                    "gen_round": g["round"],
                    "verdicts": verdicts,
                }
                assert post(app, "/api/verdicts", body)["saved"] == len(verdicts)
        result = audit(store_path, run_id)
    assert any("No human review" in line for line in before["cannot_tell"])
    assert not any(f["check"] == "leniency" for f in before["findings"])
    found = finding(result, "leniency", s["lenient"].spec())
    assert_found(found, LENIENCY)
    assert found["n_label"] == "reviewed units"
    assert found["estimate"]["n"] == len(generations) * 4  # 2 skills, topic, sense each
    assert found["verdict"].startswith("lenient by +")
    assert_apart(finding(result, "leniency", s["careful"].spec()), LENIENCY)


# --- a run that cannot tell -------------------------------------------------------------------


def test_a_single_judge_run_without_review_says_what_it_cannot_tell(
    tmp_path: Path, server: ScriptedServer
):
    store_path = tmp_path / "s.sqlite"
    config = run_config(
        server.spec(), [server.spec()], k=(2,), items=3, generation_rounds=1, grading_rounds=1
    )
    run_id = run_engine(store_path, config)
    result = audit(store_path)  # the latest run by default
    assert result["run_ids"] == [run_id] and result["findings"] == []
    said = " ".join(result["cannot_tell"])
    for gap in ("One judge", "No human review", "One grading round", "One generation", "fixed"):
        assert gap in said, (gap, said)
    assert "No check could be tested" in result["lead"]

    skillmix("report", run_id, "--store", str(store_path), "--out", "out", cwd=tmp_path)
    page = (tmp_path / "out" / run_id / "report.html").read_text()
    section = page.split('<section id="audit">')[1].split("</section>")[0]
    assert "What these runs cannot tell" in section and "No human review" in section
    assert '<a href="#audit">Audit</a>' in page
    text = skillmix("audit", run_id, "--store", str(store_path), cwd=tmp_path).stdout
    assert "No check could be tested" in text and "One judge" in text


def test_audit_errors_are_one_line(tmp_path: Path, server: ScriptedServer):
    store_path = tmp_path / "s.sqlite"
    config = run_config(
        server.spec(), [server.spec()], k=(2,), items=1, generation_rounds=1, grading_rounds=1
    )
    run_engine(store_path, config)
    bad = skillmix("audit", "--family", "nofamily", "--store", str(store_path), cwd=tmp_path,
                   check=False)  # fmt: skip
    assert bad.returncode == 1 and "is not MODEL=FAMILY" in bad.stderr
    missing = skillmix("audit", "run-nope", "--store", str(store_path), cwd=tmp_path, check=False)
    assert missing.returncode == 1 and "no run 'run-nope'" in missing.stderr
