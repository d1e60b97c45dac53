"""The review web app: one page and a small JSON API over a run store (aiohttp).

Routes (every API answer is JSON; errors are {"error": message} with a 4xx status):

    GET  /                      the page (with a token: /?token=TOKEN)
    GET  /static/<file>         its script and style sheet
    GET  /api/run               the run under review
    GET  /api/queue?reviewer=R  the generations R should check next (&limit=N, &seed=S)
    GET  /api/item?item_id=I&gen_round=G[&reviewer=R]
                                task, answer, criteria, every judge's verdicts (and R's own)
    POST /api/verdicts          {"reviewer", "item_id", "gen_round", "verdicts": {id: 0|1}}
    GET  /api/agreement         judge-vs-human agreement per judge and criterion

Security: it listens on 127.0.0.1 unless told otherwise, and any other address needs a
token. With a token, every request must carry it: `?token=` for the page and its
assets, the `X-Review-Token` header for the API. Without one, requests must name a
loopback Host (against DNS rebinding). A POST must be JSON and same-origin. Every answer
carries a Content-Security-Policy that allows only the app's own script and styles, and
the page puts model text into the document with textContent only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import ipaddress
import json
import math
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from skillmix.report.details import item_details
from skillmix.results import RunScores, score_run
from skillmix.review.agreement import human_agreement
from skillmix.review.queue import review_queue
from skillmix.store import Store, StoreError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8321
TOKEN_HEADER = "X-Review-Token"
MAX_REVIEWER_LENGTH = 100
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
STATIC_TYPES = {
    "app.js": "text/javascript",
    "app.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ReviewError(ValueError):
    """Something the user can fix before the app can start (store, run, host, token)."""


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 with or without brackets) is this machine."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token, or with a blank one."""
    if token is not None and not token.strip():
        raise ReviewError("the review token is empty; give a real one or none")
    if token is None and not is_loopback(host):
        raise ReviewError(
            f"refusing to listen on {host} without a token: anyone who can reach it could "
            "read the run and write verdicts. Pass --token (or set SKILLMIX_REVIEW_TOKEN), "
            "e.g. --token \"$(python -c 'import secrets; print(secrets.token_urlsafe(24))')\", "
            "or listen on 127.0.0.1 and use an SSH tunnel."
        )


@dataclass
class _Review:
    """What one app serves: the run, its scores and details (a snapshot), the store."""

    store_path: Path
    run_id: str
    token: str | None
    store: Store | None = None
    scores: RunScores | None = None
    details: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    static: dict[str, bytes] = field(default_factory=dict)

    @property
    def db(self) -> Store:
        if self.store is None:  # opened on the server's own thread (sqlite needs that)
            self.store = Store(self.store_path)
        return self.store

    def refresh(self) -> None:
        """Re-read scores and details (they change only while the run is still grading)."""
        self.scores = score_run(self.db, self.run_id)
        self.details = {
            (d["item_id"], d["gen_round"]): d for d in item_details(self.db, self.scores)
        }

    def current_scores(self) -> RunScores:
        if self.scores is None:
            self.refresh()
        assert self.scores is not None
        return self.scores

    def detail(self, item_id: str, gen_round: int) -> dict[str, Any] | None:
        key = (item_id, gen_round)
        if self.scores is None or key not in self.details:
            self.refresh()  # a generation stored since the snapshot
        return self.details.get(key)

    def agreement(self) -> dict[str, Any]:
        humans = self.db.human_verdicts(self.run_id)
        return {
            "rows": human_agreement(self.db, self.current_scores()),
            "judges": self.current_scores().judges,
            "reviewers": sorted({h["reviewer"] for h in humans}),
            "reviewed_generations": len({(h["item_id"], h["gen_round"]) for h in humans}),
        }


REVIEW = web.AppKey("review", _Review)


def create_app(store_path: str | Path, run_id: str, token: str | None = None) -> web.Application:
    """The review app for one run of a store. `run_id` may be a unique prefix.

    Raises ReviewError when the store or the run does not exist, or the token is blank.
    """
    path = Path(store_path)
    if not path.is_file():
        raise ReviewError(f"no run store at {path}; pass --store or run `skillmix run` first")
    if token is not None and not token.strip():
        raise ReviewError("the review token is empty; give a real one or none")
    try:
        store = Store(path)
        try:
            full_id = str(store.get_run(run_id)["id"])
        finally:
            store.close()
    except StoreError as err:
        raise ReviewError(str(err)) from err

    review = _Review(path, full_id, token, static=_load_static())
    app = web.Application(middlewares=[_headers_and_errors, _guard], client_max_size=1 << 20)
    app[REVIEW] = review
    app.router.add_get("/", _page)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/api/run", _run)
    app.router.add_get("/api/queue", _queue)
    app.router.add_get("/api/item", _item)
    app.router.add_post("/api/verdicts", _verdicts)
    app.router.add_get("/api/agreement", _agreement)
    app.on_cleanup.append(_close_store)
    return app


