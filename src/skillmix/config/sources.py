"""Config files and flags, one vocabulary: each key of `CONFIG_KEYS` is a flag's name and a
file's key; `run_config` merges flags over a file over defaults into a `RunConfig`."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from skillmix.config.model import Decoding, RunConfig, SplitConfig
from skillmix.errors import InputError, validation_message
from skillmix.models import parse_spec
from skillmix.userfiles import read_user_table

CONFIG_DOC = "docs/config.md"
REGENERATE = "python -m skillmix.config > docs/config.md"
FieldPath = tuple[str, ...]
Parse = Callable[[Any, str], Any]
# Fields that hold a table of their own; a config file may write them whole.
TABLES: dict[str, type[BaseModel]] = {
    "student_decoding": Decoding,
    "judge_decoding": Decoding,
    "split": SplitConfig,
}


def parse_ints(value: Any, label: str) -> tuple[int, ...]:
    """`2`, `"2,3"`, `"2 3"`, `[2, 3]` or `("2,3", "4")` as a tuple of integers.

    Texts are split at commas and spaces; other values go on as they are (pydantic then
    says what is wrong with them).
    """
    parts = value if isinstance(value, (list, tuple)) else [value]
    out: list[Any] = []
    for part in parts:
        if not isinstance(part, str):
            out.append(part)
            continue
        for word in part.replace(",", " ").split():
            try:
                out.append(int(word))
            except ValueError:
                raise InputError(
                    f"{label} expects integers such as 2,3 or [2, 3], got {word!r}"
                ) from None
    return tuple(out)


def _texts(value: Any, label: str) -> Any:
    """One text or a list of them, as a tuple (other values go on to pydantic)."""
    if isinstance(value, str):
        return (value,)
    return tuple(value) if isinstance(value, list) else value


def negated(value: Any, label: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{label} is true or false, got {value!r}")
    return not value


def _reference_templates(value: Any, label: str) -> Any:
    from skillmix.prompts import template_spec

    return template_spec(None, str(value))


def _split_side(value: Any, label: str) -> Any:
    """`split = "train"` is `split = {part = "train"}`."""
    return {"part": value} if isinstance(value, str) else value


def _given(value: Any, label: str) -> Any:
    return value


@dataclass(frozen=True)
class ConfigKey:
    """One run setting as a config file and the command line name it.

    `name` is the flag's name with `_` (a file may also write `-`), `path` the RunConfig
    field it sets (inside a table for decoding and the split). `help` and `default`
    replace the field's description and default in docs/config.md where they differ.
    """

    name: str
    path: FieldPath
    flag: str = ""
    aliases: tuple[str, ...] = ()
    parse: Parse = _given
    help: str = ""
    default: str = ""


CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("student", ("student",), "--student"),
    ConfigKey("judges", ("judges",), "--judge", aliases=("judge",), parse=_texts),
    ConfigKey("k", ("k",), "--k", parse=parse_ints),
    ConfigKey("items", ("items",), "--items"),
    ConfigKey("generation_rounds", ("generation_rounds",), "--generation-rounds"),
    ConfigKey("grading_rounds", ("grading_rounds",), "--grading-rounds"),
    ConfigKey("seed", ("seed",), "--seed"),
    ConfigKey("catalog", ("catalog",), "--catalog", aliases=("catalogs",), parse=_texts),
    ConfigKey("templates", ("templates",), "--templates"),
    ConfigKey(
        "templates_from_reference",
        ("templates",),
        "--templates-from-reference",
        parse=_reference_templates,
        help="a checkout of the original Skill-Mix scripts whose prompt files to use",
        default="not set",
    ),
    ConfigKey("protocol", ("protocol",), "--protocol"),
    ConfigKey("tell_not_to_name", ("tell_not_to_name",), "--tell-not-to-name"),
    ConfigKey(
        "temperature",
        ("student_decoding", "temperature"),
        "--temperature",
        aliases=("student_temperature",),
        help="the student's temperature; not set: none is sent (the server's default, "
        "local models 0.7)",
    ),
    ConfigKey(
        "judge_temperature",
        ("judge_decoding", "temperature"),
        "--judge-temperature",
        help="the judges' temperature; not set: none is sent (the server's default, "
        "local models 0.7)",
    ),
    ConfigKey(
        "student_max_tokens",
        ("student_decoding", "max_tokens"),
        "--student-max-tokens",
        help="new tokens per student answer",
    ),
    ConfigKey(
        "judge_max_tokens",
        ("judge_decoding", "max_tokens"),
        "--judge-max-tokens",
        help="new tokens per judge answer",
    ),
    ConfigKey("student_decoding", ("student_decoding",)),
    ConfigKey("judge_decoding", ("judge_decoding",)),
    ConfigKey("naming_penalty", ("naming_penalty",)),
    ConfigKey(
        "no_naming_penalty",
        ("naming_penalty",),
        "--no-naming-penalty",
        parse=negated,
        help="do not zero the skills named in the text (the opposite of naming_penalty)",
    ),
    ConfigKey("structured", ("structured",)),
    ConfigKey(
        "no_structured",
        ("structured",),
        "--no-structured",
        parse=negated,
        help="never ask judges for structured output (the opposite of structured)",
    ),
    ConfigKey("parse_attempts", ("parse_attempts",)),
    ConfigKey("rubric_order", ("rubric_order",), "--rubric-order"),
    ConfigKey(
        "split",
        ("split",),
        "--split",
        parse=_split_side,
        help='evaluate on one side of a train/held-out split: "train" or "held-out" (or a '
        "table of part, skills, topics, categories, seed)",
        default="not set (no split)",
    ),
    ConfigKey("held_out_skills", ("split", "skills"), "--held-out-skills"),
    ConfigKey("held_out_topics", ("split", "topics"), "--held-out-topics"),
    ConfigKey(
        "held_out_category",
        ("split", "categories"),
        "--held-out-category",
        aliases=("held_out_categories",),
        parse=_texts,
    ),
    ConfigKey("split_seed", ("split", "seed"), "--split-seed"),
    ConfigKey("spread", ("spread",), default="not set (`skillmix spread` sets it)"),
)
KEYS_BY_NAME: dict[str, ConfigKey] = {
    name: key for key in CONFIG_KEYS for name in (key.name, *key.aliases)
}
# Flags that do not change a run's results, so they have no place in a config file.
NOT_RUN_SETTINGS = {
    "max_cost": "--max-cost",
    "workers": "--workers",
    "out": "--out",
    "aggregation": "--aggregation",
    "wait": "--wait",
    "store": "--store (or SKILLMIX_STORE)",
    "config": "--config",
    "settings": "--settings",
    "pricing": "--pricing, or [pricing] in skillmix.toml",
    "models": '[models."provider:model"] in skillmix.toml (--settings)',
}


@dataclass(frozen=True)
class _Given:
    value: Any
    label: str  # as the user wrote it: a key, table.key or --flag


def run_config(
    file_settings: Mapping[str, Any] | None = None,
    flags: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    source: str = "",
) -> RunConfig:
    """The RunConfig of a config file's settings, overridden by flags, over `defaults`.

    All are keyed by the names of `CONFIG_KEYS` (or their aliases); a flag or default
    whose value is None was not given. `source` names the file in messages. The same
    effective settings give the same RunConfig (and run id) whichever names set them.

    Raises `InputError` (one line) for an unknown key, two keys that set the same field,
    a value of the wrong kind, held-out shares without a side, and a student that is not
    embedded without a judge (it would be graded by the embedded 135M model).
    """
    where = source or "config file"
    chosen = {name: value for name, value in (defaults or {}).items() if value is not None}
    given = _paths(chosen, "defaults", from_flags=False)
    given.update(_paths(file_settings or {}, where, from_flags=False))
    chosen = {name: value for name, value in (flags or {}).items() if value is not None}
    given.update(_paths(chosen, "flags", from_flags=True))
    data = _nested(given)
    split = data.get("split")
    if isinstance(split, dict) and "part" not in split:
        labels = ", ".join(g.label for path, g in given.items() if path[0] == "split")
        raise InputError(
            f"{labels} set a split but not the side to evaluate on: set split (--split) to "
            '"train" or "held-out"'
        )
    names = {".".join(path): _shown(path, g.label) for path, g in given.items()}
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as err:
        context = f"invalid settings ({source} and flags)" if source else "invalid settings"
        raise InputError(validation_message(err, context, names)) from None
    if ("judges",) not in given:
        _require_judge(config.student)
    return config


def _require_judge(student: str) -> None:
    """An embedded student may default to the embedded judge; any other needs one named."""
    if parse_spec(student).provider != "embedded":
        raise InputError(
            f"no judge given for {student}: it would be graded by the embedded 135M model "
            "(SmolLM2-135M), which cannot grade reliably",
            hint='name one: --judge provider:model (judge = "provider:model" in a config '
            "file); --judge embedded keeps the small local judge on purpose",
        )


def _paths(settings: Mapping[str, Any], where: str, *, from_flags: bool) -> dict[FieldPath, _Given]:
    """Each setting at the RunConfig field it sets; two names for one field are an error."""
    out: dict[FieldPath, _Given] = {}
    for raw, value in settings.items():
        name = str(raw).replace("-", "_")
        key = KEYS_BY_NAME.get(name)
        if key is None:
            raise _unknown_key(str(raw), where)
        label = key.flag if from_flags and key.flag else str(raw)
        try:
            value = key.parse(value, label)
        except InputError as err:
            raise InputError(str(err) if from_flags else f"{where}: {err}", hint=err.hint) from None
        if len(key.path) == 1 and key.path[0] in TABLES:
            entries = _table_entries(key.path[0], value, label, where)
        else:
            entries = {key.path: _Given(value, label)}
        for path, entry in entries.items():
            if path in out:
                raise InputError(
                    f"{where}: {out[path].label} and {entry.label} both set "
                    f"{'.'.join(path)}: keep one"
                )
            out[path] = entry
    return out


def _table_entries(table: str, value: Any, label: str, where: str) -> dict[FieldPath, _Given]:
    """A table written whole (`student_decoding = {temperature = 0.2}`), field by field."""
    fields = list(TABLES[table].model_fields)
    if not isinstance(value, dict):
        example = ", ".join(f"{name} = …" for name in fields[:2])
        raise InputError(f"{where}: {label} must be a table such as {{{example}}}, got {value!r}")
    entries: dict[FieldPath, _Given] = {}
    for raw, item in value.items():
        name = str(raw).replace("-", "_")
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            guess = f" (did you mean '{table}.{close[0]}'?)" if close else ""
            raise InputError(
                f"{where}: unknown key '{table}.{raw}'{guess}; a {table} table holds "
                f"{', '.join(fields)}"
            )
        entries[(table, name)] = _Given(item, f"{label}.{raw}")
    return entries


def _nested(given: Mapping[FieldPath, _Given]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for path, entry in given.items():
        if len(path) == 1:
            data[path[0]] = entry.value
        else:
            data.setdefault(path[0], {})[path[1]] = entry.value
    return data


def _shown(path: FieldPath, label: str) -> str:
    """A field as the user named it: `--items`, or `--temperature (student_decoding...)`."""
    dotted = ".".join(path)
    return label if label.lstrip("-").replace("-", "_") == dotted else f"{label} ({dotted})"


def _unknown_key(raw: str, where: str) -> InputError:
    name = raw.replace("-", "_")
    hint = f"every key, its flag and its default: {CONFIG_DOC}"
    if name in NOT_RUN_SETTINGS:
        return InputError(
            f"{where}: {raw} is not a run setting (it does not change a run's results): "
            f"use {NOT_RUN_SETTINGS[name]}",
            hint=hint,
        )
    close = difflib.get_close_matches(name, list(KEYS_BY_NAME), n=1)
    guess = f" (did you mean '{close[0]}'?)" if close else ""
    keys = ", ".join(key.name for key in CONFIG_KEYS)
    return InputError(f"{where}: unknown key '{raw}'{guess}; the keys are {keys}", hint=hint)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML file of run settings, as they are (`run_config` reads them).

    The settings may sit at the top level or under `[run]`; a file that cannot be read or
    parsed, or that holds no table, is an `InputError` naming the file.
    """
    data = read_user_table(path, "config file")
    run = data.get("run", data)
    if not isinstance(run, dict):
        raise InputError(f"{path}: [run] must be a table of run settings")
    return run
