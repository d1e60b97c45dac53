"""The Instruct-SkillMix pipeline: both stages on the shared runtime (`runtime.pool`).

Stage 1 asks the teacher for topics, then, in one run of the pool, every topic's skills
and the query types; the answers become a catalog. Stage 2 writes every planned example
on the pool: an (instruction, response) pair, a critique and a refinement in one
conversation, or a shirker answer. Each request goes through `CallCache`, so a killed
run resumes without asking anything twice, --max-cost pauses it as it does an
evaluation, and `estimate=True` walks the same steps to count what a run would send.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skillmix.data.dedup import Rejection
from skillmix.data.instruct import prompts
from skillmix.data.instruct.catalog import Extraction, build_catalog
from skillmix.data.instruct.config import PIPELINE, InstructConfig
from skillmix.data.instruct.outputs import InstructResult, example_record, filter_records
from skillmix.data.instruct.parse import (
    ParsedPair,
    SkillDraft,
    parse_entries,
    parse_names,
    parse_pair,
    parse_response,
    parse_skill_entry,
)
from skillmix.data.instruct.plan import FALLBACK_QUERY_TYPE, ExamplePlan, plan_examples
from skillmix.data.records import DataRecord
from skillmix.models import ChatRequest, Model
from skillmix.models.settings import Settings
from skillmix.runtime.calls import CallCache
from skillmix.runtime.pool import RunError, WorkerPool, derive_seed
from skillmix.runtime.progress import Progress
from skillmix.store import CallRecord, Store

ROLE = "teacher"


class InstructError(RunError):
    """The teacher's answers cannot make a catalog; every answer so far is in the store."""


def _placeholder(record: CallRecord) -> str:
    """Text of the estimated length standing in for a synthetic (estimate-mode) reply."""
    return "word " * max(1, int(record.completion_tokens * 0.75))


