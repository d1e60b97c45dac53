"""The shapes of what `Store` returns: one typed row per table, and `CallRecord`.

Rows are plain dicts (as `sqlite3.Row` gives them, with JSON columns decoded), typed as
`TypedDict`s so that mypy checks every reader: a misspelt column, or a grade's
`verdicts` used without handling an unparsed grade (None), is caught before it runs.
They stay dicts because readers build on them (`{**row, ...}`) and tests compare them.

Verdict values are floats: a judge may give a fraction (0.5) that the vote across
grading rounds decides (`skillmix.scoring.metrics.majority_vote`); whole values are 0 and 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict


class RunRow(TypedDict):
    """A run, as `Store.get_run` and `Store.list_runs` return it."""

    id: str
    created: float  # Unix time
    updated: float
    # "running", "paused", "stopped" or "done" as stored; a "running" run whose process
    # is gone reads as "interrupted" (`lease.observed_status`)
    status: str
    catalog_hash: str
    template_version: str
    config: dict[str, Any]  # the run's `RunConfig`, as JSON


class ItemRow(TypedDict):
    """One item (a k-tuple of skills and a topic) of a run."""

    run_id: str
    item_id: str
    position: int  # the item's place among the items of its k
    k: int
    skill_ids: list[str]
    topic_id: str


class GenerationRow(TypedDict):
    """One generation round of one item: the student's extracted answer and its checks."""

    run_id: str
    item_id: str
    round: int
    turn1_key: str  # the `calls` key of the first turn
    turn2_key: str  # the `calls` key of the turn that gave the answer
    answer: str
    explanation: str | None
    marker_found: int  # 1 when the answer marker was found, else 0
    sentences: int
    named: dict[str, str]  # skill id -> the text of the answer that names it


class GradeRow(TypedDict):
    """One grading round of one generation by one judge."""

    run_id: str
    item_id: str
    gen_round: int
    judge: str
    grade_round: int
    status: Literal["parsed", "unparsed"]
    method: str  # how the verdict was read: "schema:json_schema", "text:table", "none", ...
    verdicts: dict[str, float] | None  # criterion id -> value; None when unparsed
    reason: str | None  # why the verdict could not be read (or how it was decided)
    attempts: int
    call_keys: list[str]
    # The hash of the graded answer (`db.answer_hash`); None when not recorded. Absent
    # when a store from before schema 2 is read without being upgraded.
    answer_hash: NotRequired[str | None]


class HumanVerdictRow(TypedDict):
    """A reviewer's verdict on one criterion of one generation."""

    item_id: str
    gen_round: int
    criterion: str
    reviewer: str
    value: int  # 0 or 1
    created: float


class ReferencePointRow(TypedDict):
    """The points the original Skill-Mix scripts recorded for an imported grading round."""

    run_id: str
    item_id: str
    gen_round: int
    judge: str
    grade_round: int
    points: dict[str, float]  # criterion id -> point, as their aggregation read them
    given: int  # how many values their points cell held
    raw: str  # the points cell as written
    sentences: int | None
    source: str  # the file and line it came from


class UsageRow(TypedDict):
    """Calls and tokens of one run for one role, provider and model, paid or reused."""

    role: str
    provider: str
    model: str
    sent: int  # 1: sent (paid for) by this run; 0: answered from the cache
    calls: int
    prompt_tokens: int
    completion_tokens: int


class CacheStatsRow(TypedDict):
    """What the shared response cache holds for one provider, model and role."""

    provider: str
    model: str
    role: str
    calls: int
    prompt_tokens: int
    completion_tokens: int
    bytes: int  # characters of messages and responses
    oldest: float  # Unix time of the oldest call
    newest: float
    unreferenced: int  # calls no run uses


@dataclass(frozen=True)
class CallRecord:
    """One model call: the request with its settings and the response (the `calls` table)."""

    key: str
    provider: str
    model: str
    role: str
    messages: list[dict[str, str]]
    settings: dict[str, Any]
    response: str
    prompt_tokens: int
    completion_tokens: int
    structured: str  # "" or how the output was constrained ("json_schema", "grammar", ...)
    finish_reason: str
    latency_s: float
    synthetic: bool = False  # made up by `skillmix estimate`, never stored
    messages_json: str = ""  # the messages already serialised, when the caller has them
    settings_json: str = ""  # likewise the settings
    # The reply exactly as received (`text.escape_text`) when `response` had to be repaired.
    raw_response: str | None = None
