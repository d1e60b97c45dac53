"""The review app against hostile and malformed requests, on a real run and a real port.

Every answer, an error's too, is JSON with the security headers; inputs are bounded; an
unknown generation is answered from memory without reading the store; requests that a
browser marks as coming from another page are refused; tokens are strong and never on the
command line. (Cross-origin requests from a real browser: test_browser_review.py.)
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripted_server import honest_policy
from skillmix.review.server import (
    MAX_BODY_BYTES,
    TOKEN_HEADER,
    BackgroundServer,
    ReviewError,
    check_binding,
    check_token,
    generate_token,
)
from skillmix.store import Store
from test_review_app import call, make_run, salted_judge

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """k = 2 and 3, 2 items each, 2 generation rounds, one judge: a finished run."""
    path = tmp_path_factory.mktemp("hardening") / "s.sqlite"
    run_id = make_run(
        path,
        honest_policy,
        [salted_judge("a", 4)],
        k=(2, 3),
        items=2,
        generation_rounds=2,
        grading_rounds=1,
    )
    return path, run_id


@pytest.fixture
def run_copy(small_run: tuple[Path, str], tmp_path: Path) -> tuple[Path, str]:
    """A private copy, for tests that write to or break the store."""
    src, run_id = small_run
    store = Store(src)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    dst = tmp_path / "copy.sqlite"
    dst.write_bytes(src.read_bytes())
    return dst, run_id


@pytest.fixture
def app(run_copy: tuple[Path, str]) -> Iterator[BackgroundServer]:
    path, run_id = run_copy
    with BackgroundServer(path, run_id) as server:
        yield server


def first_entry(app: BackgroundServer) -> dict[str, Any]:
    status, queue, _ = call(app, "/api/queue?reviewer=ann&limit=1")
    assert status == 200
    return dict(queue["entries"][0])


def assert_json_error(answer: tuple[int, Any, dict[str, str]], status: int, says: str) -> None:
    """A JSON error with this status and message, and every security header."""
    got, body, headers = answer
    assert got == status, (got, body)
    assert headers["Content-Type"].startswith("application/json"), headers
    assert isinstance(body, dict) and says in body["error"], body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for name, value in SECURITY_HEADERS.items():
        assert headers[name] == value, name


def stored_verdicts(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT * FROM human_verdicts").fetchall()


# --- hostile bodies and parameters -----------------------------------------------------------


def test_hostile_inputs_get_json_4xx_with_headers(
    app: BackgroundServer, run_copy: tuple[Path, str]
) -> None:
    path, _ = run_copy
    entry = first_entry(app)
    good = {
        "reviewer": "ann",
        "item_id": entry["item_id"],
        "gen_round": entry["gen_round"],
        "verdicts": {"topic": 1},
    }
    # 200k nested brackets: over the body limit, refused before parsing.
    deep = b"[" * 200_000 + b"]" * 200_000
    assert_json_error(call(app, "/api/verdicts", raw=deep), 413, "")
    # Nested too deeply for Python's parser, yet within the limit.
    half = (MAX_BODY_BYTES - 2) // 2
    deep = b"[" * half + b"]" * half
    assert_json_error(call(app, "/api/verdicts", raw=deep), 400, "nested too deeply")
    # A 5000-digit gen_round: in the body, and in the query string.
    body = json.dumps(good).replace(
        f'"gen_round": {entry["gen_round"]}', '"gen_round": ' + "7" * 5000
    )
    assert_json_error(call(app, "/api/verdicts", raw=body.encode()), 400, "number too long")
    huge = "7" * 5000
    assert_json_error(
        call(app, f"/api/item?item_id={entry['item_id']}&gen_round={huge}"),
        400,
        "gen_round must be an integer from 0 to",
    )
    for gen_round in (-1, 2**63):
        assert_json_error(
            call(app, "/api/verdicts", {**good, "gen_round": gen_round}), 400, "gen_round"
        )
    # A reviewer name with a lone surrogate (as JSON escapes it) or control characters.
    body = json.dumps({**good, "reviewer": "ann\ud800"})
    assert "\\ud800" in body
    assert_json_error(call(app, "/api/verdicts", raw=body.encode()), 400, "valid Unicode")
    for name in ("ann\x1b[31m", "ann\nbob", "a\x00"):
        assert_json_error(call(app, "/api/verdicts", {**good, "reviewer": name}), 400, "plain")
    item = f"/api/item?item_id={entry['item_id']}&gen_round={entry['gen_round']}"
    assert_json_error(call(app, f"{item}&reviewer=%1B%5B2J"), 400, "plain text")
    assert_json_error(call(app, "/api/queue?reviewer=a%0Ab"), 400, "plain text")
    # Ids: bounded, exact text.
    assert_json_error(
        call(app, "/api/verdicts", {**good, "item_id": "x" * 201}), 400, "at most 200"
    )
    assert_json_error(
        call(app, "/api/verdicts", {**good, "verdicts": {"\ud800": 1}}), 400, "not a criterion"
    )
    # Not UTF-8, not JSON.
    assert_json_error(call(app, "/api/verdicts", raw=b'{"reviewer": "\xff"}'), 400, "UTF-8")
    assert_json_error(call(app, "/api/verdicts", raw=b"{"), 400, "not valid JSON")
    # Query bounds.
    assert_json_error(call(app, "/api/queue?reviewer=ann&limit=1001"), 400, "limit")
    assert_json_error(call(app, "/api/queue?reviewer=ann&seed=-1"), 400, "seed")
    assert_json_error(call(app, "/api/queue?reviewer=ann&seed=" + "9" * 30), 400, "seed")
    # HTTP errors that aiohttp raises itself.
    assert_json_error(call(app, "/api/nothing"), 404, "")
    status, body, headers = call(app, "/api/verdicts")  # GET on a POST route
    assert_json_error((status, body, headers), 405, "")
    assert headers["Allow"] == "POST"

    assert stored_verdicts(path) == []  # none of it wrote anything
    assert call(app, "/api/verdicts", good)[0] == 200  # and the app still works


def test_a_bug_is_a_json_500_with_headers(
    app: BackgroundServer, run_copy: tuple[Path, str]
) -> None:
    """A store broken under the running app: the failure is a 500 in JSON, not a crash page."""
    path, _ = run_copy
    assert call(app, "/api/agreement")[0] == 200
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE human_verdicts")
    assert_json_error(call(app, "/api/agreement"), 500, "internal error")
    assert call(app, "/api/run")[0] == 200  # one broken answer, not a broken app


# --- unknown generations are answered from memory --------------------------------------------


def test_unknown_generation_does_not_read_the_store(
    app: BackgroundServer, run_copy: tuple[Path, str]
) -> None:
    """After the first snapshot, ids the run cannot have are answered without the store:
    with the store's tables gone, they still get a clean 404."""
    path, _ = run_copy
    entry = first_entry(app)
    known = f"/api/item?item_id={entry['item_id']}&gen_round={entry['gen_round']}"
    assert call(app, known)[0] == 200
    with sqlite3.connect(path) as db:
        for table in ("generations", "grades", "items", "runs"):
            db.execute(f"DROP TABLE {table}")
    for query in (
        "item_id=no-such-item&gen_round=0",
        f"item_id={entry['item_id']}&gen_round=2",  # the run has 2 generation rounds
        f"item_id={entry['item_id']}&gen_round=999999",
    ):
        status, body, _ = call(app, f"/api/item?{query}")
        assert status == 404 and "no generation" in body["error"], body
    body = {"reviewer": "ann", "item_id": "nope", "gen_round": 0, "verdicts": {"topic": 1}}
    status, answer, _ = call(app, "/api/verdicts", body)
    assert status == 404 and "of item 'nope'" in answer["error"]
    assert call(app, known)[0] == 200  # a known one, from the snapshot


