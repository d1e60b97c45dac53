"""Typed configuration of a run, in one place. Loaded from CLI flags or a TOML/YAML file.

A config file and the command line use the same names: a key is its flag's name
(`judge`, `temperature`, `student_max_tokens`, `held_out_skills`), see `CONFIG_KEYS`,
which `run_config` reads and `config_reference` documents (docs/config.md, regenerated
with `python -m skillmix.config > docs/config.md`).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from skillmix.errors import InputError, validation_message
from skillmix.models import parse_spec
from skillmix.userfiles import read_user_table

# How a metric is taken over an item's generation rounds (see scoring.metrics.aggregate).
Aggregation = Literal["max", "mean", "best"]
AGGREGATIONS: tuple[Aggregation, ...] = ("max", "mean", "best")

# As the published runs: 512 new tokens for the student and the judge.
DEFAULT_MAX_TOKENS = 512
ProtocolName = Literal["skillmix", "paper"]
PROTOCOLS: tuple[ProtocolName, ...] = ("skillmix", "paper")
# How grading prompts order the rubric (see protocol.rubric_order).
RubricOrder = Literal["fixed", "shuffled"]
RUBRIC_ORDERS: tuple[RubricOrder, ...] = ("fixed", "shuffled")
# Written by the engine next to a run's stored config: what the models really ran at.
# It is a record, not a setting, so reading a stored config back drops it.
RECORDED_KEY = "effective_decoding"


class Decoding(BaseModel):
    """Decoding settings of one role.

    `temperature` None means none is sent: a hosted API uses its own default (as in the
    published runs) and a local model its provider's default (0.7 for the embedded model,
    the published local setting). The run records the value in effect.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float | None = Field(
        None,
        ge=0.0,
        le=2.0,
        allow_inf_nan=False,
        description="none is sent when not set (the server's default; local models 0.7)",
    )
    max_tokens: int = Field(DEFAULT_MAX_TOKENS, ge=1, description="new tokens per answer")


