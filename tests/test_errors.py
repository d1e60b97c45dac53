"""One error model: a user's mistake ends in one line and exit code 1, never a traceback.

Also: foreign text (server error bodies, catalog text, model output) is printed as text,
never as Rich markup or terminal control sequences.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from pydantic import BaseModel, Field, ValidationError

from conftest import skillmix
from scripted_server import Reply, ScriptedServer, honest_policy
from skillmix.config import load_config_file
from skillmix.errors import (
    BudgetError,
    InputError,
    ModelError,
    SkillmixError,
    StoreError,
    validation_message,
)
from skillmix.models.settings import SettingsError, load_settings
from skillmix.runtime.budget import check_max_cost
from skillmix.terminal import escaped, plain, safe_text

NOT_UTF8 = "café = 1\n".encode("latin-1")

# name -> (files to write, arguments after `skillmix`, text the message must contain)
BAD_INPUTS: dict[str, tuple[dict[str, bytes | str], list[str], str]] = {
    "catalog not UTF-8": (
        {"skills.csv": b"name,category,definition,example\nm\xe9taphore,a,b,c\n"},
        ["catalog", "validate", "skills.csv"],
        "not UTF-8",
    ),
    "config not UTF-8": ({"run.toml": NOT_UTF8}, ["run", "--config", "run.toml"], "not UTF-8"),
    "settings not UTF-8": (
        {"s.toml": NOT_UTF8},
        ["run", "--settings", "s.toml"],
        "s.toml:1: the settings file is not UTF-8",
    ),
    "pricing not UTF-8": (
        {"p.yaml": NOT_UTF8},
        ["run", "--pricing", "p.yaml"],
        "p.yaml:1: the pricing file is not UTF-8",
    ),
    "config TOML syntax": ({"run.toml": "k = [2,\n"}, ["run", "--config", "run.toml"], "TOML"),
    "config YAML syntax": (
        {"run.yaml": "k: [2\nitems: 3\n"},
        ["run", "--config", "run.yaml"],
        "invalid YAML",
    ),
    "settings TOML syntax": (
        {"s.toml": "[models\n"},
        ["run", "--settings", "s.toml"],
        "invalid TOML",
    ),
    "config is a list": (
        {"run.yaml": "- 2\n- 3\n"},
        ["run", "--config", "run.yaml"],
        "found a list",
    ),
    "config is plain text": (
        {"run.yaml": "just some words\n"},
        ["run", "--config", "run.yaml"],
        "found plain text",
    ),
    "config [run] not a table": (
        {"run.toml": 'run = "fast"\n'},
        ["run", "--config", "run.toml"],
        "[run] must be a table",
    ),
    "temperature -1": ({}, ["run", "--temperature", "-1"], "student_decoding.temperature"),
    "temperature nan": ({}, ["run", "--temperature", "nan"], "finite number"),
    "judge temperature inf": ({}, ["run", "--judge-temperature", "inf"], "finite number"),
    "student max tokens -1": (
        {},
        ["run", "--student-max-tokens", "-1"],
        "student_decoding.max_tokens",
    ),
    "student max tokens 0": ({}, ["run", "--student-max-tokens", "0"], "max_tokens"),
    "decoding table of the wrong type": (
        {"run.toml": "student_decoding = 3\n"},
        ["run", "--config", "run.toml"],
        "student_decoding",
    ),
    "decoding table with a bad value": (
        {"run.toml": '[student_decoding]\ntemperature = "hot"\n'},
        ["run", "--config", "run.toml"],
        "invalid settings (run.toml and flags): student_decoding.temperature",
    ),
    "decoding table with an unknown key": (
        {"run.toml": "[judge_decoding]\ntop_k = 3\n"},
        ["run", "--config", "run.toml"],
        "judge_decoding.top_k",
    ),
    "max cost nan": ({}, ["run", "--max-cost", "nan"], "--max-cost must be"),
    "max cost -1": ({}, ["run", "--max-cost", "-1"], "--max-cost must be"),
    "instruct max cost nan": ({}, ["data", "instruct", "--max-cost", "nan"], "--max-cost"),
    "instruct temperature -1": ({}, ["data", "instruct", "--temperature", "-1"], "temperature"),
    "settings with a key in the base URL": (
        {"s.toml": '[models."openai:m"]\nbase_url = "http://me:hunter2@127.0.0.1:9/v1"\n'},
        ["run", "--settings", "s.toml"],
        "holds credentials",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, case: str):
    files, args, expected = BAD_INPUTS[case]
    for name, content in dict(files).items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    proc = skillmix(*args, cwd=tmp_path, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    # One line; a catalog adds its problems indented below it; a hint may follow.
    first, *rest = proc.stderr.strip().splitlines()
    assert first.startswith("error: ") and expected in proc.stderr, proc.stderr
    problems = [line for line in rest if line.startswith("  ")]
    hinted = bool(rest) and rest == [*problems, rest[-1]] and rest[-1].startswith("hint: ")
    assert rest == problems or hinted, proc.stderr
    assert "hunter2" not in proc.stderr
    assert "pydantic" not in proc.stderr  # no link to pydantic's error pages
    assert not (tmp_path / "skillmix.sqlite").exists()  # rejected before anything was written


def test_catalog_error_lists_every_problem_but_no_traceback(tmp_path: Path):
    bad = tmp_path / "skills.csv"
    bad.write_text("name,category,definition,example\na,,d,e\nb,c,,e\n")
    proc = skillmix("catalog", "validate", str(bad), cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{bad}:2:" in proc.stderr and f"{bad}:3:" in proc.stderr


# --- foreign text is text --------------------------------------------------------------------

HOSTILE = "upstream said [/] and [bold red]boom[/bold red] \x1b[2J\x1b]0;owned\x07 [link=x]y"


def _settings_without_retries(tmp_path: Path, spec: str) -> Path:
    path = tmp_path / "skillmix.toml"
    path.write_text(f'[models."{spec}"]\nmax_retries = 0\nbackoff_s = 0\n')
    return path


def test_server_error_body_with_markup_is_printed_as_text(tmp_path: Path):
    def policy(body: dict) -> Reply:
        return Reply(status=500, raw=HOSTILE)

    with ScriptedServer(policy) as server:
        spec = server.spec()
        settings = _settings_without_retries(tmp_path, spec)
        proc = skillmix(
            *("run", "--student", spec, "--judge", spec, "--k", "2", "--items", "1"),
            *("--generation-rounds", "1", "--grading-rounds", "1", "--settings", str(settings)),
            cwd=tmp_path,
            check=False,
        )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "MarkupError" not in proc.stderr
    assert "upstream said [/] and [bold red]boom[/bold red]" in proc.stderr
    assert "[link=x]y" in proc.stderr
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr


def test_hint_in_brackets_is_printed_whole(tmp_path: Path, server: ScriptedServer):
    spec = server.spec()
    proc = skillmix(
        *("run", "--student", spec, "--judge", spec, "--k", "2", "--items", "1"),
        *("--max-cost", "1"),
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "add it under [pricing] in skillmix.toml" in proc.stderr
    assert server.requests == []


def _escaping_policy(body: dict) -> Reply:
    """The honest student and judge, with escape sequences and markup in every answer."""
    reply = honest_policy(body)
    if reply.content and "Answer:" in reply.content:
        reply.content = reply.content.replace(
            "Answer: ", "Answer: \x1b[31m[bold]red[/bold]\x1b[0m \x1b]0;title\x07"
        )
    return reply


def test_show_prints_model_output_without_control_sequences(tmp_path: Path):
    with ScriptedServer(_escaping_policy) as server:
        spec = server.spec()
        skillmix(
            *("run", "--student", spec, "--judge", spec, "--k", "2", "--items", "1"),
            *("--generation-rounds", "1", "--grading-rounds", "1", "--out", "out"),
            cwd=tmp_path,
        )
    items = (next((tmp_path / "out").iterdir()) / "items.csv").read_text()
    item_id = items.splitlines()[1].split(",")[2]
    shown = skillmix("show", item_id, cwd=tmp_path)
    assert "[bold]red[/bold]" in shown.stdout  # markup in a reply is shown as typed
    for control in ("\x1b", "\x07"):
        assert control not in shown.stdout
        assert control not in shown.stderr


def test_catalog_show_prints_catalog_text_as_text(tmp_path: Path):
    skills = tmp_path / "skills.yaml"
    skills.write_text(
        json.dumps(
            {
                "skills": [
                    {
                        "name": "metaphor [/]",
                        "category": "literary",
                        "definition": "says \x1b[2Jone thing [bold]is[/bold] another\x1b]0;t\x07",
                        "example": "time is money",
                    }
                ],
                "topics": [{"name": "sewing"}],
            }
        )
    )
    proc = skillmix("catalog", "show", "--catalog", str(skills), cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "metaphor [/]" in proc.stdout
    assert "one thing [bold]is[/bold] another" in proc.stdout
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout


# --- the pieces ------------------------------------------------------------------------------


def test_error_classes_keep_their_old_bases():
    from skillmix.catalog.load import CatalogError
    from skillmix.catalog.sampling import SamplingError
    from skillmix.cli._common import UserError
    from skillmix.models import ModelError as ModelsModelError
    from skillmix.models import UnknownModelError
    from skillmix.runtime.calls import BudgetExhausted
    from skillmix.runtime.pool import BudgetReached, RunError
    from skillmix.store import StoreError as StoreStoreError

    assert ModelsModelError is ModelError
    assert issubclass(UnknownModelError, ModelError)
    assert issubclass(StoreStoreError, StoreError) and issubclass(StoreError, RuntimeError)
    for cls in (CatalogError, SamplingError, SettingsError, UserError):
        assert issubclass(cls, InputError) and issubclass(cls, ValueError)
    assert issubclass(RunError, SkillmixError)
    assert issubclass(BudgetReached, BudgetError) and BudgetReached.exit_code == 3
    assert issubclass(BudgetExhausted, ModelError) and issubclass(BudgetExhausted, BudgetError)
    assert ModelError("x", retryable=True).retryable
    assert InputError("x", hint="do y").hint == "do y" and InputError("x").hint == ""


def test_validation_message_is_one_line_naming_the_field():
    class Inner(BaseModel):
        temperature: float = Field(0.7, ge=0, le=2, allow_inf_nan=False)

    class Outer(BaseModel):
        decoding: Inner
        items: int = Field(1, ge=1)

    with pytest.raises(ValidationError) as info:
        Outer(decoding={"temperature": math.nan}, items=0)
    message = validation_message(info.value, "flags")
    assert "\n" not in message
    assert message.startswith("flags: decoding.temperature: should be a finite number")
    assert "items: should be greater than or equal to 1 (got 0)" in message


def test_check_max_cost():
    assert check_max_cost(None) is None and check_max_cost(0.0) == 0.0
    for bad in (math.nan, -1.0, math.inf, -math.inf):
        with pytest.raises(InputError, match="--max-cost"):
            check_max_cost(bad)


def test_config_and_settings_files_fail_as_input_errors(tmp_path: Path):
    latin = tmp_path / "c.toml"
    latin.write_bytes(b"\n\nname = 'caf\xe9'\n")
    with pytest.raises(InputError, match=r"c\.toml:3: the config file is not UTF-8"):
        load_config_file(latin)
    with pytest.raises(InputError, match="config file not found"):
        load_config_file(tmp_path / "missing.toml")
    table = tmp_path / "s.yaml"
    table.write_text("pricing: 3\n")
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(SettingsError, match=r"\[pricing\] must be a table"):
        load_settings(empty, table)
    with pytest.raises(SettingsError, match="settings file not found"):
        load_settings(tmp_path / "none.toml")


def test_safe_text_strips_control_sequences_and_keeps_text():
    text = "a\x1b[31mred\x1b[0m\tb\r\nc\x07d\x1b]0;title\x07e\x9b2Jf\x00g\rh\ud800i"
    assert safe_text(text) == "ared\tb\ncdefg\nh\ufffdi"
    assert safe_text("plain [bold] text\n") == "plain [bold] text\n"
    assert escaped("under [pricing] and [/]") == "under \\[pricing] and \\[/]"
    assert plain("[bold]x\x1b[1m").plain == "[bold]x"


@pytest.mark.parametrize("text", ["[/]", "a [b] c", "\\", "x\\[/]", "[bold", "]]["])
def test_escaped_text_always_renders_as_itself(text: str):
    from rich.console import Console

    console = Console(record=True, width=200, color_system=None)
    console.print(f"[bold]{escaped(text)}[/bold]", end="")
    assert console.export_text() == safe_text(text)


def test_no_traceback_for_missing_run(tmp_path: Path):
    proc = skillmix("show", "nope", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert re.match(r"error: ", proc.stderr)


# --- no input makes the process segfault -------------------------------------------------------

GRAMMAR_PROBE = r"""
import asyncio, json
from skillmix.data.instruct import prompts as ip
from skillmix.models import ChatRequest
from skillmix.models.embedded import EmbeddedModel

