"""Set a run up from what a user gives: settings, catalog, models, store and engine.

Every command that runs the Skill-Mix protocol (`skillmix run`, `skillmix estimate`,
`skillmix data sft`) starts here, so none of them calls another, and a notebook gets the
same checks as the command line:

    prepared = prepare_run({"student": "openai:gpt-4o-mini", "judges": ["openai:gpt-4o"]})
    result = await prepared.engine.run()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skillmix.catalog.load import BUILTIN, load_catalog
from skillmix.catalog.model import Catalog
from skillmix.config import RunConfig
from skillmix.models import Settings, load_settings, resolve_model
from skillmix.protocol.engine import Engine
from skillmix.runtime.budget import check_max_cost
from skillmix.runtime.progress import Progress
from skillmix.store import Store


@dataclass
class PreparedRun:
    """A run ready to start: its config, the whole catalog, the settings and the engine."""

    config: RunConfig
    catalog: Catalog  # as loaded; the engine's is the side of it the run evaluates on
    settings: Settings
    engine: Engine

    @property
    def store(self) -> Store:
        return self.engine.store


def prepare_run(
    flags: Mapping[str, Any] | None = None,
    config_file: str | Path | Mapping[str, Any] | None = None,
    defaults: Mapping[str, Any] | None = None,
    *,
    store: Store | str | Path = "skillmix.sqlite",
    settings_file: str | Path | None = None,
    pricing: str | Path | None = None,
    max_cost: float | None = None,
    estimate: bool = False,
    workers: int | None = None,
    progress: Progress | None = None,
) -> PreparedRun:
    """The engine of the run that `flags`, a config file and `defaults` describe.

    `flags`, `config_file` and `defaults` are merged by `RunConfig.from_sources` (flags
    win). Settings and prices come from `settings_file` (default ./skillmix.toml when
    present) and `pricing`. Everything that can be wrong is found here, before anything
    is sent or written, as a `SkillmixError`: a setting, the catalog, a model spec, the
    store, items the catalog cannot supply, or a budget for a model without a price.
    """
    check_max_cost(max_cost)
    config = RunConfig.from_sources(flags, config_file, defaults)
    settings = load_settings(settings_file, pricing)
    catalog = load_catalog(list(config.catalog) or [BUILTIN])
    student = resolve_model(config.student, settings)
    judges = [resolve_model(judge, settings) for judge in config.judges]
    engine = Engine(
        store if isinstance(store, Store) else Store(store),
        config,
        catalog,
        student,
        judges,
        settings=settings,
        max_cost=max_cost,
        estimate=estimate,
        workers=workers,
        progress=progress,
    )
    engine.sample()  # a catalog too small for the items is an error now, not mid-run
    engine.calls.check_prices(engine.models)
    return PreparedRun(config, catalog, settings, engine)
