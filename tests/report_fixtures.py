"""Real stored runs for the report tests: two students on the same items, one judge.

Three real OpenAI-compatible HTTP servers on 127.0.0.1 (see scripted_server.py): a careful
student, a sloppy student whose answers carry HTML/JS injection and an outside URL, and a
judge that grades by what the answer says. Both runs use the same catalog, seed and k, so
their item ids match and they can be compared pair by pair.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripted_server import Reply, ScriptedServer, sentence_limit_in, skill_names_in
from skillmix.catalog.load import load_catalog
from skillmix.catalog.model import Catalog
from skillmix.config import RunConfig
from skillmix.models import resolve_model
from skillmix.protocol.engine import Engine
from skillmix.store import Store

MALICIOUS = "<script>alert(1)</script><img src=x onerror=alert(1)>"
OUTSIDE_URL = "http://evil.example/pixel.png"
CAREFUL_MARK = "Carefully"
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")


def without_times(page: str) -> str:
    """A page with its times as <time>: two renderings of the same runs differ only in the
    minute each was made ("generated ...")."""
    return TIME.sub("<time>", page)


def _digest(*parts: object) -> int:
    return int(hashlib.sha256(json.dumps(parts).encode()).hexdigest(), 16)


def _topic(body: dict[str, Any]) -> str:
    match = re.search(r"about (.+?) that illustrates", body["messages"][0]["content"])
    return match.group(1) if match else "it"


def _limit(body: dict[str, Any]) -> int | None:
    return sentence_limit_in(body["messages"][-1]["content"])


def careful_student(body: dict[str, Any]) -> Reply:
    """Stays on topic, within the sentence limit, never names a skill."""
    topic = _topic(body)
    n = _limit(body) or 3
    text = " ".join(
        f"{CAREFUL_MARK} told, {topic} keeps its secrets, part {i + 1}." for i in range(n)
    )
    return Reply(f"Answer: {text}\nExplanation: every skill is in there.")


def sloppy_student(body: dict[str, Any]) -> Reply:
    """Writes markup and a link into its answer, goes over the limit when k = 2, and names
    a skill in the answer on about half of the topics."""
    topic = _topic(body)
    if _limit(body) is None:
        return Reply(f"Answer: Something about {topic}.\nExplanation: none.")
    names = skill_names_in(body["messages"][0]["content"])
    blurt = f", pure {names[0]}" if names and _digest(topic) % 2 == 0 else ""
    return Reply(
        f"Answer: {MALICIOUS} The {topic} thing went wrong{blurt}. See {OUTSIDE_URL} now.\n"
        "Explanation: trust me."
    )


def judge_policy(body: dict[str, Any]) -> Reply:
    """Grades careful answers mostly 1 and sloppy ones mostly 0, varying with the seed so
    that grading rounds differ; answers in JSON when a schema is given, else in lines."""
    last = body["messages"][-1]["content"]
    if "Text to grade" not in last:
        return Reply("Answer: I only grade.\nExplanation: judge.")
    answer = last.split("=== Text to grade ===")[1].split("=== End of text ===")[0].strip()
    fmt = body.get("response_format")
    keys = (
        list(fmt["json_schema"]["schema"]["properties"])
        if fmt
        else re.findall(r"^(.+): <1 or 0>$", last, flags=re.M)
    )
    seed = body.get("seed", 0)
    good = CAREFUL_MARK in answer
    values = {key: int(_digest(answer, key, seed) % (9 if good else 2) != 0) for key in keys}
    if fmt:
        return Reply(json.dumps(values))
    return Reply("\n".join(f"{k}: {v}" for k, v in values.items()))


def run_config(student: str, judges: tuple[str, ...], **overrides: Any) -> RunConfig:
    """The settings every report test shares (small, but every feature in play)."""
    settings: dict[str, Any] = {
        "student": student,
        "judges": judges,
        "k": (2, 3),
        "items": 3,
        "generation_rounds": 2,
        "grading_rounds": 3,
        "seed": 7,
    }
    settings.update(overrides)
    return RunConfig(**settings)


def run_engine(store: Store, config: RunConfig, catalog: Catalog | None = None) -> str:
    """Run (or resume) a config through the real engine; return the run id."""
    engine = Engine(
        store,
        config,
        catalog or load_catalog(),
        resolve_model(config.student),
        [resolve_model(j) for j in config.judges],
    )
    return asyncio.run(engine.run()).run_id


@dataclass
class TwoRuns:
    store_path: Path
    careful: str  # run id of the careful student
    sloppy: str  # run id of the sloppy student
    judge: ScriptedServer
    students: tuple[ScriptedServer, ScriptedServer]

    @property
    def servers(self) -> tuple[ScriptedServer, ...]:
        return (self.judge, *self.students)

    def request_count(self) -> int:
        return sum(len(s.requests) for s in self.servers)


@contextmanager
def two_student_runs(directory: Path) -> Iterator[TwoRuns]:
    """Two stored runs (careful and sloppy student, same judge, same items); the servers
    stay up while the context is open, so a test can check that nothing asks them."""
    with ExitStack() as stack:
        judge = stack.enter_context(ScriptedServer(judge_policy, model="fair-judge"))
        careful = stack.enter_context(ScriptedServer(careful_student, model="careful-student"))
        sloppy = stack.enter_context(ScriptedServer(sloppy_student, model="sloppy-student"))
        path = directory / "runs.sqlite"
        store = Store(path)
        careful_id = run_engine(store, run_config(careful.spec(), (judge.spec(),)))
        sloppy_id = run_engine(store, run_config(sloppy.spec(), (judge.spec(),)))
        store.close()
        yield TwoRuns(path, careful_id, sloppy_id, judge, (careful, sloppy))


SKILLS = ("red_herring", "loaded_question")
TOPIC = "beekeeping"


def put_constructed_run(
    store: Store,
    run_id: str,
    verdicts: dict[str, dict[str, int] | None],
    *,
    judge: str = "openai:hand-judge",
    student: str = "openai:hand-student",
) -> str:
    """A run written straight into the store, with known verdicts: k = 2 (skills
    SKILLS, topic TOPIC), one generation and one grading round per item, one sentence
    (so the sentence limit is met), no skill named. `verdicts[item_id]` is the judge's
    verdict per criterion ("a", "b" for the two skills, "topic", "sense"), or None for an
    unparsed grading round. Returns the run id."""
    catalog = load_catalog()
    store.put_catalog(catalog)
    config = RunConfig(
        student=student,
        judges=(judge,),
        k=(2,),
        items=len(verdicts),
        generation_rounds=1,
        grading_rounds=1,
    )
    store.ensure_run(run_id, config.model_dump(mode="json"), catalog.content_hash, "v1")
    store.set_run_status(run_id, "done")
    store.put_items(run_id, [(pos, item, 2, SKILLS, TOPIC) for pos, item in enumerate(verdicts)])
    for item, given in verdicts.items():
        store.put_generation(
            run_id,
            item,
            0,
            turn1_key=f"{run_id}-{item}-1",
            turn2_key=f"{run_id}-{item}-2",
            answer=f"A text about bees for {item}.",
            explanation=None,
            marker_found=True,
            sentences=1,
            named=[],
        )
        decided = None
        if given is not None:
            decided = {
                f"skill:{SKILLS[0]}": given["a"],
                f"skill:{SKILLS[1]}": given["b"],
                "topic": given["topic"],
                "sense": given["sense"],
            }
        store.put_grade(
            run_id,
            item,
            0,
            judge,
            0,
            status="unparsed" if decided is None else "parsed",
            method="test",
            verdicts=decided,
            reason=None if decided is not None else "no verdict found",
            attempts=1,
            call_keys=[],
        )
    return run_id


def verdict(a: int, b: int, topic: int = 1, sense: int = 1) -> dict[str, int]:
    """A constructed verdict: the two skill points, then topic and sense."""
    return {"a": a, "b": b, "topic": topic, "sense": sense}
