"""docs/config.md, generated from the keys and the model (`python -m skillmix.config`)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from skillmix.config.model import RunConfig
from skillmix.config.sources import (
    CONFIG_KEYS,
    NOT_RUN_SETTINGS,
    REGENERATE,
    TABLES,
    ConfigKey,
    FieldPath,
    negated,
)

_EXAMPLE = """\
student = "openai:gpt-4o-mini"
judge = "openai:gpt-4o"          # or judges = [...] for several
k = "2,3"                        # or k = [2, 3]
items = 100
temperature = 0.7                # the student's; judge_temperature for the judges
student_max_tokens = 512
"""


def config_reference() -> str:
    """docs/config.md: every key of a config file with its flag, default and meaning."""
    lines = [
        "# Run settings",
        "",
        "`skillmix run`, `skillmix estimate` and `skillmix data sft` read run settings from",
        "a TOML or YAML file (`--config FILE`); flags override the file. A key is the name",
        "of its flag with `_` (or `-`), at the top level or under `[run]`. A list may be",
        'written as one value (`judge = "openai:gpt-4o"`), and `k` also as text (`"2,3"`).',
        "",
        "```toml",
        _EXAMPLE.rstrip(),
        "```",
        "",
        "| key | flag | default | what |",
        "|---|---|---|---|",
    ]
    for key in CONFIG_KEYS:
        names = f"`{key.name}`" + "".join(f", `{alias}`" for alias in key.aliases)
        flag = f"`{key.flag}`" if key.flag else "—"
        lines.append(f"| {names} | {flag} | {_default_text(key)} | {_help_text(key)} |")
    lines += [
        "",
        "## Tables",
        "",
        "`student_decoding`, `judge_decoding` and `split` may also be written as tables",
        "(`[student_decoding]` with `temperature = 0.2`), though not together with the key",
        "that sets the same field (`temperature`). Their keys:",
        "",
    ]
    for table, model in TABLES.items():
        lines.append(f"- `{table}`:")
        for name, info in model.model_fields.items():
            default = "required" if (table, name) == ("split", "part") else None
            default = default or _toml(_default_at((table, name)))
            lines.append(f"  - `{name}` ({default}): {info.description or ''}")
    lines += [
        "",
        "## Not in a config file",
        "",
        "What does not change a run's results stays on the command line: "
        + ", ".join(
            f"`{flag.split()[0].rstrip(',')}`"
            for flag in NOT_RUN_SETTINGS.values()
            if flag.startswith("--")
        )
        + ". Model settings (base URLs, key variables, concurrency) and prices go in",
        "`skillmix.toml` (or `--settings FILE`).",
        "",
        "## Run ids",
        "",
        "A run's id is the hash of its effective settings, so the names used do not matter:",
        '`judge` or `judges`, `k = "2,3"` or `k = [2, 3]`, a file or flags give the same run,',
        "and re-running with any of them resumes it.",
        "",
        f"<!-- Generated from skillmix/config/ by `{REGENERATE}`; do not edit. -->",
        "",
    ]
    return "\n".join(lines)


def _field_info(path: FieldPath) -> Any:
    if len(path) == 1:
        return RunConfig.model_fields[path[0]]
    return TABLES[path[0]].model_fields[path[1]]


def _default_at(path: FieldPath) -> Any:
    if len(path) == 1:
        return getattr(RunConfig(), path[0])
    return getattr(TABLES[path[0]](), path[1])


def _default_text(key: ConfigKey) -> str:
    if key.default:
        return key.default
    value = _default_at(key.path)
    return _toml(not value if key.parse is negated else value)


def _help_text(key: ConfigKey) -> str:
    return key.help or str(_field_info(key.path).description or "")


def _toml(value: Any) -> str:
    """A default as it would be written in a TOML file, in code quotes."""
    if value is None:
        return "not set"
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_none=True)
    if isinstance(value, dict):
        inner = ", ".join(f"{name} = {json.dumps(item)}" for name, item in value.items())
        return f"`{{{inner}}}`"
    return f"`{json.dumps(list(value) if isinstance(value, tuple) else value)}`"