class SplitConfig(BaseModel):
    """Evaluate on one side of a train/held-out split of the catalog (SPEC section 2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    part: Literal["train", "held-out"] = Field(
        "held-out", description="the side to evaluate on: train or held-out"
    )
    skills: float = Field(0.0, ge=0.0, lt=1.0, description="share of skills held out")
    topics: float = Field(0.0, ge=0.0, lt=1.0, description="share of topics held out")
    categories: tuple[str, ...] = Field((), description="skill categories held out whole")
    seed: int = Field(0, description="seed of the split")


class SpreadTag(BaseModel):
    """Marks a run as one format variant of a `skillmix spread` (see `protocol.spread`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group: str = Field(description="the spread's id, shared by all its runs")
    index: int = Field(ge=0, description="the variant's place in the spread (0: the base set)")
    variant: str = Field(description="the variant's id: its non-base format choices, or base")
    choices: dict[str, str] = Field(description="every format dimension -> its option")


class RunConfig(BaseModel):
    """Everything that determines a run's results. Its hash is the run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    student: str = Field("embedded", description="the model under test, provider:model")
    judges: tuple[str, ...] = Field(
        ("embedded",),
        description="the judge models (required when the student is not embedded)",
    )
    k: tuple[int, ...] = Field((2, 3), description="skills per item")
    items: int = Field(10, ge=1, description="items per k")
    generation_rounds: int = Field(3, ge=1, description="independent generations per item")
    grading_rounds: int = Field(
        3, ge=1, description="independent gradings per generation, majority-voted"
    )
    seed: int = Field(0, description="seed of the items and of decoding")
    catalog: tuple[str, ...] = Field(
        ("builtin",), description="catalog files (.yaml, .jsonl, .csv, .txt), combined"
    )
    templates: str = Field(
        "v2", description="built-in set name, a folder of templates, or reference:DIR"
    )
    protocol: ProtocolName = Field(
        "skillmix", description="skillmix, or paper: as the published scripts"
    )
    tell_not_to_name: bool = Field(False, description="tell the student not to name the skills")
    student_decoding: Decoding = Field(Decoding(), description="the student's decoding")
    judge_decoding: Decoding = Field(Decoding(), description="the judges' decoding")
    structured: bool = Field(True, description="ask judges for structured output where possible")
    parse_attempts: int = Field(3, ge=1, description="tries per grading round before unparsed")
    rubric_order: RubricOrder = Field(
        "fixed",
        description="the order grading prompts list the criteria in: fixed, or shuffled "
        "(seeded, per grading round; for the audit's rubric-order check)",
    )
    naming_penalty: bool = Field(True, description="zero the skills named in the text")
    split: SplitConfig | None = Field(
        None, description="evaluate on one side of a train/held-out split"
    )
    spread: SpreadTag | None = Field(
        None, description="set by `skillmix spread`: the spread and format variant of this run"
    )

    @model_validator(mode="before")
    @classmethod
    def _settings_only(cls, data: Any) -> Any:
        """Drop what a stored run records beside its settings; paper grading is text-only."""
        if not isinstance(data, dict):
            return data
        data = {key: value for key, value in data.items() if key != RECORDED_KEY}
        if data.get("protocol") == "paper":
            if data.get("structured"):
                raise ValueError(
                    "the paper protocol grades from the judge's table, so structured output "
                    "cannot be on (drop structured / --no-structured is implied)"
                )
            data["structured"] = False
        return data

    @field_validator("k")
    @classmethod
    def _k_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(k < 1 for k in value):
            raise ValueError("k values must be positive integers")
        return tuple(sorted(set(value)))

    @field_validator("judges")
    @classmethod
    def _judges_given(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one judge is needed")
        return tuple(dict.fromkeys(value))

    def run_id(self, catalog_hash: str, template_version: str) -> str:
        """Same config, catalog content and templates: same run (so re-running resumes).

        Catalog and templates count by content (hash), not by where they were read from.
        Settings added later count only when they differ from their default, so the runs
        made before them keep their ids.
        """
        later = {"rubric_order"} if self.rubric_order == "fixed" else set()
        later |= {"spread"} if self.spread is None else set()
        payload = {
            **self.model_dump(mode="json", exclude={"catalog", "templates", *later}),
            "catalog_hash": catalog_hash,
            "template_version": template_version,
        }
        blob = json.dumps(payload, sort_keys=True)
        return "run-" + hashlib.sha256(blob.encode()).hexdigest()[:12]

    @classmethod
    def from_sources(
        cls,
        flags: Mapping[str, Any] | None = None,
        file: str | Path | Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> RunConfig:
        """The config that flags, a config file and defaults give, in that order of precedence.

        All three are keyed by the names of `CONFIG_KEYS` (or their aliases), and a value
        of None is not given. `file` is a TOML/YAML path or settings already read from one;
        `defaults` stand in for RunConfig's own (SFT data defaults to other k values). The
        same effective settings give the same config and run id whichever source set them.
        Raises `InputError`, naming the key as the user wrote it (see `run_config`).
        """
        if isinstance(file, (str, Path)):
            return run_config(load_config_file(file), flags, defaults=defaults, source=str(file))
        return run_config(file, flags, defaults=defaults)


def stored_protocol(stored: dict[str, Any]) -> str:
    """The protocol of a stored run's config (runs from before protocols: `skillmix`)."""
    return str(stored.get("protocol", "skillmix"))


def stored_decoding(stored: dict[str, Any]) -> dict[str, Any]:
    """The decoding a stored run ran at, per role: `{"student": {...}, "judges": {name:
    {...}}}` with `temperature`, `temperature_source` and `max_tokens`.

    What the run recorded; for runs made before that was recorded, their settings (their
    temperature was always sent)."""
    recorded = stored.get(RECORDED_KEY)
    if isinstance(recorded, dict):
        return recorded

    def configured(decoding: dict[str, Any]) -> dict[str, Any]:
        temperature = decoding.get("temperature")
        return {
            "temperature": temperature,
            "temperature_source": "set" if temperature is not None else "not recorded",
            "max_tokens": decoding.get("max_tokens"),
        }

    return {
        "student": configured(stored.get("student_decoding", {})),
        "judges": {j: configured(stored.get("judge_decoding", {})) for j in stored["judges"]},
    }


def describe_decoding(decoding: dict[str, Any]) -> str:
    """One role's decoding in words: `temperature 0.7 (embedded default), 512 max tokens`."""
    temperature = decoding.get("temperature")
    source = decoding.get("temperature_source", "")
    if temperature is None:
        text = "temperature not sent (the server's default)"
    elif source and source != "set":
        text = f"temperature {temperature:g} ({source})"
    else:
        text = f"temperature {temperature:g}"
    max_tokens = decoding.get("max_tokens")
    return f"{text}, {max_tokens if max_tokens is not None else 'unknown'} max tokens"


# --- config files and flags: one vocabulary ---------------------------------------------------

FieldPath = tuple[str, ...]
Parse = Callable[[Any, str], Any]
# Fields that hold a table of their own; a config file may write them whole.
TABLES: dict[str, type[BaseModel]] = {
    "student_decoding": Decoding,
    "judge_decoding": Decoding,
    "split": SplitConfig,
}
CONFIG_DOC = "docs/config.md"
REGENERATE = "python -m skillmix.config > docs/config.md"


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


def _negated(value: Any, label: str) -> bool:
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
        parse=_negated,
        help="do not zero the skills named in the text (the opposite of naming_penalty)",
    ),
    ConfigKey("structured", ("structured",)),
    ConfigKey(
        "no_structured",
        ("structured",),
        "--no-structured",
        parse=_negated,
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


# --- docs/config.md, generated from the keys and the model ------------------------------------

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
        f"<!-- Generated from skillmix/config.py by `{REGENERATE}`; do not edit. -->",
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
    return _toml(not value if key.parse is _negated else value)


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


if __name__ == "__main__":
    print(config_reference(), end="")
