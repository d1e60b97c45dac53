"""Config files use the flags' names: aliases, one-line errors, the generated key reference.

A run's id is the hash of its effective settings, so every way of writing the same
settings (alias or canonical key, text or list, file or flags) must give the same id.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from conftest import skillmix
from skillmix.cli.run import run as run_command
from skillmix.config import (
    CONFIG_KEYS,
    REGENERATE,
    TABLES,
    RunConfig,
    config_reference,
    load_config_file,
    run_config,
)
from skillmix.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
STUDENT = "openai:m@http://127.0.0.1:1/v1"
JUDGE = "openai:j@http://127.0.0.1:2/v1"
BASE = {"student": STUDENT}

# name -> (settings written with aliases / flag names, the same with RunConfig's own keys)
SAME_SETTINGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "judge as text": ({"judge": JUDGE}, {"judges": [JUDGE]}),
    "judge as list": ({"judge": [JUDGE, "embedded"]}, {"judges": [JUDGE, "embedded"]}),
    "judges as text": ({"judges": JUDGE}, {"judges": [JUDGE]}),
    "k as text": ({"judges": [JUDGE], "k": "2,3"}, {"judges": [JUDGE], "k": [2, 3]}),
    "k with spaces": ({"judges": [JUDGE], "k": "3 2"}, {"judges": [JUDGE], "k": [2, 3]}),
    "k as one number": ({"judges": [JUDGE], "k": 4}, {"judges": [JUDGE], "k": [4]}),
    "temperature": (
        {"judge": JUDGE, "temperature": 0.2},
        {"judges": [JUDGE], "student_decoding": {"temperature": 0.2}},
    ),
    "student_temperature": (
        {"judge": JUDGE, "student_temperature": 0.2},
        {"judges": [JUDGE], "student_decoding": {"temperature": 0.2, "max_tokens": 512}},
    ),
    "judge_temperature": (
        {"judge": JUDGE, "judge_temperature": 0.0},
        {"judges": [JUDGE], "judge_decoding": {"temperature": 0.0}},
    ),
    "max tokens of both roles": (
        {"judge": JUDGE, "student_max_tokens": 100, "judge_max_tokens": 64},
        {
            "judges": [JUDGE],
            "student_decoding": {"max_tokens": 100},
            "judge_decoding": {"max_tokens": 64},
        },
    ),
    "dashes for underscores": (
        {"judge": JUDGE, "generation-rounds": 2, "grading-rounds": 5},
        {"judges": [JUDGE], "generation_rounds": 2, "grading_rounds": 5},
    ),
    "no_naming_penalty": (
        {"judge": JUDGE, "no_naming_penalty": True},
        {"judges": [JUDGE], "naming_penalty": False},
    ),
    "no_structured": (
        {"judge": JUDGE, "no_structured": True},
        {"judges": [JUDGE], "structured": False},
    ),
    "catalog as text": (
        {"judge": JUDGE, "catalog": "skills.yaml"},
        {"judges": [JUDGE], "catalog": ["skills.yaml"]},
    ),
    "split by flag names": (
        {
            "judge": JUDGE,
            "split": "train",
            "held_out_skills": 0.2,
            "held_out_category": "humor",
            "split_seed": 3,
        },
        {
            "judges": [JUDGE],
            "split": {"part": "train", "skills": 0.2, "categories": ["humor"], "seed": 3},
        },
    ),
    "held_out_categories": (
        {"judge": JUDGE, "split": "held-out", "held_out_categories": ["humor", "logic"]},
        {"judges": [JUDGE], "split": {"part": "held-out", "categories": ["humor", "logic"]}},
    ),
}


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # strings, numbers, booleans and lists read the same in TOML


def write_config(path: Path, settings: dict[str, Any]) -> Path:
    """`settings` as a TOML or YAML file (by suffix), written by hand for TOML."""
    if path.suffix == ".toml":
        path.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in settings.items()))
    else:
        path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


@pytest.mark.parametrize("suffix", [".toml", ".yaml"])
@pytest.mark.parametrize("case", list(SAME_SETTINGS))
def test_alias_and_canonical_give_the_same_config_and_run_id(
    tmp_path: Path, case: str, suffix: str
):
    alias, canonical = SAME_SETTINGS[case]
    alias_file = write_config(tmp_path / f"alias{suffix}", {**BASE, **alias})
    canonical_file = write_config(tmp_path / f"canonical{suffix}", {**BASE, **canonical})
    by_alias = run_config(load_config_file(alias_file), source=str(alias_file))
    by_canonical = run_config(load_config_file(canonical_file), source=str(canonical_file))
    assert by_alias == by_canonical
    assert by_alias.run_id("catalog", "templates") == by_canonical.run_id("catalog", "templates")
    # The model's own validation agrees: nothing was lost on the way.
    assert by_canonical == RunConfig.model_validate({**BASE, **canonical})


def test_run_ids_did_not_move():
    """Ids computed before config keys existed: stores made then resume the same runs."""
    assert RunConfig().run_id("x", "y") == "run-94316ebf9b33"
    file_settings = {
        "student": STUDENT,
        "judge": [JUDGE, "embedded"],
        "k": "3,2",
        "items": 4,
        "generation_rounds": 2,
        "temperature": 0.2,
        "no_structured": True,
        "split": "train",
    }
    flags = {
        "grading_rounds": 1,
        "seed": 5,
        "judge_max_tokens": 100,
        "no_naming_penalty": True,
        "held_out_skills": 0.2,
        "split_seed": 3,
        "temperature": None,  # not given: the file's value stands
    }
    config = run_config(file_settings, flags, source="run.toml")
    assert config.run_id("cat", "tpl") == "run-39dbc609b61e"


def test_flags_and_file_give_the_same_run():
    from_file = run_config({"student": STUDENT, "judge": JUDGE, "k": [2, 3], "temperature": 0.5})
    from_flags = run_config(
        {}, {"student": STUDENT, "judges": (JUDGE,), "k": ("2", "3"), "temperature": 0.5}
    )
    assert from_file == from_flags


def test_flags_override_the_file_field_by_field():
    config = run_config(
        {"student": STUDENT, "judge": JUDGE, "student_decoding": {"temperature": 0.3}},
        {"student_max_tokens": 99, "judges": ("embedded",)},
        source="run.toml",
    )
    assert config.student_decoding.temperature == 0.3
    assert config.student_decoding.max_tokens == 99
    assert config.judges == ("embedded",)


def test_yaml_under_a_run_table_and_comma_k(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text(f"run:\n  student: {STUDENT}\n  judge: {JUDGE}\n  k: 2,3\n")
    config = run_config(load_config_file(path), source=str(path))
    assert config.k == (2, 3) and config.judges == (JUDGE,)


# --- errors ------------------------------------------------------------------------------------


def _error(file_settings: dict[str, Any], flags: dict[str, Any] | None = None) -> InputError:
    with pytest.raises(InputError) as caught:
        run_config(file_settings, flags, source="run.toml")
    return caught.value


def test_unknown_key_lists_the_keys_and_the_closest():
    err = _error({"jduge": JUDGE})
    message = str(err)
    assert message.startswith("run.toml: unknown key 'jduge' (did you mean 'judge'?)")
    assert all(key.name in message for key in CONFIG_KEYS)
    assert "docs/config.md" in err.hint
    assert "\n" not in message


def test_unknown_key_without_a_close_one_has_no_guess():
    message = str(_error({"zzzzzz": 1}))
    assert "unknown key 'zzzzzz'; the keys are student, judges" in message


def test_unknown_key_in_a_table_names_the_table_fields():
    message = str(_error({"judge_decoding": {"temprature": 0.1}}))
    assert "unknown key 'judge_decoding.temprature'" in message
    assert "did you mean 'judge_decoding.temperature'?" in message
    assert "holds temperature, max_tokens" in message


def test_a_flag_that_is_not_a_run_setting_says_where_it_goes():
    message = str(_error({"max_cost": 5}))
    assert "max_cost is not a run setting" in message and "--max-cost" in message
    assert "[models." in str(_error({"models": {}}))


def test_two_names_for_one_field_are_refused():
    assert "judge and judges both set judges: keep one" in str(
        _error({"judge": JUDGE, "judges": [JUDGE]})
    )
    message = str(_error({"temperature": 0.2, "student_decoding": {"temperature": 0.3}}))
    assert "temperature and student_decoding.temperature both set" in message


def test_values_are_checked_in_one_line_with_the_users_names():
    message = str(_error({"student": STUDENT, "judge": JUDGE, "temperature": 5}, {"items": 0}))
    assert message.startswith("invalid settings (run.toml and flags): ")
    assert "--items: should be greater than or equal to 1 (got 0)" in message
    assert "temperature (student_decoding.temperature): should be less than or equal to 2" in (
        message
    )
    assert "pydantic" not in message and "\n" not in message
    assert "k expects integers such as 2,3" in str(_error({"k": "2,x"}))
    assert str(_error({"k": "2,x"})).startswith("run.toml: ")
    assert "no_structured is true or false" in str(_error({"no_structured": "yes"}))
    assert "student_decoding must be a table" in str(_error({"student_decoding": 3}))


def test_held_out_shares_need_a_side():
    message = str(_error({"judge": JUDGE, "held_out_skills": 0.2}))
    assert message.startswith("held_out_skills set a split but not the side")
    assert '"train" or "held-out"' in message
    assert "--held-out-topics set a split" in str(_error({}, {"held_out_topics": 0.1}))


def test_a_student_that_is_not_embedded_needs_a_judge():
    err = _error({"student": STUDENT})
    assert f"no judge given for {STUDENT}" in str(err) and "135M" in str(err)
    assert "--judge provider:model" in err.hint
    assert _error({}, {"student": STUDENT}).hint == err.hint
    # An embedded student keeps the embedded judge; a judge named anywhere is enough.
    assert run_config({}).judges == ("embedded",)
    assert run_config({"student": STUDENT}, {"judges": ("embedded",)}).judges == ("embedded",)
    assert run_config({"judge": JUDGE}, {"student": STUDENT}).judges == (JUDGE,)


# --- the key reference cannot drift --------------------------------------------------------------


def test_docs_config_md_is_generated_from_the_model():
    path = ROOT / "docs" / "config.md"
    assert path.exists() and path.read_text() == config_reference(), (
        f"docs/config.md is out of date: regenerate it with `{REGENERATE}`"
    )


def test_every_field_has_a_key_and_every_key_a_field():
    reached = {key.path for key in CONFIG_KEYS}
    for name in RunConfig.model_fields:
        assert (name,) in reached, f"RunConfig.{name} has no config key"
    for table, model in TABLES.items():
        for name in model.model_fields:
            assert (table, name) in reached or (table,) in reached, f"{table}.{name}"
    for key in CONFIG_KEYS:
        assert key.path[0] in RunConfig.model_fields
        assert key.help or RunConfig.model_fields[key.path[0]].description, key.name


def test_every_flag_named_by_a_key_is_an_option_of_run():
    options = {opt for p in run_command.params if isinstance(p, click.Option) for opt in p.opts}
    for key in CONFIG_KEYS:
        if key.flag:
            assert key.flag in options, key.flag
            named = key.flag.removeprefix("--").replace("-", "_")
            assert named in (key.name, *key.aliases), f"{key.name} is not named as {key.flag}"


def test_every_key_is_documented_with_its_default():
    text = config_reference()
    for key in CONFIG_KEYS:
        row = next(line for line in text.splitlines() if line.startswith(f"| `{key.name}`"))
        assert all(f"`{alias}`" in row for alias in key.aliases)
        assert row.count("|") == 5 and "| |" not in row, row
    assert "| `items` | `--items` | `10` |" in text
    assert "| `student_max_tokens` | `--student-max-tokens` | `512` |" in text


# --- through the command line ------------------------------------------------------------------


def _run_id(stdout: str) -> str:
    match = re.search(r"estimate for (run-[0-9a-f]{12})", stdout)
    assert match, stdout
    return match.group(1)


def test_cli_config_file_with_flag_names_is_the_same_run_as_flags(tmp_path: Path):
    (tmp_path / "eval.toml").write_text(
        f'student = "{STUDENT}"\njudge = "{JUDGE}"\nk = "2,3"\nitems = 2\n'
        "temperature = 0.2\nstudent_max_tokens = 64\n"
    )
    (tmp_path / "eval.yaml").write_text(
        f"student: {STUDENT}\njudges: [{JUDGE}]\nk: [3, 2]\nitems: 2\n"
        "student_decoding: {temperature: 0.2, max_tokens: 64}\n"
    )
    by_toml = skillmix("estimate", "--config", "eval.toml", cwd=tmp_path)
    by_yaml = skillmix("estimate", "--config", "eval.yaml", cwd=tmp_path)
    by_flags = skillmix(
        *("estimate", "--student", STUDENT, "--judge", JUDGE, "--k", "2,3", "--items", "2"),
        *("--temperature", "0.2", "--student-max-tokens", "64"),
        cwd=tmp_path,
    )
    assert _run_id(by_toml.stdout) == _run_id(by_yaml.stdout) == _run_id(by_flags.stdout)


def test_cli_unknown_key_is_one_line_with_a_hint(tmp_path: Path):
    (tmp_path / "eval.toml").write_text(f'student = "{STUDENT}"\njuges = "{JUDGE}"\n')
    proc = skillmix("run", "--config", "eval.toml", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    first, hint = proc.stderr.strip().splitlines()
    assert first.startswith("error: eval.toml: unknown key 'juges' (did you mean 'judges'?)")
    assert hint == "hint: every key, its flag and its default: docs/config.md"
    assert not (tmp_path / "skillmix.sqlite").exists()
