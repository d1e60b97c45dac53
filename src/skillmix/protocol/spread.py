"""`skillmix spread`: the same items under several format variants of the templates.

A spread is one run per variant (`prompts.variants`), all in one store, each tagged with
the spread it belongs to (`RunConfig.spread`: the group id, the variant's place and its
choices), so that `scoring.spread` and the report find them together. Each is an
ordinary run on the ordinary `Engine`, run one after another: the budget, progress,
pause and resume behave as in `skillmix run`, and running the same spread again resumes
whichever variant was left unfinished.

The base variant runs first. A variant that changes only the grading prompt asks the
student exactly what the base asked, so its answers come from the call cache and only
its grading is sent; `SpreadResult` counts the student calls each variant shared.

    prepared = prepare_spread({"student": "openai:gpt-4o-mini", "judges": ["openai:gpt-4o"]},
                              variants=4)
    result = await prepared.run()
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillmix.config import RunConfig, SpreadTag
from skillmix.errors import InputError
from skillmix.prompts import VARIANT_PREFIX, load_templates
from skillmix.prompts.variants import Variant, check_base_layout, variants
from skillmix.protocol.engine import Engine, RunResult
from skillmix.protocol.prepare import PreparedRun, prepare_run
from skillmix.runtime.budget import check_max_cost
from skillmix.runtime.calls import CallStats, RoleUsage, usd
from skillmix.runtime.pool import BudgetReached
from skillmix.runtime.progress import Progress
from skillmix.store import Store


@dataclass(frozen=True)
class SpreadPlan:
    """The runs of a spread: one config per variant, the base set's first."""

    group: str
    variants: tuple[Variant, ...]
    configs: tuple[RunConfig, ...]


def spread_group(base: RunConfig, n: int, seed: int, *, student: bool) -> str:
    """The id of a spread: the same settings, variant count and seed give the same spread
    (so running it again resumes it)."""
    payload = {
        "config": base.model_dump(mode="json", exclude={"spread"}),
        "variants": n,
        "seed": seed,
        "student": student,
    }
    blob = json.dumps(payload, sort_keys=True)
    return "spread-" + hashlib.sha256(blob.encode()).hexdigest()[:12]


def plan_spread(base: RunConfig, n: int, *, seed: int = 0, student: bool = False) -> SpreadPlan:
    """The configs of a spread of `n` variants of `base`'s templates (see `variants`).

    Raises `InputError` for what a spread cannot vary: the `paper` protocol (its format is
    the published one), a template set not laid out as v2, or a base that is a variant.
    """
    if base.protocol != "skillmix":
        raise InputError(
            "skillmix spread varies the format of the skillmix protocol's prompts; "
            f"--protocol {base.protocol} keeps the published format fixed",
            hint='leave out --protocol (or set protocol = "skillmix")',
        )
    if base.spread is not None:
        raise InputError("the spread setting is made by `skillmix spread`: leave it out")
    if base.templates.startswith(VARIANT_PREFIX):
        raise InputError(
            f"--templates {base.templates} is already a format variant: give the set to vary"
        )
    chosen = variants(n, seed, student=student)
    if n > 1:
        check_base_layout(load_templates(base.templates))
    group = spread_group(base, n, seed, student=student)
    stored = base.model_dump(mode="json")
    configs = tuple(
        RunConfig.model_validate(
            {
                **stored,
                "templates": v.spec(base.templates),
                "spread": SpreadTag(
                    group=group, index=i, variant=v.id, choices=dict(v.choices)
                ).model_dump(),
            }
        )
        for i, v in enumerate(chosen)
    )
    return SpreadPlan(group, tuple(chosen), configs)


@dataclass
class VariantRun:
    """One variant's run, as this invocation ran it."""

    index: int
    variant: Variant
    result: RunResult

    @property
    def run_id(self) -> str:
        return self.result.run_id

    @property
    def student(self) -> RoleUsage:
        """The student's calls: sent now, or answered from the store (shared)."""
        return self.result.stats.roles.get("student", RoleUsage())


