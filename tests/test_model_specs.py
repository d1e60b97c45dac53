"""Model specs are parsed strictly: no request, and no key, goes to a host nobody named."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import skillmix
from scripted_server import ScriptedServer
from skillmix.errors import InputError, ModelError, SkillmixError
from skillmix.models import ModelSpec, parse_spec, resolve_model
from skillmix.models.settings import Settings, check_base_url, load_settings, redact_url

SECRET = "sk-test-do-not-leak"


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("embedded", ModelSpec("embedded", "")),
        ("openai:gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini")),
        (
            "openai:org/model:7b@http://127.0.0.1:8000/v1",
            ModelSpec("openai", "org/model:7b", "http://127.0.0.1:8000/v1"),
        ),
        ("OpenAI:m@HTTPS://host.example/v1", ModelSpec("openai", "m", "HTTPS://host.example/v1")),
        # litellm model names may hold '@' (Vertex AI version pins); a URL still splits off.
        (
            "litellm:vertex_ai/claude-3-5-sonnet@20240620",
            ModelSpec("litellm", "vertex_ai/claude-3-5-sonnet@20240620"),
        ),
        (
            "litellm:vertex_ai/claude@20240620@https://proxy.example/v1",
            ModelSpec("litellm", "vertex_ai/claude@20240620", "https://proxy.example/v1"),
        ),
        ("vllm:meta-llama/Llama-3.1-8B", ModelSpec("vllm", "meta-llama/Llama-3.1-8B")),
    ],
)
def test_valid_specs(spec: str, parsed: ModelSpec):
    assert parse_spec(spec) == parsed


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("openai:x@notaurl", "'notaurl' after '@' is not a base URL"),
        ("openai:x@localhost:8000/v1", "after '@' is not a base URL"),
        ("openai:j@http://user:pw@127.0.0.1:8000/v1", "holds credentials"),
        ("openai:j@http://token@127.0.0.1:8000/v1", "holds credentials"),
        ("openai:x@ftp://127.0.0.1/v1", "is not an http(s) URL"),
        ("openai:http://127.0.0.1/v1", "the base URL must follow an '@'"),
        ("openai:x@http://127.0.0.1:99999/v1", "is not a valid URL"),
        ("openai:x@http:///v1", "has no host"),
        ("openai:x@http://h/v1?api_key=pw", "has a query or fragment"),
        ("openai:x@http://h /v1", "spaces or control characters"),
        ("vllm:m@http://127.0.0.1:8000/v1", "runs in-process and takes no base URL"),
        ("embedded@http://127.0.0.1:8000/v1", "unknown model"),
        ("nope:x", "unknown model 'nope:x'"),
    ],
)
def test_invalid_specs_name_the_problem(spec: str, problem: str):
    with pytest.raises(SkillmixError) as info:
        parse_spec(spec)
    assert problem in str(info.value)
    assert "pw" not in str(info.value) and "token@" not in str(info.value)


def test_the_rule_is_in_the_hint():
    with pytest.raises(ModelError) as info:
        parse_spec("openai:x@notaurl")
    assert "only in litellm model names" in info.value.hint


def test_credentials_anywhere_in_the_endpoint_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://me:pw@127.0.0.1:9/v1")
    with pytest.raises(InputError, match="holds credentials") as info:
        resolve_model("openai:m")
    assert "pw" not in str(info.value) and "http://***@127.0.0.1:9/v1" in str(info.value)
    monkeypatch.delenv("OPENAI_BASE_URL")
    settings = tmp_path / "skillmix.toml"
    settings.write_text('[models."openai:m"]\nbase_url = "https://k:pw@api.example/v1"\n')
    with pytest.raises(InputError, match=r"base_url: the base URL .* holds credentials") as info:
        load_settings(settings)
    assert "pw" not in str(info.value)
    model = resolve_model("openai:m@http://127.0.0.1:9/v1", Settings())
    assert model.identity == "openai:m@http://127.0.0.1:9/v1"


def test_redact_url_and_check_base_url():
    assert redact_url("http://u:p@h:1/v1?key=s") == "http://***@h:1/v1?***"
    assert redact_url("https://h/v1") == "https://h/v1"
    assert check_base_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"


@pytest.mark.parametrize(
    "spec",
    [
        "openai:j@http://user:{secret}@127.0.0.1:{port}/v1",
        "openai:scripted@http://{secret}@127.0.0.1:{port}/v1",
        "openai:x@notaurl",
        "openai:x@127.0.0.1:{port}/v1",
    ],
)
def test_cli_refuses_a_bad_spec_before_sending_anything(
    tmp_path: Path, server: ScriptedServer, spec: str
):
    spec = spec.format(secret=SECRET, port=server.port)
    proc = skillmix(
        *("run", "--student", spec, "--judge", server.spec(), "--k", "2", "--items", "1"),
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert SECRET not in proc.stderr + proc.stdout
    assert server.requests == []
    assert not (tmp_path / "skillmix.sqlite").exists()