def test_generation_stored_after_the_snapshot_is_found(run_copy: tuple[Path, str]) -> None:
    """While a run is still going, a generation that appears later is read when asked for."""
    path, run_id = run_copy
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        late = dict(db.execute("SELECT * FROM generations ORDER BY item_id LIMIT 1").fetchone())
        db.execute(
            "DELETE FROM generations WHERE run_id = ? AND item_id = ? AND round = ?",
            (run_id, late["item_id"], late["round"]),
        )
        db.execute("UPDATE runs SET status = 'running' WHERE id = ?", (run_id,))
    with BackgroundServer(path, run_id) as app:
        target = f"/api/item?item_id={late['item_id']}&gen_round={late['round']}"
        assert call(app, target)[0] == 404
        assert call(app, "/api/item?item_id=no-such-item&gen_round=0")[0] == 404
        with sqlite3.connect(path) as db:
            columns = ", ".join(late)
            marks = ", ".join("?" for _ in late)
            db.execute(
                f"INSERT INTO generations ({columns}) VALUES ({marks})", tuple(late.values())
            )
        status, item, _ = call(app, target)
        assert status == 200 and item["answer"] == late["answer"]


# --- origins ---------------------------------------------------------------------------------


def test_requests_from_other_pages_are_refused(
    app: BackgroundServer, run_copy: tuple[Path, str]
) -> None:
    path, _ = run_copy
    entry = first_entry(app)
    own = app.base_url  # http://127.0.0.1:PORT
    body = {
        "reviewer": "ann",
        "item_id": entry["item_id"],
        "gen_round": entry["gen_round"],
        "verdicts": {"topic": 1},
    }
    other_scheme = own.replace("http://", "https://")
    for origin in (other_scheme, "http://evil.example", "null", own + "0"):
        answer = call(app, "/api/verdicts", body, headers={"Origin": origin})
        assert_json_error(answer, 403, "cross-origin")
    item = f"/api/item?item_id={entry['item_id']}&gen_round={entry['gen_round']}"
    # What a browser sends with a no-cors request from another page (no Origin header).
    for site in ("cross-site", "same-site"):
        assert_json_error(call(app, item, headers={"Sec-Fetch-Site": site}), 403, site)
        assert_json_error(
            call(app, "/api/queue?reviewer=ann", headers={"Sec-Fetch-Site": site}), 403, ""
        )
    assert call(app, item, headers={"Origin": other_scheme})[0] == 403
    assert stored_verdicts(path) == []
    # The page's own requests, a link to the page from elsewhere, and non-browser clients.
    same = {"Sec-Fetch-Site": "same-origin", "Origin": own}
    assert call(app, "/api/verdicts", body, headers=same)[0] == 200
    assert call(app, item, headers={"Sec-Fetch-Site": "same-origin"})[0] == 200
    assert call(app, "/", headers={"Sec-Fetch-Site": "cross-site"})[0] == 200
    assert call(app, item)[0] == 200


