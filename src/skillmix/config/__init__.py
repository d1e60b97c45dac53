"""Typed configuration of a run, in one place. Loaded from CLI flags or a TOML/YAML file.

A config file and the command line use the same names: a key is its flag's name
(`judge`, `temperature`, `student_max_tokens`, `held_out_skills`), see `CONFIG_KEYS`,
which `run_config` reads and `config_reference` documents (docs/config.md, regenerated
with `python -m skillmix.config > docs/config.md`).

The parts: `model` (the typed settings, `RunConfig`), `sources` (the keys, config files
and flags merged into one `RunConfig`), `reference` (the generated docs/config.md).
"""

from __future__ import annotations

from skillmix.config.model import (
    AGGREGATIONS,
    DEFAULT_MAX_TOKENS,
    PROTOCOLS,
    RECORDED_KEY,
    RUBRIC_ORDERS,
    Aggregation,
    Decoding,
    ProtocolName,
    RubricOrder,
    RunConfig,
    SplitConfig,
    SpreadTag,
    describe_decoding,
    stored_decoding,
    stored_protocol,
)
from skillmix.config.reference import config_reference
from skillmix.config.sources import (
    CONFIG_DOC,
    CONFIG_KEYS,
    KEYS_BY_NAME,
    NOT_RUN_SETTINGS,
    REGENERATE,
    TABLES,
    ConfigKey,
    FieldPath,
    Parse,
    load_config_file,
    negated,
    parse_ints,
    run_config,
)

__all__ = [
    "AGGREGATIONS",
    "CONFIG_DOC",
    "CONFIG_KEYS",
    "DEFAULT_MAX_TOKENS",
    "KEYS_BY_NAME",
    "NOT_RUN_SETTINGS",
    "PROTOCOLS",
    "RECORDED_KEY",
    "REGENERATE",
    "RUBRIC_ORDERS",
    "TABLES",
    "Aggregation",
    "ConfigKey",
    "Decoding",
    "FieldPath",
    "Parse",
    "ProtocolName",
    "RubricOrder",
    "RunConfig",
    "SplitConfig",
    "SpreadTag",
    "config_reference",
    "describe_decoding",
    "load_config_file",
    "negated",
    "parse_ints",
    "run_config",
    "stored_decoding",
    "stored_protocol",
]