@dataclass
class SpreadResult:
    group: str
    runs: list[VariantRun]

    @property
    def stats(self) -> CallStats:
        return merged_stats([r.result.stats for r in self.runs])

    @property
    def student_sent(self) -> int:
        return sum(r.student.sent for r in self.runs)

    @property
    def student_shared(self) -> int:
        """Student calls answered from the store instead of being sent again."""
        return sum(r.student.cached for r in self.runs)


def merged_stats(parts: list[CallStats]) -> CallStats:
    """The calls of several jobs as one `CallStats` (per role, summed)."""
    total = CallStats()
    for stats in parts:
        for role, usage in stats.roles.items():
            into = total.role(role)
            into.sent += usage.sent
            into.cached += usage.cached
            into.prompt_tokens += usage.prompt_tokens
            into.completion_tokens += usage.completion_tokens
            into.cost += usage.cost
            into.unpriced += usage.unpriced
    return total


class _Forward(Progress):
    """A run's progress, forwarded to the spread's bars (whose totals cover every run)."""

    def __init__(self, inner: Progress):
        self.inner = inner

    def advance(self, stage: str, n: int = 1) -> None:
        self.inner.advance(stage, n)


@dataclass
class PreparedSpread:
    """A spread ready to run: its plan and one prepared run per variant."""

    plan: SpreadPlan
    runs: list[PreparedRun]
    max_cost: float | None = None
    progress: Progress = field(default_factory=Progress)

    @property
    def store(self) -> Store:
        return self.runs[0].store

    @property
    def engines(self) -> list[Engine]:
        return [r.engine for r in self.runs]

    @property
    def stats(self) -> CallStats:
        """Every call of this invocation so far, across the variants' runs."""
        return merged_stats([e.calls.stats for e in self.engines])

    async def run(self) -> SpreadResult:
        """Run (or resume) every variant's run, the base first.

        `BudgetReached` when --max-cost, counted over the whole spread, paused it, and
        `RunError` when a model stopped it; running the spread again resumes either.
        """
        totals: dict[str, int] = {}
        for engine in self.engines:
            for stage, n in engine.totals.items():
                totals[stage] = totals.get(stage, 0) + n
        for stage, n in totals.items():
            self.progress.total(stage, n)
        done: list[VariantRun] = []
        for index, (variant, engine) in enumerate(
            zip(self.plan.variants, self.engines, strict=True)
        ):
            engine.progress = _Forward(self.progress)
            if self.max_cost is not None:
                engine.calls.max_cost = max(0.0, self.max_cost - self.stats.cost)
            try:
                result = await engine.run()
            except BudgetReached as err:
                raise BudgetReached(
                    f"budget reached in variant {index} of {len(self.engines)} "
                    f"({variant.id}): {usd(self.stats.cost)} spent of --max-cost "
                    f"{usd(self.max_cost or 0.0)}; run the same command again (with a new "
                    "--max-cost) to continue"
                ) from err
            done.append(VariantRun(index, variant, result))
        return SpreadResult(self.plan.group, done)


def prepare_spread(
    flags: Mapping[str, Any] | None = None,
    config_file: str | Path | Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    *,
    variants: int = 4,
    variant_seed: int = 0,
    student_variants: bool = False,
    store: Store | str | Path = "skillmix.sqlite",
    settings_file: str | Path | None = None,
    pricing: str | Path | None = None,
    max_cost: float | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> PreparedSpread:
    """The spread of `variants` format variants of the run that the settings describe.

    `flags`, `config_file` and `defaults` describe the base run as for `prepare_run`;
    `variant_seed` draws the variants and `student_variants` lets them change the
    student's prompts too. Every run is prepared (and so checked) before any is started.
    """
    check_max_cost(max_cost)
    base = RunConfig.from_sources(flags, config_file, defaults)
    plan = plan_spread(base, variants, seed=variant_seed, student=student_variants)
    opened = store if isinstance(store, Store) else Store(store)
    runs = []
    for config in plan.configs:
        prepared = prepare_run(
            defaults=config.model_dump(mode="json", exclude_none=True),
            store=opened,
            settings_file=settings_file,
            pricing=pricing,
            max_cost=max_cost,
            workers=workers,
        )
        if prepared.config != config:  # a setting that does not survive its own round trip
            raise AssertionError(f"spread config changed when prepared: {prepared.config}")
        runs.append(prepared)
    return PreparedSpread(plan, runs, max_cost, progress or Progress())
