"""Checking what a request sends (bounds, types, valid text): each check raises `Invalid`,
which the error middleware answers as JSON with its status."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from aiohttp import web

from skillmix.jsonsafe import finite

MAX_REVIEWER_LENGTH = 100
MAX_ID_LENGTH = 200  # item and criterion ids
MAX_GEN_ROUND = 1_000_000
MAX_SEED = 2**63 - 1
MAX_QUEUE_LIMIT = 1000


class Invalid(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def parse_json(raw: bytes) -> Any:
    """A request body as JSON, or Invalid saying why not (never a 500)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise Invalid("the body is not UTF-8 text") from err
    except json.JSONDecodeError as err:
        raise Invalid(f"the body is not valid JSON: {err}") from err
    except RecursionError as err:
        raise Invalid("the body is not a verdict: its JSON is nested too deeply") from err
    except ValueError as err:  # an integer with more digits than Python converts
        raise Invalid("the body is not a verdict: it holds a number too long") from err


def query_int(request: web.Request, name: str, default: int | None, low: int, high: int) -> int:
    """An integer query parameter within [low, high]."""
    text = request.query.get(name)
    if text is None and default is not None:
        return default
    expected = f"{name} must be an integer from {low} to {high}"
    try:
        value = int(text) if text is not None and len(text) <= len(str(high)) + 1 else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise Invalid(expected)
    return value


def is_text(value: str) -> bool:
    """Valid Unicode (no lone surrogates) without control characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(unicodedata.category(c) == "Cc" for c in value)


def reviewer_name(value: Any, missing: str = "reviewer must be a non-empty name") -> str:
    """A reviewer's name, stripped: stored with every verdict and shown in reports."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(missing)
    name = value.strip()
    if len(name) > MAX_REVIEWER_LENGTH:
        raise Invalid(f"reviewer must be at most {MAX_REVIEWER_LENGTH} characters")
    if not is_text(name):
        raise Invalid("reviewer must be plain text: no control characters, valid Unicode")
    return name


def edited_text(value: Any, name: str, limit: int) -> str:
    """A reviewer's text (a question, solution, answer or note): lines and tabs allowed,
    other control characters and invalid Unicode refused."""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be text")
    if len(value) > limit:
        raise Invalid(f"{name} must be at most {limit} characters")
    if not is_text(value.replace("\n", " ").replace("\r", " ").replace("\t", " ")):
        raise Invalid(f"{name} must be plain text: no control characters, valid Unicode")
    return value


def identifier(value: Any, name: str) -> str:
    """An item or criterion id as sent (ids are compared exactly, never stripped)."""
    if not isinstance(value, str) or not value:
        raise Invalid(f"{name} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH or not is_text(value):
        raise Invalid(f"{name} must be at most {MAX_ID_LENGTH} characters of plain text")
    return value


async def json_object(request: web.Request, fields: str) -> dict[str, Any]:
    """A POST's body as a JSON object (at most the app's MAX_BODY_BYTES, or a 413), or
    Invalid saying it must be one with `fields`."""
    body = parse_json(await request.read())
    if not isinstance(body, dict):
        raise Invalid(f"the body must be a JSON object with {fields}")
    return body


def queue_reviewer(request: web.Request) -> str:
    """Who asks for a queue: ?reviewer=NAME, required."""
    return reviewer_name(request.query.get("reviewer"), "say who is reviewing: ?reviewer=NAME")


def optional_reviewer(request: web.Request) -> str:
    """?reviewer=NAME when it is given (and valid), else ""."""
    given = request.query.get("reviewer", "")
    return reviewer_name(given) if given.strip() else ""


def json_response(data: Any) -> web.Response:
    return web.json_response(finite(data))


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
