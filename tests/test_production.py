"""Several judges, the shared cache, estimates and budgets, through the real CLI and HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import skillmix
from scripted_server import Reply, ScriptedServer, honest_policy


def other_judge(body):
    """Agrees with the honest judge on most criteria, not all."""
    reply = honest_policy(body)
    if "Text to grade" in body["messages"][-1]["content"] and body.get("seed", 0) % 3 == 0:
        verdicts = json.loads(reply.content)
        first = next(iter(verdicts))
        verdicts[first] = 1 - verdicts[first]
        return Reply(json.dumps(verdicts))
    return reply


def calls_sent(stderr: str) -> int:
    return int(re.search(r"model calls \(this invocation\): (\d+) sent", stderr).group(1))


def test_several_judges_agreement_and_regrade_reuse(tmp_path: Path):
    with (
        ScriptedServer(honest_policy, model="a") as a,
        ScriptedServer(other_judge, model="b") as b,
        ScriptedServer(other_judge, model="c") as c,
    ):
        base = [
            "run",
            "--student",
            a.spec(),
            "--k",
            "2,3",
            "--items",
            "4",
            "--generation-rounds",
            "1",
            "--grading-rounds",
            "3",
        ]
        first = skillmix(*base, "--judge", a.spec(), cwd=tmp_path)
        assert calls_sent(first.stderr) == 8 * (2 + 3)

        # Adding judges: the student's answers and judge a's verdicts come from the store.
        two = skillmix(*base, "--judge", a.spec(), "--judge", b.spec(), cwd=tmp_path)
        assert calls_sent(two.stderr) == 8 * 3 and len(b.requests) == 24
        report = json.loads(skillmix("report", "--json", cwd=tmp_path).stdout)
        judges = {row["judge"] for row in report["metrics"]}
        assert judges == {a.spec(), b.spec(), "combined"}
        agreement = {row["criterion"]: row for row in report["agreement"]}
        assert set(agreement) == {"skills", "topic", "sense", "all"}
        assert all(row["statistic"] == "cohen_kappa" for row in agreement.values())
        assert 0 < agreement["all"]["raw_agreement"] < 1
        assert agreement["all"]["units"] == (4 * 2 + 4 * 3) + 8 + 8  # skills, topic, sense

        three = skillmix(
            *base, "--judge", a.spec(), "--judge", b.spec(), "--judge", c.spec(), cwd=tmp_path
        )
        assert calls_sent(three.stderr) == 24 and len(b.requests) == 24
        report = json.loads(skillmix("report", "--json", cwd=tmp_path).stdout)
        assert {row["statistic"] for row in report["agreement"]} == {"krippendorff_alpha"}

        # A re-grade with the same judge: nothing is sent.
        again = skillmix(*base, "--judge", b.spec(), cwd=tmp_path)
        assert calls_sent(again.stderr) == 0
        usage = json.loads(skillmix("report", "--json", cwd=tmp_path).stdout)["usage"]
        assert {u["sent"] for u in usage} == {0}  # everything this run used was reused


def test_estimate_budget_and_cache(tmp_path: Path):
    (tmp_path / "prices.toml").write_text("[pricing]\nscripted = { input = 1000, output = 2000 }\n")
    with ScriptedServer() as server:
        spec = server.spec()
        base = [
            "--student",
            spec,
            "--judge",
            spec,
            "--k",
            "2,3",
            "--items",
            "5",
            "--generation-rounds",
            "2",
            "--grading-rounds",
            "2",
            "--pricing",
            "prices.toml",
        ]
        total = 2 * 5 * 2 * (2 + 2)
        estimate = skillmix("estimate", *base, cwd=tmp_path).stdout
        assert f"total: {total} calls to send" in estimate

        # Each call costs 10 prompt + 5 completion tokens: 0.01 + 0.01 = $0.02. A request
        # goes out only while its worst case (its prompt, estimated high, and 512 tokens:
        # about $1.5 at these prices) still fits under the cap with those in flight.
        paused = skillmix("run", *base, "--max-cost", "2", cwd=tmp_path, check=False)
        assert paused.returncode == 3, paused.stderr
        assert "budget reached" in paused.stderr and "run the same command again" in paused.stderr
        bought = len(server.requests)
        assert 0 < bought < total and bought * 0.02 <= 2

        estimate = skillmix("estimate", *base, cwd=tmp_path).stdout
        assert f"total: {total - bought} calls to send" in estimate
        done = skillmix("run", *base, cwd=tmp_path)
        assert calls_sent(done.stderr) == total - bought
        assert "total: 0 calls to send" in skillmix("estimate", *base, cwd=tmp_path).stdout
        report = json.loads(
            skillmix("report", "--json", "--pricing", "prices.toml", cwd=tmp_path).stdout
        )
        paid = [u for u in report["usage"] if u["sent"]]
        assert sum(u["calls"] for u in paid) == total
        assert abs(sum(u["cost_usd"] for u in paid) - total * 0.02) < 1e-9

    stats = skillmix("cache", "stats", cwd=tmp_path).stdout
    assert "student" in stats and "judge" in stats
    assert (
        "would delete 0"
        in skillmix("cache", "prune", "--unreferenced", "--dry-run", cwd=tmp_path).stdout
    )
    pruned = skillmix("cache", "prune", "--model", "scripted", cwd=tmp_path).stdout
    assert f"deleted {total}" in pruned
