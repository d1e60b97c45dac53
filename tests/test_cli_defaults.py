"""Defaults that do not surprise and the small things a new user meets in the first hour.

Every command runs for real in a subprocess against a ScriptedServer on 127.0.0.1.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import click
import pytest

from conftest import skillmix
from scripted_server import ScriptedServer
from skillmix.catalog.load import load_catalog
from skillmix.cli import main
from skillmix.models.settings import is_local_endpoint, runs_locally
from skillmix.store import Store

ITEMS = 5  # items per k of the small run: enough answers (>= 5 per role) for estimate history


def _small_run(spec: str, cwd: Path, *extra: str) -> tuple[str, str]:
    proc = skillmix(
        *("run", "--student", spec, "--judge", spec, "--k", "2", "--items", str(ITEMS)),
        *("--generation-rounds", "1", "--grading-rounds", "1", "--out", "out", *extra),
        cwd=cwd,
    )
    return proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory):
    """A finished small run in a store of its own, and the server it ran against."""
    cwd = tmp_path_factory.mktemp("finished")
    with ScriptedServer() as server:
        stdout, _ = _small_run(server.spec(), cwd)
        yield {"cwd": cwd, "spec": server.spec(), "stdout": stdout, "server": server}


# --- a judge is required when the student is not embedded -----------------------------------------


def test_run_without_a_judge_is_refused_before_anything_is_sent(
    tmp_path: Path, server: ScriptedServer
):
    spec = server.spec()
    args = ["run", "--student", spec, "--k", "2", "--items", "1"]
    proc = skillmix(*args, cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    first, hint = proc.stderr.strip().splitlines()
    assert first == (
        f"error: no judge given for {spec}: it would be graded by the embedded 135M model "
        "(SmolLM2-135M), which cannot grade reliably"
    )
    assert hint.startswith("hint: name one: --judge provider:model")
    (tmp_path / "eval.toml").write_text(f'student = "{spec}"\nitems = 1\n')
    from_file = skillmix("estimate", "--config", "eval.toml", cwd=tmp_path, check=False)
    assert from_file.returncode == 1 and "no judge given" in from_file.stderr
    assert server.requests == []
    assert not (tmp_path / "skillmix.sqlite").exists()


def test_an_embedded_student_keeps_the_embedded_judge_and_a_named_one_is_enough(
    tmp_path: Path, server: ScriptedServer
):
    default = skillmix("estimate", "--k", "2", "--items", "1", cwd=tmp_path)
    assert "embedded:" in default.stdout
    explicit = skillmix(
        *("estimate", "--student", server.spec(), "--judge", "embedded", "--k", "2"),
        *("--items", "1"),
        cwd=tmp_path,
    )
    assert "total:" in explicit.stdout
    assert server.requests == []


def test_data_sft_without_a_judge_is_refused(tmp_path: Path, server: ScriptedServer):
    proc = skillmix("data", "sft", "--teacher", server.spec(), cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "no judge given" in proc.stderr
    assert server.requests == []


# --- estimate names the models and says what is an upper bound -----------------------------------


def test_estimate_names_models_and_marks_upper_bounds_until_there_is_history(finished):
    spec, cwd, model = finished["spec"], finished["cwd"], "openai:scripted"
    fresh = cwd / "fresh"
    fresh.mkdir(exist_ok=True)
    args = ["estimate", "--student", spec, "--judge", spec, "--k", "2", "--items", "3"]
    without = skillmix(*args, "--store", "empty.sqlite", cwd=fresh).stdout
    rows = {line.split()[1]: line for line in without.splitlines() if line.startswith("│")}
    assert set(rows) == {"student", "judge"}, without
    assert all(row.count("≤") == 2 for row in rows.values()), without  # tokens and cost
    assert "total: 45 calls to send, ≤$" in without
    note = f"≤: an upper bound. The store holds no answers of {model} (student), {model} (judge)"
    assert note in " ".join(without.split())

    # The finished run's store has answers of this model in both roles: no bound, no note.
    with_history = skillmix(*args, "--seed", "9", cwd=cwd).stdout
    assert model in with_history and "upper bound" not in with_history
    assert "≤" not in with_history and "≈$" in with_history


# --- data sft prints a held-out evaluation only when something is held out ------------------------


def _sft(spec: str, cwd: Path, out: str, *extra: str) -> str:
    return skillmix(
        *("data", "sft", "--teacher", spec, "--judge", spec, "--k", "1", "--items", "3"),
        *("--generation-rounds", "1", "--grading-rounds", "1", "--keep-threshold", "0"),
        *("--formats", "jsonl", "--out", out, *extra),
        cwd=cwd,
    ).stdout


def test_sft_prints_the_held_out_command_only_when_something_is_held_out(
    tmp_path: Path, server: ScriptedServer
):
    spec = server.spec()
    nothing = _sft(spec, tmp_path, "none")
    assert "Nothing is held out" in nothing
    assert "FINETUNED_MODEL" not in nothing and "held out 0" not in nothing
    card = (tmp_path / "none" / "card.md").read_text()
    assert "Evaluate a model trained" not in card and "FINETUNED_MODEL" not in card
    meta = json.loads((tmp_path / "none" / "card.json").read_text())["meta"]
    assert "eval_command" not in meta

    held = _sft(spec, tmp_path, "held", "--held-out-skills", "0.1", "--split-seed", "2")
    split = json.loads((tmp_path / "held" / "card.json").read_text())["meta"]["split"]
    skills = split["held_out_skills"]
    assert skills and not split["held_out_topics"]
    shown = ", ".join(skills[:8]) + (", …" if len(skills) > 8 else "")
    summary = f"held out {len(skills)} skill(s) ({shown}); evaluate a model"
    assert summary in " ".join(held.split())
    assert "skillmix run --student FINETUNED_MODEL" in held
    assert "Evaluate a model trained" in (tmp_path / "held" / "card.md").read_text()


# --- small things ---------------------------------------------------------------------------------


def test_show_of_an_unknown_item_keeps_its_quotes(finished):
    proc = skillmix("show", "nope", cwd=finished["cwd"], check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: no run in ") and "holds item 'nope'\n" in proc.stderr


def test_catalog_show_of_an_unknown_category_lists_the_categories(tmp_path: Path):
    proc = skillmix("catalog", "show", "--category", "nosuch", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    categories = load_catalog().categories
    assert f"no category 'nosuch' in catalog builtin; its categories: {', '.join(categories)}" in (
        " ".join(proc.stderr.split())
    )
    shown = skillmix("catalog", "show", "--category", categories[0], cwd=tmp_path)
    assert categories[0] in shown.stdout


def test_export_of_an_empty_store_writes_nothing(tmp_path: Path, server: ScriptedServer):
    Store(tmp_path / "empty.sqlite").close()
    proc = skillmix(
        *("export", "--store", "empty.sqlite", "--out", "rows.jsonl"), cwd=tmp_path, check=False
    )
    assert proc.returncode == 1
    assert "no runs in empty.sqlite: nothing to export" in proc.stderr
    assert "hint: point --store" in proc.stderr
    assert not (tmp_path / "rows.jsonl").exists()

    # A run that got no answer (its model does not exist) holds no graded item either.
    wrong = f"openai:missing@{server.base_url}"
    failed = skillmix(
        *("run", "--student", wrong, "--judge", wrong, "--k", "2", "--items", "1"),
        cwd=tmp_path,
        check=False,
    )
    assert failed.returncode == 1
    proc = skillmix("export", "--out", "rows.csv", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "nothing to export" in proc.stderr
    assert "rows.csv was not written" in proc.stderr
    assert not (tmp_path / "rows.csv").exists()


def test_calls_to_local_models_are_not_shown_as_paid(finished):
    cwd = finished["cwd"]
    report = skillmix("report", "--html", "report.html", cwd=cwd).stdout
    usage = report[report.index("calls used by this run") :]
    assert "no (local)" in usage and " yes " not in usage
    assert "sent to a local model" in (cwd / "report.html").read_text()
    assert "no (local)" in finished["stdout"]


@pytest.mark.parametrize(
    ("provider", "base_url", "local"),
    [
        ("embedded", None, True),
        ("vllm", None, True),
        ("openai", "http://127.0.0.1:8000/v1", True),
        ("openai", "http://localhost:11434/v1", True),
        ("openai", "http://[::1]:8000/v1", True),
        ("openai", "http://192.168.1.20/v1", True),
        ("openai", "http://10.0.0.7:8000/v1", True),
        ("litellm", "http://172.16.5.4:4000", True),
        ("openai", "https://api.openai.com/v1", False),
        ("openai", "http://8.8.8.8/v1", False),
        ("openai", "https://localhost.example.com/v1", False),
        ("openai", None, False),
        ("litellm", None, False),
    ],
)
def test_is_local_endpoint(provider: str, base_url: str | None, local: bool):
    assert is_local_endpoint(provider, base_url) is local


def test_runs_locally_reads_the_spec():
    assert runs_locally("embedded") and runs_locally("openai:m@http://127.0.0.1:9/v1")
    assert not runs_locally("openai:gpt-4o") and not runs_locally("nonsense:x")


def test_an_unset_api_key_variable_is_warned_about_once(
    tmp_path: Path, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
):
    variable = "SKILLMIX_TEST_KEY_THAT_IS_NOT_SET"
    monkeypatch.delenv(variable, raising=False)
    spec = server.spec()
    (tmp_path / "skillmix.toml").write_text(f'[models."{spec}"]\napi_key_env = "{variable}"\n')
    args = ["estimate", "--student", spec, "--judge", spec, "--k", "2", "--items", "1"]
    proc = skillmix(*args, cwd=tmp_path)
    warned = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert warned == [
        f"warning: {spec}: api_key_env names {variable}, which is not set: its requests go "
        f"without that key (export {variable}=... or fix the name in the settings)"
    ], proc.stderr
    monkeypatch.setenv(variable, "sk-test")
    assert "warning:" not in skillmix(*args, cwd=tmp_path).stderr


def _commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_option_has_help():
    missing = [
        f"{' '.join(path)} {param.opts[0]}"
        for path, command in _commands(main)
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not param.help
    ]
    assert missing == []


def test_help_documents_model_forms_aggregation_and_data_settings(tmp_path: Path):
    run_help = " ".join(skillmix("run", "--help", cwd=tmp_path).stdout.split())
    assert "litellm:PROVIDER/MODEL@URL" in run_help and "openai:MODEL@URL" in run_help
    assert "Required unless the student is embedded" in run_help
    assert "How an item's generation rounds combine" in run_help
    sft_help = " ".join(skillmix("data", "sft", "--help", cwd=tmp_path).stdout.split())
    for text in ("Teacher max tokens", "Judge max tokens", "Model settings and prices"):
        assert text in sft_help
    instruct_help = skillmix("data", "instruct", "--help", cwd=tmp_path).stdout
    assert "Model settings and prices" in " ".join(instruct_help.split())


# --- data instruct warns about the embedded teacher, as sft does ----------------------------------


@pytest.mark.embedded
def test_instruct_with_the_embedded_teacher_prints_the_135m_warning(tmp_path: Path):
    proc = skillmix(
        *("data", "instruct", "--teacher", "embedded", "--topics", "1"),
        *("--skills-per-topic", "2", "--query-types", "1", "--examples", "1"),
        *("--list-max-tokens", "96", "--max-tokens", "48", "--formats", "jsonl"),
        cwd=tmp_path,
        timeout=1200,
    )
    assert "warning: Teacher embedded" in proc.stdout and "SmolLM2-135M" in proc.stdout
    warnings = json.loads((tmp_path / "instruct-skillmix" / "card.json").read_text())["meta"]
    assert any("135M" in w for w in warnings["warnings"])
    db = sqlite3.connect(tmp_path / "skillmix.sqlite")
    assert db.execute("SELECT COUNT(*) FROM calls").fetchone()[0] > 0
    db.close()
