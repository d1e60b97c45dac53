"""Reading the files a user names (configs, settings, prices, catalogs) with errors they can act on.

Every failure is an `InputError` that names the file and, where the parser knows it, the
line: a missing file, a folder, bytes that are not UTF-8, a TOML or YAML syntax error, or a
settings file whose top level is not a table.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from skillmix.errors import InputError

# libyaml's loader when PyYAML was built with it (about 10x faster on the built-in
# catalog), else the pure-Python one: the same safe subset of YAML either way.
YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_user_text(path: str | Path, what: str = "file") -> str:
    """The text of a file the user named; UTF-8, a byte-order mark dropped."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: expected a {what}, found a folder") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read the {what}: {err.strerror or err}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(
            f"{path}:{line}: the {what} is not UTF-8 text "
            f"(byte 0x{data[err.start]:02x} at offset {err.start})",
            hint="save the file as UTF-8",
        ) from None


def parse_table(text: str, path: str | Path, what: str = "settings file") -> dict[str, Any]:
    """TOML (for a `.toml` path) or YAML (any other suffix) whose top level is a table.

    An empty YAML document is `{}`.
    """
    path = Path(path)
    data: Any
    if path.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise InputError(f"{path}: invalid TOML: {err}") from None
    else:
        try:
            data = yaml.load(text, Loader=YAML_LOADER)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise InputError(f"{path}{line}: invalid YAML: {problem}") from None
        if data is None:
            data = {}
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: the {what} must be a table of `key = value` settings, found {_kind(data)}"
        )
    return data


def read_user_table(path: str | Path, what: str = "settings file") -> dict[str, Any]:
    """A TOML or YAML file of settings (see `parse_table`)."""
    return parse_table(read_user_text(path, what), path, what)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "plain text"
    return f"a {type(value).__name__}"
