"""Errors are raised where the problem is known and caught once, in the CLI's entry point.

The library raises a `SkillmixError` subclass with a message (and hint) a user can act on;
`skillmix` prints it in one place (`SkillmixGroup.invoke`). So no command may catch a
broad built-in exception and turn it into a user error: that would hide the traceback of a
genuine bug behind a one-line message. These tests read src/skillmix/cli/ with `ast` and
list every handler that does, then check a few of the errors now raised at their source.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import skillmix
from report_fixtures import put_constructed_run, verdict
from skillmix.analytics.frequency import read_frequencies, read_passages
from skillmix.errors import InputError
from skillmix.store import Store

CLI = Path(__file__).resolve().parents[1] / "src" / "skillmix" / "cli"

# Built-ins so broad that catching them hides bugs; a bare `except:` counts as BaseException.
BROAD = {"BaseException", "Exception", "LookupError", "KeyError", "ValueError", "TypeError"}
# Where Ctrl-C is turned into exit 130: the entry point and the runner of resumable jobs.
INTERRUPT_CATCHERS = {("__init__.py", "invoke"), ("_common.py", "run_job")}


@dataclass(frozen=True)
class Handler:
    file: str
    line: int
    function: str  # the innermost enclosing function, "" at module level
    names: tuple[str, ...]  # the exception names caught, as written (`json.JSONDecodeError`)

    def __str__(self) -> str:
        return f"cli/{self.file}:{self.line} in {self.function or '<module>'}: " + (
            f"except ({', '.join(self.names)})"
        )


def caught_names(node: ast.expr | None) -> tuple[str, ...]:
    """The names an `except` clause catches; a bare `except:` catches BaseException."""
    if node is None:
        return ("BaseException",)
    if isinstance(node, ast.Tuple):
        return tuple(name for element in node.elts for name in caught_names(element))
    return (ast.unparse(node),)


def handlers(source: str, file: str) -> Iterator[Handler]:
    """Every `except` clause in `source`, with the function it is in."""

    def walk(node: ast.AST, function: str) -> Iterator[Handler]:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
            if isinstance(child, ast.ExceptHandler):
                yield Handler(file, child.lineno, function, caught_names(child.type))
            yield from walk(child, inner)

    yield from walk(ast.parse(source, filename=file), "")


def cli_handlers() -> list[Handler]:
    return [
        handler
        for path in sorted(CLI.glob("*.py"))
        for handler in handlers(path.read_text(encoding="utf-8"), path.name)
    ]


def broad(handler: Handler) -> bool:
    return any(name.rpartition(".")[2] in BROAD for name in handler.names)


# --- the rule ---------------------------------------------------------------------------------


def test_the_reader_sees_the_cli():
    found = cli_handlers()
    assert any(h.file == "__init__.py" and "SkillmixError" in h.names for h in found)
    assert len({path.name for path in CLI.glob("*.py")}) >= 8, "is CLI the cli package?"


def test_the_reader_finds_every_broad_handler():
    source = """
def command():
    try:
        work()
    except KeyError as err:
        pass
    except (OSError, builtins.ValueError):
        pass
    except ImportError:
        pass
    try:
        work()
    except:
        pass

try:
    import x
except Exception:
    pass
"""
    found = [h for h in handlers(source, "example.py") if broad(h)]
    assert [(h.line, h.function, h.names) for h in found] == [
        (5, "command", ("KeyError",)),
        (7, "command", ("OSError", "builtins.ValueError")),
        (13, "command", ("BaseException",)),
        (18, "", ("Exception",)),
    ]


def test_no_command_turns_a_broad_exception_into_a_user_error():
    offenders = [str(h) for h in cli_handlers() if broad(h)]
    assert not offenders, (
        "raise a SkillmixError where the problem is known instead of catching "
        + ", ".join(sorted(BROAD))
        + " in the CLI:\n  "
        + "\n  ".join(offenders)
    )


def test_ctrl_c_is_caught_only_at_the_entry_point_and_by_run_job():
    catchers = {(h.file, h.function) for h in cli_handlers() if "KeyboardInterrupt" in h.names}
    assert catchers == INTERRUPT_CATCHERS


# --- errors raised where the problem is known ------------------------------------------------


def test_a_bad_frequencies_file_names_its_line(tmp_path: Path):
    bad = tmp_path / "f.csv"
    bad.write_text("kind,id,frequency\nskill,metaphor,0.1\nskill,irony,often\n")
    with pytest.raises(InputError, match=re.escape(f"{bad}:3: expected kind,id,frequency")):
        read_frequencies(bad)
    short = tmp_path / "short.csv"
    short.write_text("kind,id,frequency\nskill,metaphor\n")  # frequency missing: None
    with pytest.raises(InputError, match=re.escape(f"{short}:2:")):
        read_frequencies(short)
    proc = skillmix(
        "catalog", "stats", "--frequencies", str(bad), "--corpus-size", "10",
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"error: {bad}:3: expected kind,id,frequency" in " ".join(proc.stderr.split())
    assert "hint: write the file with `skillmix catalog filter`" in proc.stderr


def test_a_corpus_that_is_not_text_is_an_input_error(tmp_path: Path):
    binary = tmp_path / "corpus.txt"
    binary.write_bytes(b"\xff\xfe\x00 not utf-8")
    with pytest.raises(InputError, match="not UTF-8 text"):
        read_passages(binary, 10)
    jsonl = tmp_path / "corpus.jsonl"
    jsonl.write_text('{"text": "one"}\n["no text"]\n')
    with pytest.raises(InputError, match=re.escape(f"{jsonl}:2: expected a JSON object")):
        read_passages(jsonl, 10)


@pytest.fixture
def store_with_a_run(tmp_path: Path) -> Path:
    path = tmp_path / "s.sqlite"
    store = Store(path)
    put_constructed_run(store, "run-a", {"i1": verdict(1, 1)})
    store.close()
    return path


def test_an_item_not_in_the_run_says_where_ids_are_listed(store_with_a_run: Path):
    proc = skillmix(
        "show", "nope", "--run", "run-a", "--store", str(store_with_a_run),
        cwd=store_with_a_run.parent, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "error: item 'nope' is not in run run-a"
    assert lines[1].startswith("hint: `skillmix report RUN` shows some item ids")


def test_an_unknown_run_is_named_with_the_runs_there_are(store_with_a_run: Path):
    proc = skillmix(
        "show", "i1", "--run", "run-z", "--store", str(store_with_a_run),
        cwd=store_with_a_run.parent, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "no run 'run-z'" in proc.stderr and "(runs: run-a)" in proc.stderr


def test_comparing_a_run_with_itself_is_refused(store_with_a_run: Path):
    proc = skillmix(
        "compare", "run-a", "run-a", "--store", str(store_with_a_run),
        cwd=store_with_a_run.parent, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "are all run-a: give 2 different runs" in proc.stderr


def test_an_html_path_that_cannot_be_written_is_named(store_with_a_run: Path):
    blocker = store_with_a_run.parent / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "report.html"
    proc = skillmix(
        "html", "run-a", "--store", str(store_with_a_run), "--out", str(target),
        cwd=store_with_a_run.parent, check=False,
    )  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"error: cannot write {target}:" in " ".join(proc.stderr.split())