class InstructPipeline:
    """One Instruct-SkillMix run: a config and a teacher, writing through a store.

    Progress is reported in two stages, "catalog" (stage-1 answers) and "examples".
    """

    def __init__(
        self,
        store: Store,
        config: InstructConfig,
        teacher: Model,
        *,
        settings: Settings | None = None,
        max_cost: float | None = None,
        estimate: bool = False,
        workers: int | None = None,
        progress: Progress | None = None,
    ):
        self.store = store
        self.config = config
        self.teacher = teacher
        self.templates = prompts.load_instruct_templates(config.templates)
        self.run_id = config.run_id(self.templates.version_id)
        self.estimate = estimate
        self.calls = CallCache(
            store, run_id=self.run_id, settings=settings, max_cost=max_cost, estimate=estimate
        )
        self.pool = WorkerPool(self.calls, [teacher], workers)
        self.progress = progress or Progress()
        self.structured = config.structured and teacher.supports_structured

    # --- calls ------------------------------------------------------------------------------

    async def _ask(
        self,
        messages: list[dict[str, str]],
        seed: int,
        *,
        max_tokens: int,
        schema: dict[str, Any] | None = None,
        attempt: int = 0,
    ) -> CallRecord:
        request = ChatRequest(
            tuple(messages),
            self.config.temperature,
            max_tokens,
            seed,
            schema if self.structured else None,
            sample=attempt,
        )
        return await self.calls.call(self.teacher, ROLE, request)

    async def _ask_parsed(
        self,
        messages: list[dict[str, str]],
        seed: int,
        parse: Callable[[CallRecord], Any],
        *,
        max_tokens: int,
        schema: dict[str, Any] | None = None,
        keys: list[str] | None = None,
    ) -> tuple[CallRecord, Any]:
        """Ask up to `parse_attempts` independent draws until `parse` returns a value.

        Returns the last record and the parsed value (None when every draw failed, and
        for synthetic records, which have no text).
        """
        record: CallRecord | None = None
        for attempt in range(self.config.parse_attempts):
            record = await self._ask(
                messages, seed, max_tokens=max_tokens, schema=schema, attempt=attempt
            )
            if record.synthetic:
                return record, None
            if keys is not None:
                keys.append(record.key)
            value = parse(record)
            if value is not None:
                return record, value
        assert record is not None
        return record, None

    # --- stage 1 ----------------------------------------------------------------------------

    async def extract(self) -> Extraction:
        """Topics, then each topic's skills and the query types, as a catalog.

        Two runs of the pool: the topics, then every topic's skills and the query types.
        """
        cfg, t = self.config, self.templates
        self.progress.total("catalog", cfg.topics + 2)
        keys: list[str] = []

        def names_or_none(key: str) -> Callable[[CallRecord], list[str] | None]:
            return lambda record: parse_names(record.response, key)[0] or None

        asked: list[tuple[CallRecord, list[str] | None]] = []

        async def ask_topics(_: None) -> None:
            asked.append(
                await self._ask_parsed(
                    prompts.topics_messages(t, cfg.topics, self.structured),
                    derive_seed(cfg.seed, PIPELINE, "topics"),
                    names_or_none("topics"),
                    max_tokens=cfg.list_max_tokens,
                    schema=prompts.names_schema("topics", cfg.topics),
                    keys=keys,
                )
            )
            self.progress.advance("catalog")

        await self.pool.run([None], ask_topics)
        [(record, topics)] = asked
        if record.synthetic:
            topics = [f"topic {i + 1}" for i in range(cfg.topics)]
        elif not topics:
            raise InstructError(
                f"the teacher {cfg.teacher} named no topics in {cfg.parse_attempts} "
                f"tries; its last answer began: {record.response[:300]!r}"
            )
        topics = topics[: cfg.topics]
        dropped: list[str] = []
        self.progress.total("catalog", len(topics) + 2)

        async def skills_of(topic: str) -> list[SkillDraft]:
            def parse(record: CallRecord) -> list[SkillDraft] | None:
                drafts: list[SkillDraft] = []
                for entry in parse_entries(record.response, "skills"):
                    draft, raw = parse_skill_entry(entry, topic)
                    if draft is not None:
                        drafts.append(draft)
                    elif raw:
                        dropped.append(raw)
                return drafts or None

            record, drafts = await self._ask_parsed(
                prompts.skills_messages(t, topic, cfg.skills_per_topic, self.structured),
                derive_seed(cfg.seed, PIPELINE, "skills", topic),
                parse,
                max_tokens=cfg.list_max_tokens,
                schema=prompts.skills_schema(cfg.skills_per_topic),
                keys=keys,
            )
            self.progress.advance("catalog")
            if record.synthetic:
                return [
                    SkillDraft(f"{topic} skill {j + 1}", "word " * 12, "word " * 12, topic)
                    for j in range(cfg.skills_per_topic)
                ]
            return list(drafts or [])[: cfg.skills_per_topic]

        async def query_types() -> list[str]:
            record, names = await self._ask_parsed(
                prompts.query_types_messages(t, cfg.query_types, self.structured),
                derive_seed(cfg.seed, PIPELINE, "query-types"),
                names_or_none("query_types"),
                max_tokens=cfg.list_max_tokens,
                schema=prompts.names_schema("query_types", cfg.query_types),
                keys=keys,
            )
            self.progress.advance("catalog")
            if record.synthetic:
                return [f"query type {i + 1}" for i in range(cfg.query_types)]
            return list(names or [FALLBACK_QUERY_TYPE])[: cfg.query_types]

        skills: dict[str, list[SkillDraft]] = {}
        types: list[str] = []

        async def ask(topic: str | None) -> None:  # None: the query types
            if topic is None:
                types.extend(await query_types())
            else:
                skills[topic] = await skills_of(topic)

        await self.pool.run([*topics, None], ask)
        per_topic = [skills[topic] for topic in topics]
        drafts = [d for topic_drafts in per_topic for d in topic_drafts]
        catalog, merges = build_catalog(
            topics, drafts, cfg.skill_similarity, version=self.templates.version_id
        )
        if not catalog.skills:
            raise InstructError(
                f"the teacher {cfg.teacher} named no usable skill for any of the topics "
                f"{', '.join(topics)}; try a stronger teacher or more --list-max-tokens"
            )
        return Extraction(
            catalog=catalog,
            query_types=list(types),
            proposed_skills=len(drafts),
            merges=merges,
            dropped_names=dropped,
            unparsed_topics=[
                topic for topic, found in zip(topics, per_topic, strict=True) if not found
            ],
            call_keys=keys,
        )

    # --- stage 2 ----------------------------------------------------------------------------

    async def example(self, plan: ExamplePlan, ex: Extraction) -> DataRecord | Rejection | None:
        """One example's conversation: pair, critique, refinement (or a shirker answer).

        Returns the record, a Rejection saying why there is none, or None in estimate mode.
        """
        cfg, t = self.config, self.templates
        skills = [(s.name, s.definition) for s in plan.skills]
        turn1 = prompts.generate_messages(t, skills, plan.query_type, self.structured)
        keys: dict[str, str] = {}
        tried: list[str] = []
        pair_record, pair = await self._ask_parsed(
            turn1,
            plan.seed,
            lambda r: p if isinstance(p := parse_pair(r.response), ParsedPair) else None,
            max_tokens=cfg.max_tokens,
            schema=prompts.pair_schema(),
            keys=tried,
        )
        if not pair_record.synthetic:
            keys["generate"] = pair_record.key

        def rejection(reason: str, detail: str, messages: list[dict[str, str]]) -> Rejection:
            return Rejection(self._record(plan, messages, keys, ex), reason, detail)

        if pair is None and not pair_record.synthetic:
            why = parse_pair(pair_record.response)
            cut = " (cut off at --max-tokens)" if pair_record.finish_reason == "length" else ""
            return rejection(
                "unparsed-pair",
                f"{len(tried)} draw(s): {why}{cut}",
                [*turn1, {"role": "assistant", "content": pair_record.response}],
            )
        instruction = pair.instruction if pair else _placeholder(pair_record)
        if plan.shirker:
            final = await self._ask(
                prompts.shirker_messages(t, instruction), plan.seed + 3, max_tokens=cfg.max_tokens
            )
            keys["shirker"] = final.key
            response = None if final.synthetic else parse_response(final.response)
        else:
            pair_text = _placeholder(pair_record) if pair_record.synthetic else pair_record.response
            turn2 = prompts.critique_messages(t, turn1, pair_text, skills, plan.query_type)
            critique = await self._ask(turn2, plan.seed + 1, max_tokens=cfg.max_tokens)
            keys["critique"] = critique.key
            critique_text = _placeholder(critique) if critique.synthetic else critique.response
            turn3 = prompts.refine_messages(t, turn2, critique_text, self.structured)
            final, response = await self._ask_parsed(
                turn3,
                plan.seed + 2,
                lambda r: parse_response(r.response) or None,
                max_tokens=cfg.max_tokens,
                schema=prompts.refine_schema(),
            )
            keys["refine"] = final.key
        if final.synthetic:
            return None
        messages = [
            {"role": "user", "content": instruction},
            {"role": "assistant", "content": response or ""},
        ]
        if not response:
            return rejection("empty-answer", "the final response is empty", messages)
        if final.finish_reason == "length":
            return rejection(
                "truncated", "the final response was cut off at --max-tokens", messages
            )
        return self._record(plan, messages, keys, ex)

    def _record(
        self,
        plan: ExamplePlan,
        messages: list[dict[str, str]],
        keys: dict[str, str],
        ex: Extraction,
    ) -> DataRecord:
        return example_record(
            plan,
            messages,
            keys,
            ex,
            config=self.config,
            run_id=self.run_id,
            teacher_identity=self.teacher.identity,
            templates_version=self.templates.version_id,
            structured=self.structured,
        )

    async def generate(self, ex: Extraction) -> tuple[list[DataRecord], list[Rejection]]:
        """Every example, on the pool; results in example order."""
        plans = plan_examples(ex.catalog, ex.query_types or [FALLBACK_QUERY_TYPE], self.config)
        outcomes: dict[int, DataRecord | Rejection | None] = {}
        self.progress.total("examples", len(plans))

        async def write(plan: ExamplePlan) -> None:
            outcomes[plan.index] = await self.example(plan, ex)
            self.progress.advance("examples")

        await self.pool.run(plans, write)
        records: list[DataRecord] = []
        rejected: list[Rejection] = []
        for index in sorted(outcomes):
            outcome = outcomes[index]
            if isinstance(outcome, DataRecord):
                records.append(outcome)
            elif isinstance(outcome, Rejection):
                rejected.append(outcome)
        return records, rejected

    # --- the whole run ----------------------------------------------------------------------

    async def run(self) -> InstructResult:
        """Stage 1 and stage 2 (without writing files; see `write_outputs`).

        Raises BudgetReached when --max-cost is reached, RunError when the teacher
        fails and InstructError when its answers make no catalog; what was answered is
        kept and a re-run resumes. One process at a time runs a job: another one gets
        `RunLeased`, which names the process holding it.
        """
        if self.estimate:
            return await self._run()
        async with self.store.lease(self.run_id):
            return await self._run()

    async def _run(self) -> InstructResult:
        if not self.estimate:
            self.calls.check_prices([self.teacher])
        try:
            ex = await self.extract()
            records, rejected = await self.generate(ex)
        finally:
            await self.teacher.aclose()
        if not self.estimate:
            self.store.put_catalog(ex.catalog)
        records, rejected = filter_records(records, rejected, self.config.dedup_threshold)
        return InstructResult(self.run_id, ex, records, rejected, self.calls.stats, self.estimate)