def serve(
    store_path: str | Path,
    run_id: str,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the review app until interrupted; `announce` gets the URL once it listens."""
    check_binding(host, token)
    app = create_app(store_path, run_id, token)

    async def forever() -> None:
        runner, bound_port = await _start(app, host, port)
        try:
            announce(page_url(host, bound_port, token))
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(forever())


class BackgroundServer:
    """The review app served from a background thread: for notebooks and tests.

    with BackgroundServer("skillmix.sqlite", run_id) as server:
        print(server.url)
    """

    def __init__(
        self,
        store_path: str | Path,
        run_id: str,
        host: str = DEFAULT_HOST,
        port: int = 0,
        token: str | None = None,
    ):
        check_binding(host, token)
        self.app = create_app(store_path, run_id, token)
        self.store_path = self.app[REVIEW].store_path
        self.run_id = self.app[REVIEW].run_id  # in full, when given as a prefix
        self.host = host
        self.port = port
        self.token = token
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="skillmix-review", daemon=True)

    @property
    def url(self) -> str:
        """The page's URL, with the token when there is one."""
        return page_url(self.host, self.port, self.token)

    @property
    def base_url(self) -> str:
        return page_url(self.host, self.port, None).rstrip("/")

    def start(self) -> BackgroundServer:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            runner, self.port = self._loop.run_until_complete(
                _start(self.app, self.host, self.port)
            )
        except BaseException as err:  # handed to start() in the caller's thread
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()


def page_url(host: str, port: int, token: str | None) -> str:
    """The URL to open; a wildcard address is replaced by this machine's name."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    shown = f"[{host}]" if ":" in host else host
    query = f"?token={quote(token, safe='')}" if token else ""
    return f"http://{shown}:{port}/{query}"


async def _start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as err:
        await runner.cleanup()
        raise ReviewError(f"cannot listen on {host}:{port}: {err.strerror or err}") from err
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)


def _load_static() -> dict[str, bytes]:
    folder = resources.files("skillmix.review") / "static"
    return {name: (folder / name).read_bytes() for name in ("index.html", *STATIC_TYPES)}


async def _close_store(app: web.Application) -> None:
    review = app[REVIEW]
    if review.store is not None:
        review.store.close()
        review.store = None


# --- middlewares ------------------------------------------------------------------------------


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def _headers_and_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; HTTP errors (404, 405, ...) answered as JSON."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _error(exc.status, exc.reason)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"  # the page URL may hold the token
    response.headers["Cache-Control"] = "no-store"
    return response


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Token, Host and Origin checks, before any handler runs."""
    review = request.app[REVIEW]
    is_api = request.path.startswith("/api/")
    if review.token is not None:
        supplied = request.headers.get(TOKEN_HEADER)
        if supplied is None and not is_api:
            supplied = request.query.get("token")
        if supplied is None or not hmac.compare_digest(supplied.encode(), review.token.encode()):
            where = f"the {TOKEN_HEADER} header" if is_api else "?token= in the URL"
            return _error(403, f"this review app needs its token ({where})")
    elif not is_loopback(_hostname(request.host)):
        return _error(403, f"unexpected Host '{request.host}': open the app via 127.0.0.1")
    if request.method == "POST":
        origin = request.headers.get("Origin")
        if origin and urlsplit(origin).netloc != request.host:
            return _error(403, f"cross-origin request from {origin} refused")
        if request.content_type != "application/json":
            return _error(415, "send the body as JSON (Content-Type: application/json)")
    return await handler(request)


def _hostname(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


# --- handlers ---------------------------------------------------------------------------------


async def _page(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    query = f"?token={quote(review.token, safe='')}" if review.token else ""
    page = review.static["index.html"].decode().replace("__ASSET_QUERY__", html.escape(query))
    return web.Response(text=page, content_type="text/html")


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_TYPES:
        return _error(404, f"no static file {name}")
    body = request.app[REVIEW].static[name]
    return web.Response(body=body, content_type=STATIC_TYPES[name], charset="utf-8")


async def _run(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    scores = review.current_scores()
    config = scores.run["config"]
    return _json(
        {
            "run_id": review.run_id,
            "student": config["student"],
            "judges": scores.judges,
            "k": config["k"],
            "items": config["items"],
            "generation_rounds": config["generation_rounds"],
            "grading_rounds": config["grading_rounds"],
            "naming_penalty": bool(config.get("naming_penalty", True)),
            "generations": len(review.details),
        }
    )


async def _queue(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    reviewer = request.query.get("reviewer", "").strip()
    if not reviewer:
        return _error(400, "say who is reviewing: ?reviewer=NAME")
    try:
        limit = int(request.query.get("limit", "50"))
        seed = int(request.query.get("seed", "0"))
    except ValueError:
        return _error(400, "limit and seed must be integers")
    if not 1 <= limit <= 1000:
        return _error(400, "limit must be between 1 and 1000")
    queue = review_queue(review.db, review.run_id, reviewer=reviewer, seed=seed)
    total = len(review.db.generations(review.run_id))
    return _json(
        {
            "reviewer": reviewer,
            "remaining": len(queue),
            "reviewed": total - len(queue),
            "total": total,
            "entries": [e.to_dict() for e in queue[:limit]],
        }
    )


async def _item(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    item_id = request.query.get("item_id", "")
    try:
        gen_round = int(request.query.get("gen_round", ""))
    except ValueError:
        return _error(400, "gen_round must be an integer")
    detail = review.detail(item_id, gen_round)
    if detail is None:
        return _error(404, f"no generation {gen_round} of item '{item_id}' in {review.run_id}")
    reviewer = request.query.get("reviewer", "").strip()
    own = {
        h["criterion"]: h["value"]
        for h in review.db.human_verdicts(review.run_id)
        if reviewer
        and h["reviewer"] == reviewer
        and (h["item_id"], h["gen_round"]) == (item_id, gen_round)
    }
    return _json({**detail, "human": own})


async def _verdicts(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "the body is not valid JSON")
    try:
        reviewer, item_id, gen_round, verdicts = _check_verdicts(review, body)
    except _Invalid as err:
        return _error(err.status, str(err))
    review.db.put_human_verdicts(review.run_id, item_id, gen_round, reviewer, verdicts)
    return _json({"saved": len(verdicts), "agreement": review.agreement()})


async def _agreement(request: web.Request) -> web.Response:
    return _json(request.app[REVIEW].agreement())


class _Invalid(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _check_verdicts(review: _Review, body: Any) -> tuple[str, str, int, dict[str, int]]:
    """(reviewer, item_id, gen_round, verdicts) from a POST body, or _Invalid saying why."""
    if not isinstance(body, dict):
        raise _Invalid("the body must be a JSON object with reviewer, item_id, gen_round, verdicts")
    reviewer = body.get("reviewer")
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise _Invalid("reviewer must be a non-empty name")
    if len(reviewer.strip()) > MAX_REVIEWER_LENGTH:
        raise _Invalid(f"reviewer must be at most {MAX_REVIEWER_LENGTH} characters")
    item_id, gen_round = body.get("item_id"), body.get("gen_round")
    if not isinstance(item_id, str) or not item_id:
        raise _Invalid("item_id must be a non-empty string")
    if not isinstance(gen_round, int) or isinstance(gen_round, bool):
        raise _Invalid("gen_round must be an integer")
    verdicts = body.get("verdicts")
    if not isinstance(verdicts, dict) or not verdicts:
        raise _Invalid("verdicts must be a non-empty object {criterion_id: 0 or 1}")
    detail = review.detail(item_id, gen_round)
    if detail is None:
        raise _Invalid(f"no generation {gen_round} of item '{item_id}' in {review.run_id}", 404)
    known = [c["id"] for c in detail["criteria"]]
    unknown = [c for c in verdicts if c not in known]
    if unknown:
        raise _Invalid(
            f"not a criterion of item {item_id}: {', '.join(map(repr, unknown))} "
            f"(its criteria: {', '.join(known)})"
        )
    bad = [
        c
        for c, v in verdicts.items()
        if not isinstance(v, int) or isinstance(v, bool) or v not in (0, 1)
    ]
    if bad:
        shown = ", ".join(f"{c}={json.dumps(verdicts[c])}" for c in bad)
        raise _Invalid(f"verdict values must be 0 (not met) or 1 (met), got {shown}")
    return reviewer.strip(), item_id, gen_round, {c: int(v) for c, v in verdicts.items()}


def _json(data: Any) -> web.Response:
    return web.json_response(_finite(data))


def _finite(value: Any) -> Any:
    """NaN and infinities become null: JSON has no NaN and browsers reject it."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
