"""The review app: queue, judge-vs-human agreement and the HTTP API, on real stored runs.

Runs are made by the real engine against scripted OpenAI-compatible servers on 127.0.0.1;
the review app is served on a real port and called over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripted_server import Policy, Reply, ScriptedServer, _digest, honest_policy
from skillmix.catalog.load import load_catalog
from skillmix.config import RunConfig
from skillmix.models import resolve_model
from skillmix.protocol.engine import Engine
from skillmix.review import review_queue
from skillmix.review.queue import disagreement
from skillmix.review.server import (
    TOKEN_HEADER,
    BackgroundServer,
    ReviewError,
    check_binding,
    serve,
)
from skillmix.scoring.human import human_agreement, human_majority
from skillmix.scoring.results import score_run
from skillmix.store import Store

# --- making real runs ---------------------------------------------------------------------------


def make_run(
    store_path: Path,
    student: Policy,
    judges: list[Policy],
    *,
    k: tuple[int, ...],
    items: int,
    generation_rounds: int,
    grading_rounds: int,
) -> str:
    """Run the real engine: the student on one scripted server, each judge on its own."""
    servers = [ScriptedServer(student, model="student")]
    servers += [ScriptedServer(p, model=f"judge-{i}") for i, p in enumerate(judges)]
    for s in servers:
        s.__enter__()
    try:
        config = RunConfig(
            student=servers[0].spec(),
            judges=tuple(s.spec() for s in servers[1:]),
            k=k,
            items=items,
            generation_rounds=generation_rounds,
            grading_rounds=grading_rounds,
        )
        store = Store(store_path)
        engine = Engine(
            store,
            config,
            load_catalog(),
            resolve_model(config.student),
            [resolve_model(j) for j in config.judges],
        )
        result = asyncio.run(engine.run())
        store.close()
        return result.run_id
    finally:
        for s in servers:
            s.__exit__(None, None, None)


def judge_keys(body: dict[str, Any]) -> list[str]:
    return list(body["response_format"]["json_schema"]["schema"]["properties"])


def salted_judge(salt: str, one_in: int) -> Policy:
    """A judge that fails a criterion when a hash of (answer, criterion, seed) says so."""

    def policy(body: dict[str, Any]) -> Reply:
        last = body["messages"][-1]["content"]
        answer = last.split("=== Text to grade ===")[1].split("=== End of text ===")[0]
        seed = body.get("seed", 0)
        keys = judge_keys(body)
        return Reply(
            json.dumps({k: int(_digest(answer, k, seed, salt) % one_in != 0) for k in keys})
        )

    return policy


@pytest.fixture(scope="module")
def two_judge_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """k = 2, 3, 4; 3 items each; 2 generations; 2 judges with 3 noisy grading rounds."""
    path = tmp_path_factory.mktemp("review") / "s.sqlite"
    run_id = make_run(
        path,
        honest_policy,
        [salted_judge("a", 4), salted_judge("b", 3)],
        k=(2, 3, 4),
        items=3,
        generation_rounds=2,
        grading_rounds=3,
    )
    return path, run_id


@pytest.fixture
def fresh_run(two_judge_run: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A private copy of the two-judge run, for tests that write verdicts."""
    src, run_id = two_judge_run
    store = Store(src)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    dst = tmp_path / "copy.sqlite"
    dst.write_bytes(src.read_bytes())
    return dst, run_id


@pytest.fixture
def app(fresh_run: tuple[Path, str]) -> Iterator[BackgroundServer]:
    path, run_id = fresh_run
    with BackgroundServer(path, run_id) as server:
        yield server