def long_text(chars):  # the instruct schema before the fix: maxLength 2 x --max-tokens
    text = {"type": "string", "minLength": 1, "maxLength": chars}
    return {"type": "object", "properties": {"response": text}, "required": ["response"]}

schemas = {
    "pair": ip.pair_schema(),
    "refine": ip.refine_schema(),
    "skills": ip.skills_schema(10),
    "old refine": long_text(4096),
    "refused": {"type": "string", "pattern": "^(ab){5,2500}$"},
}
model = EmbeddedModel()
out = {}
for name, schema in schemas.items():
    request = ChatRequest(
        ({"role": "user", "content": "Write one short instruction and its answer as JSON."},),
        temperature=0.0, max_tokens=24, json_schema=schema,
    )
    response = asyncio.run(model.complete(request))
    out[name] = [response.structured, response.extra.get("grammar", ""), bool(response.text)]
print(json.dumps({"results": out, "fallbacks": model.grammar_fallbacks}))
"""


@pytest.mark.embedded
def test_embedded_model_takes_every_instruct_schema_without_crashing(tmp_path: Path):
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("llama_cpp") is None:
        pytest.fail("the embedded model needs llama-cpp-python", pytrace=False)
    # In a subprocess, so that a crash of llama.cpp is a failed test with its exit code.
    proc = subprocess.run(
        [sys.executable, "-c", GRAMMAR_PROBE],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert "error parsing grammar" not in proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    results = report["results"]
    for name in ("pair", "refine", "skills"):
        assert results[name] == ["grammar", "", True], name
    structured, note, answered = results["old refine"]
    assert structured == "grammar" and "maxLength=4096" in note and answered
    structured, note, answered = results["refused"]
    assert structured == "" and "llama.cpp refused" in note and answered
    assert report["fallbacks"] == 1