# --- tokens ----------------------------------------------------------------------------------


def test_tokens_must_be_strong() -> None:
    for weak in ("x", "s3cret/token+x", "a" * 40, "abcabcabcabcabcabcabcabc", "k" * 21):
        with pytest.raises(ReviewError, match="too weak"):
            check_token(weak)
    for odd in ("  ", "x" * 30 + " " + "y" * 10, "jeton-très-secret-0123456789", "a\x00" * 20):
        with pytest.raises(ReviewError, match=r"empty|printable ASCII"):
            check_token(odd)
    made = {generate_token() for _ in range(3)}
    assert len(made) == 3 and all(len(t) >= 43 for t in made)
    for token in made:
        check_token(token)
        check_binding("0.0.0.0", token)
    with pytest.raises(ReviewError, match="too weak"):
        check_binding("0.0.0.0", "x")
    with pytest.raises(ReviewError, match="too weak"):
        check_binding("127.0.0.1", "x")  # on loopback too: a token is a promise


def _review(path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    base = {k: v for k, v in os.environ.items() if k != "SKILLMIX_REVIEW_TOKEN"}
    return subprocess.Popen(
        [sys.executable, "-m", "skillmix.cli", "review", "--store", str(path), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**base, "NO_COLOR": "1", **(env or {})},
    )


def _served_token(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """(base URL, token) from the line the command prints once it listens."""
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    match = re.search(r"open (http://127\.0\.0\.1:\d+/)\?token=([A-Za-z0-9_\-%.~]+)", line)
    assert match, line + (proc.stderr.read() if proc.poll() is not None else "")
    return match.group(1), urllib.request.unquote(match.group(2))


def _status(url: str, token: str | None) -> int:
    request = urllib.request.Request(url, headers={TOKEN_HEADER: token} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_review_command_tokens(run_copy: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = run_copy
    # --token would be visible in `ps`: refused, with what to do instead.
    proc = _review(path, "--token", generate_token())
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "ps" in err and "--token-file" in err

    # A weak token from the environment, on any address.
    for host in ("0.0.0.0", "127.0.0.1"):
        proc = _review(path, "--host", host, env={"SKILLMIX_REVIEW_TOKEN": "hunter2"})
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1 and "too weak" in err and "Traceback" not in err

    # None given: one is made, shown once in the URL, and never on the command line.
    proc = _review(path, "--port", "0")
    try:
        base, token = _served_token(proc)
        assert len(token) >= 43
        assert token.encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes()
        assert _status(base + "api/run", None) == 403
        assert _status(base + "api/run", token) == 200
        assert _status(f"{base}?token={token}", None) == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    # From a file (first line) and from the environment.
    mine = generate_token()
    token_file = tmp_path / "token"
    token_file.write_text(mine + "\n")
    for args, env in (
        (("--token-file", str(token_file)), {}),
        ((), {"SKILLMIX_REVIEW_TOKEN": mine}),
    ):
        proc = _review(path, "--port", "0", *args, env=env)
        try:
            base, token = _served_token(proc)
            assert token == mine
            assert mine.encode() not in Path(f"/proc/{proc.pid}/cmdline").read_bytes()
            assert _status(base + "api/run", mine) == 200
            assert _status(base + "api/run", generate_token()) == 403
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    token_file.write_text("")
    proc = _review(path, "--token-file", str(token_file))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "empty" in err