def call(
    server: BackgroundServer,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """A real HTTP request: (status, parsed JSON or text, headers)."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json"} if data is not None else {}
    all_headers.update(headers or {})
    request = urllib.request.Request(server.base_url + path, data=data, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, payload, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as err:
        status, payload, got = err.code, err.read(), dict(err.headers)
    text = payload.decode()
    if not got.get("Content-Type", "").startswith("application/json"):
        return status, text, got
    return status, json.loads(text, parse_constant=_no_nan), got


def _no_nan(name: str) -> Any:
    raise AssertionError(f"the API sent {name}, which is not JSON (browsers reject it)")


# --- the queue ----------------------------------------------------------------------------------


def test_disagreement_score_by_hand():
    catalog = load_catalog()
    skill = catalog.skills[0]
    rounds: dict[str, list[dict[str, int] | None]] = {
        "openai:a@http://x/v1": [
            {f"skill:{skill.id}": 1, "topic": 1, "sense": 1},
            {f"skill:{skill.id}": 1, "topic": 1, "sense": 0},
            {f"skill:{skill.id}": 1, "topic": 1, "sense": 1},
        ],
        "openai:b@http://y/v1": [{f"skill:{skill.id}": 1, "topic": 0, "sense": 1}, None],
    }
    score, reasons = disagreement(rounds, catalog)
    # judges' majorities differ on topic (2), a's rounds split 2-1 on sense (2 * 1/3),
    # one unparsed round of b (0.5)
    assert score == pytest.approx(2 + 2 / 3 + 0.5)
    assert reasons == (
        "judges disagree on topic",
        "grading rounds of openai:a split on sense (2–1)",
        "1 unparsed grading round from openai:b",
    )
    unanimous = {"j": [{"topic": 1, "sense": 1}] * 3}
    assert disagreement(unanimous, catalog) == (0.0, ("judges agree: random spot check",))
    assert disagreement({}, catalog) == (0.0, ("not graded yet",))


def test_queue_weighting_stratification_and_exclusion(fresh_run: tuple[Path, str]):
    path, run_id = fresh_run
    store = Store(path)
    queue = review_queue(store, run_id, reviewer="ann")
    generations = store.generations(run_id)
    assert len(queue) == len(generations) == 3 * 3 * 2
    assert {(e.item_id, e.gen_round) for e in queue} == {
        (g["item_id"], g["round"]) for g in generations
    }

    # Stratified: the k values take turns (each k has 6 generations here).
    assert [e.k for e in queue] == [2, 3, 4] * 6
    # Weighted: within each k, more disagreement first.
    for k in (2, 3, 4):
        scores = [e.disagreement for e in queue if e.k == k]
        assert scores == sorted(scores, reverse=True)
    assert len({e.disagreement for e in queue}) > 3  # the noisy judges do disagree

    # "judges disagree on ..." is said exactly where the judges' own majorities differ.
    run_scores = score_run(store, run_id)
    voted: dict[tuple[str, int], list[dict[str, int]]] = {}
    for result in run_scores.items:
        for gen in result.generations:
            assert gen.voted is not None
            voted.setdefault((result.item_id, gen.gen_round), []).append(gen.voted)
    catalog = run_scores.catalog
    for entry in queue:
        a, b = voted[(entry.item_id, entry.gen_round)]
        contested = [c for c in a if a[c] != b[c]]
        said = [r for r in entry.reasons if r.startswith("judges disagree on ")]
        if contested:
            names = {catalog.skill(c[6:]).name if c.startswith("skill:") else c for c in contested}
            assert said and set(said[0].removeprefix("judges disagree on ").split(", ")) == names
            assert entry.disagreement >= 2 * len(contested)
        else:
            assert not said
        assert entry.reason  # every entry says why it was chosen

    # Reproducible; another seed only reorders ties.
    assert review_queue(store, run_id, reviewer="ann", seed=0) == queue
    orders = [review_queue(store, run_id, reviewer="ann", seed=s) for s in range(32)]
    for other in orders:
        assert [(e.k, e.disagreement) for e in other] == [(e.k, e.disagreement) for e in queue]
    # Judge seeds include the judges' URLs (random ports), so whether this run has ties
    # depends on the ports; where it has some, another seed must be able to reorder them.
    strata = Counter((e.k, e.disagreement) for e in queue)
    if max(strata.values()) > 1:
        assert len({tuple((e.item_id, e.gen_round) for e in o) for o in orders}) > 1

    # A reviewer's judged generations leave their queue only; each k keeps its order.
    first = queue[0]
    store.put_human_verdicts(run_id, first.item_id, first.gen_round, "ann", {"topic": 1})
    after = review_queue(store, run_id, reviewer="ann")
    assert first not in after and len(after) == len(queue) - 1
    for k in (2, 3, 4):
        assert [e for e in after if e.k == k] == [e for e in queue if e.k == k and e != first]
    assert [e.k for e in after[:3]] == [2, 3, 4]
    assert review_queue(store, run_id, reviewer=" bob ") == queue
    with pytest.raises(ValueError, match="reviewer"):
        review_queue(store, run_id, reviewer="  ")


# --- judge-vs-human agreement ---------------------------------------------------------------------


def never_names_student(body: dict[str, Any]) -> Reply:
    match = re.search(r"about (.+?) that illustrates", body["messages"][0]["content"])
    assert match is not None
    topic = match.group(1)
    return Reply(f"Answer: A short note on {topic} is here.\nExplanation: it does.")


def sense_failing_judge(body: dict[str, Any]) -> Reply:
    return Reply(json.dumps({k: int(k != "makes_sense") for k in judge_keys(body)}))


def test_human_majority_drops_ties():
    rows = [
        {"item_id": "i", "gen_round": 0, "criterion": "topic", "reviewer": r, "value": v}
        for r, v in (("ann", 1), ("bob", 1), ("cy", 0))
    ] + [
        {"item_id": "i", "gen_round": 0, "criterion": "sense", "reviewer": r, "value": v}
        for r, v in (("ann", 1), ("bob", 0))
    ]
    assert human_majority(rows) == {("i", 0, "topic"): 1}


def test_human_agreement_hand_checked(tmp_path: Path):
    """One judge: every skill, topic and length met, sense never (decided verdicts)."""
    path = tmp_path / "s.sqlite"
    run_id = make_run(
        path,
        never_names_student,
        [sense_failing_judge],
        k=(2,),
        items=2,
        generation_rounds=1,
        grading_rounds=1,
    )
    store = Store(path)
    scores = score_run(store, run_id)
    g1, g2 = scores.items
    for result in (g1, g2):
        [gen] = result.generations
        assert gen.decided == {
            **{f"skill:{s}": 1 for s in result.skill_ids},
            "topic": 1,
            "sense": 0,
            "length": 1,
        }
    a1, b1 = (f"skill:{s}" for s in g1.skill_ids)
    a2, b2 = (f"skill:{s}" for s in g2.skill_ids)
    put = store.put_human_verdicts
    put(run_id, g1.item_id, 0, "ann", {a1: 1, b1: 0, "topic": 1, "sense": 0, "length": 1})
    put(run_id, g2.item_id, 0, "ann", {a2: 1, b2: 1, "topic": 0, "sense": 1, "length": 0})
    put(run_id, g2.item_id, 0, "bob", {a2: 1, b2: 0, "topic": 0})  # b2: a tie, left out
    put(run_id, g2.item_id, 0, "cy", {a2: 0})  # a2: 1, 1, 0 -> 1

    rows = {r["criterion"]: r for r in human_agreement(store, scores)}
    assert list(rows) == ["skills", "topic", "sense", "length", "all"]
    assert all(r["judge"] == scores.judges[0] for r in rows.values())
    # units (judge, human): skills (1,1) (1,0) (1,1); topic (1,1) (1,0); sense (0,0) (0,1);
    # length (1,1) (1,0)
    expected = {
        "skills": (3, 2 / 3, 0.0),
        "topic": (2, 1 / 2, 0.0),
        "sense": (2, 1 / 2, 0.0),
        "length": (2, 1 / 2, 0.0),
        # judge 1,1,1,1,1,0,0,1,1 vs human 1,0,1,1,0,0,1,1,0: p_o = 5/9,
        # p_e = (7*5 + 2*4)/81 = 43/81, kappa = (45 - 43) / (81 - 43) = 1/19
        "all": (9, 5 / 9, 1 / 19),
    }
    for criterion, (units, agreement, kappa) in expected.items():
        row = rows[criterion]
        assert row["units"] == units
        assert row["agreement"] == pytest.approx(agreement)
        assert row["kappa"] == pytest.approx(kappa)


def test_no_human_verdicts_no_rows(fresh_run: tuple[Path, str]):
    path, run_id = fresh_run
    store = Store(path)
    assert human_agreement(store, score_run(store, run_id)) == []


# --- the HTTP API -------------------------------------------------------------------------------


def test_api_queue_item_verdicts_agreement(app: BackgroundServer, fresh_run: tuple[Path, str]):
    path, run_id = fresh_run
    status, run, _ = call(app, "/api/run")
    assert status == 200 and run["run_id"] == run_id and run["generations"] == 18
    assert len(run["judges"]) == 2

    status, queue, _ = call(app, "/api/queue?reviewer=ann&limit=5")
    assert status == 200 and queue["remaining"] == 18 and queue["reviewed"] == 0
    expected = review_queue(Store(path), run_id, reviewer="ann")[:5]
    assert queue["entries"] == [e.to_dict() for e in expected]
    first = queue["entries"][0]

    status, item, _ = call(
        app, f"/api/item?item_id={first['item_id']}&gen_round={first['gen_round']}&reviewer=ann"
    )
    assert status == 200 and item["human"] == {}
    ids = [c["id"] for c in item["criteria"]]
    assert ids[-3:] == ["topic", "sense", "length"] and len(ids) == item["k"] + 3
    assert item["answer"] and len(item["judges"]) == 2 and len(item["turns"]) == 2

    status, agreement, _ = call(app, "/api/agreement")
    assert status == 200 and agreement["rows"] == [] and agreement["reviewed_generations"] == 0

    verdicts = {c: 1 for c in ids} | {"sense": 0}
    body = {
        "reviewer": " ann ",
        "item_id": first["item_id"],
        "gen_round": first["gen_round"],
        "verdicts": verdicts,
    }
    status, saved, _ = call(app, "/api/verdicts", body)
    assert status == 200 and saved["saved"] == len(ids)
    rows = saved["agreement"]["rows"]
    assert {r["judge"] for r in rows} == {*run["judges"], "combined"}
    assert {r["criterion"] for r in rows} == {"skills", "topic", "sense", "length", "all"}
    assert all(0 <= r["agreement"] <= 1 for r in rows)
    assert saved["agreement"]["reviewers"] == ["ann"]

    stored = Store(path).human_verdicts(run_id)
    assert {(h["criterion"], h["value"]) for h in stored} == set(verdicts.items())
    assert {h["reviewer"] for h in stored} == {"ann"}

    status, queue, _ = call(app, "/api/queue?reviewer=ann")
    assert queue["remaining"] == 17 and queue["reviewed"] == 1
    assert first not in queue["entries"]
    _, item, _ = call(
        app, f"/api/item?item_id={first['item_id']}&gen_round={first['gen_round']}&reviewer=ann"
    )
    assert item["human"] == verdicts
    _, agreement, _ = call(app, "/api/agreement")
    assert agreement["rows"] == rows


def test_api_rejects_bad_verdicts(app: BackgroundServer, fresh_run: tuple[Path, str]):
    path, run_id = fresh_run
    _, queue, _ = call(app, "/api/queue?reviewer=ann&limit=1")
    entry = queue["entries"][0]
    good = {
        "reviewer": "ann",
        "item_id": entry["item_id"],
        "gen_round": entry["gen_round"],
        "verdicts": {"topic": 1},
    }
    cases = [
        ({**good, "verdicts": {"topic": 1, "skill:nope": 1}}, 400, "not a criterion of item"),
        ({**good, "verdicts": {"topic": 2}}, 400, "must be 0 (not met) or 1 (met), got topic=2"),
        ({**good, "verdicts": {"topic": "1"}}, 400, 'got topic="1"'),
        ({**good, "verdicts": {"topic": True}}, 400, "got topic=true"),
        ({**good, "verdicts": {"topic": 0.5}}, 400, "got topic=0.5"),
        ({**good, "verdicts": {}}, 400, "verdicts must be a non-empty object"),
        ({**good, "reviewer": "  "}, 400, "reviewer must be a non-empty name"),
        ({**good, "reviewer": None}, 400, "reviewer must be a non-empty name"),
        ({**good, "reviewer": "x" * 101}, 400, "at most 100 characters"),
        ({**good, "gen_round": "0"}, 400, "gen_round must be an integer"),
        ({k: v for k, v in good.items() if k != "item_id"}, 400, "item_id must be"),
        ([good], 400, "must be a JSON object"),
        ({**good, "item_id": "no-such-item"}, 404, "of item 'no-such-item' in run-"),
    ]
    for body, status, message in cases:
        got, answer, _ = call(app, "/api/verdicts", body)
        assert (got, message in answer["error"]) == (status, True), (body, answer)
    got, answer, _ = call(app, "/api/verdicts", raw=b"{not json")
    assert got == 400 and "not valid JSON" in answer["error"]
    got, answer, _ = call(
        app, "/api/verdicts", raw=json.dumps(good).encode(), headers={"Content-Type": "text/plain"}
    )
    assert got == 415 and "application/json" in answer["error"]
    got, answer, _ = call(app, "/api/verdicts", good, headers={"Origin": "http://evil.example"})
    assert got == 403 and "cross-origin" in answer["error"]
    assert Store(path).human_verdicts(run_id) == []  # nothing half-written

    got, answer, _ = call(app, "/api/queue")
    assert got == 400 and "reviewer" in answer["error"]
    got, answer, _ = call(app, "/api/item?item_id=x&gen_round=zero")
    assert got == 400
    got, answer, _ = call(app, "/api/item?item_id=x&gen_round=0")
    assert got == 404
    got, answer, _ = call(app, "/api/nothing")
    assert got == 404 and answer["error"]
    assert call(app, "/api/verdicts", good)[0] == 200


def test_page_headers_and_no_inline_script(app: BackgroundServer):
    status, page, headers = call(app, "/")
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
    assert scripts == [(' src="static/dom.js" defer', ""), (' src="static/app.js" defer', "")]
    assert not re.search(r"\son[a-z]+\s*=", page)  # no inline event handlers
    for name in ("dom.js", "app.js"):
        status, script, headers = call(app, f"/static/{name}")
        assert status == 200 and headers["Content-Type"].startswith("text/javascript")
        assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "Content-Security-Policy" in call(app, "/api/run")[2]
    assert call(app, "/static/../server.py")[0] == 404
    # Without a token, only a loopback Host is served (no DNS rebinding).
    status, answer, _ = call(app, "/api/run", headers={"Host": "evil.example"})
    assert status == 403 and "Host" in answer["error"]
    assert call(app, "/api/run", headers={"Host": f"localhost:{app.port}"})[0] == 200


# --- the token ---------------------------------------------------------------------------------


def test_token_is_required_everywhere(fresh_run: tuple[Path, str]):
    path, run_id = fresh_run
    token = "s3cret/token+x-Q7vK2mZp9LwR4tYh"  # with characters a URL must escape
    query = "token=s3cret%2Ftoken%2Bx-Q7vK2mZp9LwR4tYh"
    with BackgroundServer(path, run_id, token=token) as server:
        assert server.url.endswith(f"/?{query}")
        good = {TOKEN_HEADER: token}
        for target in ("/", "/static/app.js", "/api/run", "/api/agreement"):
            status, answer, _ = call(server, target)
            assert status == 403 and "token" in answer["error"], target
            assert call(server, target, headers={TOKEN_HEADER: "wrong"})[0] == 403
        assert call(server, "/api/run", headers=good)[0] == 200
        # The page and its assets take the token from the URL, the API only from the header.
        status, page, _ = call(server, f"/?{query}")
        assert status == 200 and f'src="static/app.js?{query}"' in page
        assert call(server, f"/static/app.css?{query}")[0] == 200
        status, answer, _ = call(server, f"/api/run?{query}")
        assert status == 403 and TOKEN_HEADER in answer["error"]
        _, queue, _ = call(server, "/api/queue?reviewer=ann", headers=good)
        entry = queue["entries"][0]
        body = {
            "reviewer": "ann",
            "item_id": entry["item_id"],
            "gen_round": entry["gen_round"],
            "verdicts": {"topic": 0},
        }
        assert call(server, "/api/verdicts", body)[0] == 403
        assert call(server, "/api/verdicts", body, headers=good)[0] == 200
        # With a token the Host is not restricted (it may be reached from elsewhere).
        assert call(server, "/api/run", headers={**good, "Host": "review.example"})[0] == 200


def test_non_local_host_needs_a_token(fresh_run: tuple[Path, str]):
    path, run_id = fresh_run
    for host in ("0.0.0.0", "::", "192.168.1.20", "review.example"):
        with pytest.raises(ReviewError, match="without a token"):
            check_binding(host, None)
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        check_binding(host, None)
    with pytest.raises(ReviewError, match="SKILLMIX_REVIEW_TOKEN or pass --token-file"):
        serve(path, run_id, host="0.0.0.0")
    with pytest.raises(ReviewError, match="without a token"):
        BackgroundServer(path, run_id, host="0.0.0.0")
    with pytest.raises(ReviewError, match="empty"):
        check_binding("0.0.0.0", "  ")
    with pytest.raises(ReviewError, match="too weak"):
        BackgroundServer(path, run_id, host="0.0.0.0", token="x")
    with pytest.raises(ReviewError, match="no run"):
        BackgroundServer(path, "run-nope")
    with pytest.raises(ReviewError, match="no run store"):
        BackgroundServer(path.with_name("missing.sqlite"), run_id)
    assert not path.with_name("missing.sqlite").exists()


# --- the command --------------------------------------------------------------------------------


def test_review_command(fresh_run: tuple[Path, str], tmp_path: Path):
    """The latest run by default, behind a token made for the occasion.

    (Tokens from the environment or a file, and weak ones: test_review_hardening.py.)
    """
    path, run_id = fresh_run
    env = {k: v for k, v in os.environ.items() if k != "SKILLMIX_REVIEW_TOKEN"}
    env["NO_COLOR"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "skillmix.cli", "review", "--store", str(path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        match = re.search(r"reviewing (\S+): open (http://127\.0\.0\.1:(\d+)/)\?token=(\S+)", line)
        assert match, line + (proc.stderr.read() if proc.poll() is not None else "")
        assert match.group(1) == run_id  # the latest run by default
        request = urllib.request.Request(
            match.group(2) + "api/run", headers={TOKEN_HEADER: match.group(4)}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert json.loads(response.read())["run_id"] == run_id
    finally:
        proc.terminate()
        proc.wait(timeout=30)
