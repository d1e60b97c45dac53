"""`skillmix image run`: ConceptMix, from concept samples to graded images.

Work is one unit per sample (an object and k concepts, `sampling`), on the runtime's
worker pool, in three steps:

1. **prompt**: the prompter turns the sample into a text-to-image prompt
   (`prompts.write_messages`); the checker (the prompter itself unless another model is
   named) says which concepts the prompt expresses. A prompt that misses one is written
   again in the same conversation, told what was missing, up to `prompt_attempts` times;
   a check that cannot be read is asked again, then counts as unconfirmed. If no prompt
   passes, the one with the most concepts confirmed is used, and the record says so.
2. **image**: the generator draws the prompt; the image goes to the image store beside
   the run store and the call's answer is its SHA-256 (`generators`).
3. **grade**: the judge answers each concept's yes/no question about the image in
   `grading_rounds` independent rounds (own seeds), each unparsed answer asked again;
   the rounds are majority-voted (`metrics`).

Every call goes through the `CallCache`, so a killed run resumes without sending anything
twice, `--max-cost` pauses it (the text and vision calls are reserved; image calls count
what the generator reports), and `--estimate` walks the same steps sending nothing.
Image generation and grading always run in this process, whatever executor is set (the
image store is here); the prompter's and checker's calls go where the executor sends them.

What the run stores (records of the run, `Store.records(run_id, kind)`), for reports, the
HTML page and the review app:

- `image.catalog`, key `catalog`: the concept catalog (`ConceptCatalog.to_dict`, with
  its categories, concepts, rules and hash).
- `image.item`, key item id: the sample (`ConceptSample.describe`): `k`, `position`,
  `object` {id, name, ...}, `count`, and `concepts` [{id, name, category,
  category_name, reference {id, name} or null, phrase, question}] in prompt order.
- `image.prompt`, key item id: `prompt` (the text sent to the generator), `status`
  (the check of that prompt: "passed", "failed" or "unparsed"), `chosen` (the attempt
  used; null when no reply held a prompt and the concept list itself was drawn) and
  `attempts` [{prompt, key, check {status, expressed {concept id: 0/1}, missing,
  method, reason, keys}}].
- `image.image`, key item id: `sha256`, `file` (path inside the image folder, e.g.
  `ab/cdef….png`), `mime`, `bytes`, `width`, `height`, `key` (the generation call),
  `prompt`, `generator`, `size`.
- `image.grade`, key item id: `image` (sha256), `judge`, `concepts` [{id, name,
  category, question, decided (1, 0 or null), votes {yes, no, unparsed}, rounds
  [{round, status "parsed"/"unparsed", answer "yes"/"no"/null, raw (the judge's reply),
  method, reason, keys}]}], `full_marks` (1, 0 or null) and `concept_fraction`.

Image files: `image_store.ImageStore.beside(store).find(sha256)`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skillmix.catalog.model import Catalog, Skill, Topic
from skillmix.errors import InputError, StoreError
from skillmix.image.answers import CheckResult, YesNo, check_criteria, parse_check, parse_yes_no
from skillmix.image.concepts import ConceptCatalog
from skillmix.image.generators import GENERATOR_ROLE
from skillmix.image.image_store import ImageStore, image_ref
from skillmix.image.metrics import concept_fraction, decide, image_full_marks
from skillmix.image.prompts import (
    PROMPTS_VERSION,
    YES_NO_SCHEMA,
    check_messages,
    clean_prompt,
    question_messages,
    retry_messages,
    write_messages,
)
from skillmix.image.sampling import SAMPLER_VERSION, ConceptSample, sample_concepts
from skillmix.image.vision import VisionJudge
from skillmix.image.wording import phrase_template, question_template
from skillmix.models import ChatRequest, Model, Settings
from skillmix.models.base import Message
from skillmix.protocol.verdicts import verdict_json_schema
from skillmix.runtime.calls import CallCache, CallStats
from skillmix.runtime.executor import executing_on
from skillmix.runtime.pool import BudgetReached, WorkerPool, derive_seed, gather_all
from skillmix.runtime.progress import Progress
from skillmix.store import CallRecord, Store

KIND = "image"
CATALOG_RECORD = "image.catalog"
ITEM_RECORD = "image.item"
PROMPT_RECORD = "image.prompt"
IMAGE_RECORD = "image.image"
GRADE_RECORD = "image.grade"
PARSE_ATTEMPTS = 2  # draws of a check or an answer before it counts as unparsed
STAGES = ("prompt", "image", "grade")
ESTIMATE_IMAGE = "0" * 64  # the image an estimate's judge calls refer to


class ImageRunConfig(BaseModel):
    """Everything that determines an image run; its hash is the run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generator: str
    judge: str
    prompter: str = "embedded"
    checker: str | None = None  # None: the prompter checks its own prompts
    catalog: str = "builtin"  # the concept catalog's name
    catalog_hash: str = ""  # its content hash (`ConceptCatalog.content_hash`)
    k: tuple[int, ...] = (1, 2, 3, 4)
    items: int = Field(10, ge=1, description="samples per k")
    grading_rounds: int = Field(3, ge=1, le=15)
    prompt_attempts: int = Field(3, ge=1, le=10)
    seed: int = 0
    image_size: str = "512x512"
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    judge_temperature: float | None = Field(None, ge=0.0, le=2.0)
    prompt_max_tokens: int = Field(200, ge=16)
    check_max_tokens: int = Field(256, ge=16)
    judge_max_tokens: int = Field(64, ge=4)
    structured: bool = True

    @field_validator("k")
    @classmethod
    def _k(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1:
            raise ValueError("k values must be at least 1")
        return tuple(sorted(set(value)))

    @field_validator("image_size")
    @classmethod
    def _size(cls, value: str) -> str:
        width, sep, height = value.lower().partition("x")
        if not (sep and width.isdigit() and height.isdigit()):
            raise ValueError(f"image size must be WIDTHxHEIGHT, e.g. 512x512 (got {value!r})")
        return value.lower()

    def run_id(self) -> str:
        blob = json.dumps(self.recorded(), sort_keys=True)
        return "image-" + hashlib.sha256(blob.encode()).hexdigest()[:12]

    def recorded(self) -> dict[str, Any]:
        """The run's config as stored in its `runs` row."""
        return {
            "kind": KIND,
            **self.model_dump(mode="json"),
            "prompts": PROMPTS_VERSION,
            "sampler": SAMPLER_VERSION,
        }


@dataclass
class ImageRunResult:
    run_id: str
    resumed: bool
    stats: CallStats
    items: int


class _InProcess:
    """The executor of the calls that involve images: this process, where the store is."""

    def model(self, local: Model, settings: Settings) -> Model:
        return local


IN_PROCESS = _InProcess()


def catalog_view(catalog: ConceptCatalog) -> Catalog:
    """The concept catalog as a skill catalog (concepts as skills, objects as topics): the
    row a run's `runs.catalog_hash` points to. The full catalog is the `image.catalog`
    record."""
    objects = {o.id for o in catalog.objects}
    return Catalog(
        name=f"conceptmix:{catalog.name}",
        skills=tuple(
            Skill(
                id=c.id,
                name=c.name,
                category=c.category,
                definition=question_template(c, catalog.category(c.category)),
                example=phrase_template(c, catalog.category(c.category)),
            )
            for c in catalog.concepts
            if c.id not in objects
        ),
        topics=tuple(Topic(id=o.id, name=o.name, category="object") for o in catalog.objects),
        version=catalog.version,
    )


class ImageRun:
    """One ConceptMix run: a config, a concept catalog and the four models.

    `run()` raises `BudgetReached` when --max-cost paused it and `RunError` when a model
    stopped it (from `runtime.pool`); a re-run resumes either.
    """

    def __init__(
        self,
        store: Store,
        config: ImageRunConfig,
        catalog: ConceptCatalog,
        *,
        generator: Model,
        judge: Model,
        prompter: Model,
        checker: Model | None = None,
        images: ImageStore | None = None,
        settings: Settings | None = None,
        max_cost: float | None = None,
        estimate: bool = False,
        workers: int | None = None,
        progress: Progress | None = None,
    ):
        if config.catalog_hash and config.catalog_hash != catalog.content_hash:
            raise InputError(
                f"the config names concept catalog {config.catalog_hash[:12]}, not this one "
                f"({catalog.short_hash})"
            )
        self.store = store
        self.config = config
        self.catalog = catalog
        self.images = images or ImageStore.beside(store)
        self.generator = generator
        self.judge = judge if isinstance(judge, VisionJudge) else VisionJudge(judge, self.images)
        self.prompter = prompter
        self.checker = checker or prompter
        self.samples = [
            sample
            for k in config.k
            for sample in sample_concepts(catalog, k, config.items, config.seed)
        ]
        self.described = {
            s.id: {**s.describe(catalog), "position": i} for i, s in enumerate(self.samples)
        }
        self.run_id = config.run_id()
        self.estimate = estimate
        self.calls = CallCache(
            store, run_id=self.run_id, settings=settings, max_cost=max_cost, estimate=estimate
        )
        self.pool = WorkerPool(self.calls, self.models, workers)
        self.progress = progress or Progress()

    @property
    def models(self) -> list[Model]:
        """Every model of the run, each once."""
        found: dict[int, Model] = {}
        for model in (self.prompter, self.checker, self.generator, self.judge):
            found.setdefault(id(model), model)
        return list(found.values())

    @property
    def priced_models(self) -> list[Model]:
        """The models --max-cost needs a price for: the text and vision ones (images are
        priced per image by most APIs, which the token-based budget cannot reserve)."""
        return [m for m in self.models if m is not self.generator]

    # --- the run --------------------------------------------------------------------------------

    async def run(self) -> ImageRunResult:
        """Run or resume, holding the run's lease (one process at a time runs a run)."""
        if self.estimate:
            return await self._run()
        async with self.store.lease(self.run_id):
            return await self._run()

    async def _run(self) -> ImageRunResult:
        self.calls.check_prices(self.priced_models)
        resumed = False
        if not self.estimate:
            view = catalog_view(self.catalog)
            self.store.put_catalog(view)
            resumed = self.store.ensure_run(
                self.run_id, self.config.recorded(), view.content_hash, PROMPTS_VERSION
            )
            self.store.set_running(self.run_id)
            self.store.put_record(self.run_id, CATALOG_RECORD, "catalog", self.catalog.to_dict())
            for sample in self.samples:
                self.store.put_record(
                    self.run_id, ITEM_RECORD, sample.id, self.described[sample.id]
                )
        for stage in STAGES:
            self.progress.total(stage, len(self.samples))
        try:
            await self.pool.run(self.samples, self._item)
        except BudgetReached:
            self._set_status("paused")
            raise
        except BaseException:
            self._set_status("stopped")
            raise
        finally:
            await asyncio.gather(*(m.aclose() for m in self.models))
        self._set_status("done")
        return ImageRunResult(self.run_id, resumed, self.calls.stats, len(self.samples))

    def _set_status(self, status: str) -> None:
        if not self.estimate:
            self.store.set_run_status(self.run_id, status)

    def _put(self, kind: str, sample: ConceptSample, data: Mapping[str, Any]) -> None:
        if not self.estimate:
            self.store.put_record(self.run_id, kind, sample.id, data)

    async def _item(self, sample: ConceptSample) -> None:
        described = self.described[sample.id]
        prompt = await self._prompt(sample, described)
        self._put(PROMPT_RECORD, sample, prompt)
        self.progress.advance("prompt")
        image = await self._image(sample, prompt["prompt"])
        self._put(IMAGE_RECORD, sample, image)
        self.progress.advance("image")
        grade = await self._grade(sample, described, image["sha256"])
        self._put(GRADE_RECORD, sample, grade)
        self.progress.advance("grade")

    # --- 1. the prompt ----------------------------------------------------------------------

    async def _prompt(self, sample: ConceptSample, described: Mapping[str, Any]) -> dict[str, Any]:
        """The prompt for `sample`: written, checked and written again until it passes."""
        concepts = described["concepts"]
        phrases = {c["id"]: c["phrase"] for c in concepts}
        history: list[tuple[str, list[str] | None]] = []
        attempts: list[dict[str, Any]] = []
        for attempt in range(self.config.prompt_attempts):
            messages = retry_messages(described, history) if history else write_messages(described)
            record = await self._ask(
                self.prompter,
                "prompter",
                messages,
                seed=derive_seed(self.config.seed, sample.id, "prompt", attempt),
                temperature=self.config.temperature,
                max_tokens=self.config.prompt_max_tokens,
            )
            if record.synthetic:
                text = " ".join(c["phrase"] for c in concepts) + " " + described["object"]["name"]
                await self._check(sample, concepts, text, attempt)
                return {"prompt": text, "status": "estimate", "chosen": 0, "attempts": []}
            text = clean_prompt(record.response)
            if text:
                check = await self._check(sample, concepts, text, attempt)
            else:
                check = {
                    "status": "failed",
                    "expressed": {},
                    "missing": list(phrases),
                    "method": "",
                    "reason": "the reply holds no prompt",
                    "keys": [],
                }
            attempts.append({"prompt": text, "key": record.key, "check": check})
            if check["status"] in ("passed", "estimate"):
                break
            missing = (
                None if check["status"] == "unparsed" else [phrases[c] for c in check["missing"]]
            )
            history.append((record.response, missing))
        chosen = _best_attempt(attempts)
        if not attempts[chosen]["prompt"]:  # no reply held a prompt: draw the list itself
            listed = ", ".join(c["phrase"] for c in concepts)
            return {
                "prompt": f"{described['object']['name']}: {listed}",
                "status": "failed",
                "chosen": None,
                "attempts": attempts,
            }
        return {
            "prompt": attempts[chosen]["prompt"],
            "status": attempts[chosen]["check"]["status"],
            "chosen": chosen,
            "attempts": attempts,
        }

    async def _check(
        self,
        sample: ConceptSample,
        concepts: Sequence[Mapping[str, Any]],
        prompt: str,
        attempt: int,
    ) -> dict[str, Any]:
        """Which concepts `prompt` expresses, by the checker: passed, failed or unparsed."""
        structured = self.config.structured and self.checker.supports_structured
        schema = verdict_json_schema(check_criteria(concepts)) if structured else None
        keys: list[str] = []
        reason = ""
        for draw in range(PARSE_ATTEMPTS):
            record = await self._ask(
                self.checker,
                "checker",
                check_messages(prompt, concepts),
                seed=derive_seed(self.config.seed, sample.id, "check", attempt),
                temperature=self.config.judge_temperature,
                max_tokens=self.config.check_max_tokens,
                schema=schema,
                sample=draw,
            )
            if record.synthetic:
                return {"status": "estimate", "keys": []}
            keys.append(record.key)
            found = parse_check(record.response, concepts)
            if isinstance(found, CheckResult):
                return {
                    "status": "passed" if found.passed else "failed",
                    "expressed": found.expressed,
                    "missing": found.missing,
                    "method": found.method,
                    "reason": "",
                    "keys": keys,
                }
            reason = found.reason + _cut_off(record)
        return {
            "status": "unparsed",
            "expressed": {},
            "missing": [],
            "method": "",
            "reason": reason,
            "keys": keys,
        }

    # --- 2. the image -----------------------------------------------------------------------

    async def _image(self, sample: ConceptSample, prompt: str) -> dict[str, Any]:
        """The generator's image of `prompt`, from the image store."""
        request = ChatRequest(
            ({"role": "user", "content": prompt},),
            seed=derive_seed(self.config.seed, sample.id, "image"),
        )
        with executing_on(IN_PROCESS):
            record = await self.calls.call(self.generator, GENERATOR_ROLE, request)
        if record.synthetic:
            return {"sha256": ESTIMATE_IMAGE, "key": "", "prompt": prompt}
        digest = record.response.strip()
        if self.images.find(digest) is None:
            raise StoreError(
                f"item {sample.id}: the store has the generation call {record.key[:12]} but not "
                f"its image {digest[:12]} in {self.images.root}",
                hint="put the image folder back beside the store (copy it along with the "
                "store), or run with a new --store",
            )
        return {
            **self.images.info(digest).to_dict(),
            "key": record.key,
            "prompt": prompt,
            "generator": self.generator.spec,
            "size": self.config.image_size,
        }

    # --- 3. grading -----------------------------------------------------------------------------

    async def _grade(
        self, sample: ConceptSample, described: Mapping[str, Any], digest: str
    ) -> dict[str, Any]:
        """Each concept's question about the image, in every grading round, voted."""
        concepts = described["concepts"]
        rounds = self.config.grading_rounds
        answers: dict[tuple[int, int], dict[str, Any]] = {}

        async def answer(index: int, grading_round: int) -> None:
            answers[index, grading_round] = await self._answer(
                sample, concepts[index], digest, grading_round
            )

        await gather_all(answer(i, r) for i in range(len(concepts)) for r in range(rounds))
        graded = []
        for index, concept in enumerate(concepts):
            voted = [answers[index, r] for r in range(rounds)]
            values = [None if v["answer"] is None else v["answer"] == "yes" for v in voted]
            graded.append(
                {
                    "id": concept["id"],
                    "name": concept["name"],
                    "category": concept["category"],
                    "question": concept["question"],
                    "decided": decide(values),
                    "votes": {
                        "yes": values.count(True),
                        "no": values.count(False),
                        "unparsed": values.count(None),
                    },
                    "rounds": voted,
                }
            )
        decided = [g["decided"] for g in graded]
        return {
            "item_id": sample.id,
            "k": sample.k,
            "image": digest,
            "judge": self.judge.spec,
            "concepts": graded,
            "full_marks": image_full_marks(decided),
            "concept_fraction": concept_fraction(decided),
        }

    async def _answer(
        self, sample: ConceptSample, concept: Mapping[str, Any], digest: str, grading_round: int
    ) -> dict[str, Any]:
        """One grading round's answer to one concept's question, asked again if unreadable."""
        structured = self.config.structured and self.judge.supports_structured
        messages = question_messages(concept["question"], structured=structured)
        keys: list[str] = []
        raw = reason = ""
        for draw in range(PARSE_ATTEMPTS):
            request = ChatRequest(
                tuple(messages),
                self.config.judge_temperature,
                self.config.judge_max_tokens,
                derive_seed(self.config.seed, sample.id, concept["id"], "grade", grading_round),
                YES_NO_SCHEMA if structured else None,
                sample=draw,
                images=(image_ref(digest),),
            )
            with executing_on(IN_PROCESS):
                record = await self.calls.call(self.judge, "judge", request)
            if record.synthetic:
                break
            keys.append(record.key)
            raw = record.response
            found = parse_yes_no(raw)
            if isinstance(found, YesNo):
                return {
                    "round": grading_round,
                    "status": "parsed",
                    "answer": "yes" if found.value else "no",
                    "raw": raw,
                    "method": found.method,
                    "reason": "",
                    "keys": keys,
                }
            reason = found.reason + _cut_off(record)
        return {
            "round": grading_round,
            "status": "unparsed",
            "answer": None,
            "raw": raw,
            "method": "",
            "reason": reason,
            "keys": keys,
        }

    async def _ask(
        self,
        model: Model,
        role: str,
        messages: list[Message],
        *,
        seed: int,
        temperature: float | None,
        max_tokens: int,
        schema: dict[str, Any] | None = None,
        sample: int = 0,
    ) -> CallRecord:
        request = ChatRequest(tuple(messages), temperature, max_tokens, seed, schema, sample)
        return await self.calls.call(model, role, request)


def _best_attempt(attempts: Sequence[Mapping[str, Any]]) -> int:
    """The attempt to use: the first that passed, else the one with the most concepts
    confirmed (the earliest among equals)."""

    def confirmed(index: int) -> int:
        check = attempts[index]["check"]
        if not attempts[index]["prompt"]:
            return -2
        if check["status"] == "passed":
            return 10**6
        return sum(check.get("expressed", {}).values()) if check["status"] == "failed" else -1

    return max(range(len(attempts)), key=lambda i: (confirmed(i), -i))


def _cut_off(record: CallRecord) -> str:
    return " (cut off at the token limit)" if record.finish_reason == "length" else ""
