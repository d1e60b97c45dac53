"""A run through a fault-injecting server ends with the same results as through a clean one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from scripted_server import FAULTS, FaultInjector, ScriptedServer, honest_policy
from skillmix.catalog.load import load_catalog
from skillmix.config import RunConfig
from skillmix.models import resolve_model
from skillmix.models.settings import ModelSettings, Settings
from skillmix.protocol.engine import Engine
from skillmix.report import build_report
from skillmix.store import Store


def run(store: Store, config: RunConfig, settings: Settings):
    engine = Engine(
        store,
        config,
        load_catalog(),
        resolve_model(config.student, settings),
        [resolve_model(j, settings) for j in config.judges],
        settings=settings,
    )
    return asyncio.run(engine.run())


def test_faults_are_survived_and_change_nothing(tmp_path: Path):
    injector = FaultInjector(slow_s=2.0)
    with ScriptedServer(injector) as server:
        spec = server.spec()
        settings = Settings(
            models={spec: ModelSettings(timeout_s=0.8, backoff_s=0.01, max_concurrency=8)}
        )
        config = RunConfig(
            student=spec, judges=(spec,), k=(2, 3), items=6, generation_rounds=2, grading_rounds=2
        )
        faulty = Store(tmp_path / "faulty.sqlite")
        result = run(faulty, config, settings)
        sent_with_faults = len(server.requests)

        server.policy = honest_policy
        clean = Store(tmp_path / "clean.sqlite")
        clean_result = run(clean, config, settings)

    assert all(injector.injected[f] > 0 for f in FAULTS), injector.injected
    injected = injector.injected
    assert result.retries["429"] == injected["429"] + injected["429-retry-after"]
    assert result.retries["500"] == injected["500"]
    assert result.retries["connection"] == injected["drop"]
    assert result.retries["malformed"] == injected["invalid-json"]
    assert result.retries["empty"] == injected["empty"]
    # A loaded machine may time out a healthy answer too; every slow one must time out.
    assert result.retries["timeout"] >= injected["slow"]
    assert result.stats.sent == clean_result.stats.sent
    assert sent_with_faults >= clean_result.stats.sent + sum(injected.values())
    faulty_report = build_report(faulty, result.run_id).to_dict()
    clean_report = build_report(clean, clean_result.run_id).to_dict()
    assert faulty_report["metrics"] == clean_report["metrics"]
    assert faulty_report["breakdowns"] == clean_report["breakdowns"]
    assert faulty.grades(result.run_id) == clean.grades(clean_result.run_id)
