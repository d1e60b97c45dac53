"""Every `skillmix ...` command line in the README names commands and options that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
from click.testing import CliRunner

from skillmix.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def command_lines(text: str) -> list[str]:
    """The `skillmix ...` invocations in a Markdown file's code blocks and inline code."""
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S)
    lines = []
    for block in blocks:
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            for part in re.split(r"&&|\|\||;|\|", line):
                part = part.strip()
                if part.startswith("skillmix "):
                    lines.append(part)
    lines += [m for m in re.findall(r"`(skillmix [^`]+)`", text) if "..." not in m]
    return lines


def resolve(words: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """The command a command line reaches, its path, and the words after it."""
    command: click.Command = main
    path: list[str] = []
    rest = list(words)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(click.Context(command), rest[0])
        if sub is None:
            break
        command, path = sub, [*path, rest.pop(0)]
    return command, path, rest


def test_readme_commands_exist():
    checked = 0
    for doc in DOCS:
        for line in command_lines(doc.read_text()):
            words = shlex.split(line.replace("...", ""))[1:]
            command, path, rest = resolve(words)
            where = f"{doc.name}: `{line}`"
            assert path or not rest or rest[0].startswith("-"), f"{where}: unknown command"
            if isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
                raise AssertionError(f"{where}: '{rest[0]}' is not a command of {path}")
            options = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
            options |= set(command.get_help_option_names(click.Context(command)))
            for word in rest:
                if word.startswith("--"):
                    name = word.split("=")[0]
                    assert name in options, f"{where}: {' '.join(path)} has no option {name}"
            help_ = CliRunner().invoke(main, [*path, "--help"])
            assert help_.exit_code == 0, f"{where}: --help failed\n{help_.output}"
            checked += 1
    assert checked >= 20, f"only {checked} command lines found: is the parser right?"
