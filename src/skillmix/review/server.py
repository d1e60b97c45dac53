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

For a `math generate` run the page is the verification queue of generated questions
(math.html), with its own API in place of the queue, item and verdict routes above:

    GET  /api/run               the run, its review counts and warnings
    GET  /api/queue?reviewer=R  the surviving questions R has not decided yet (&limit=N)
    GET  /api/candidate?id=C[&reviewer=R]
                                skills, question, solution, answer, filters, conversation
    POST /api/decision          {"reviewer", "candidate_id", "decision": accept|edit|reject,
                                 "question", "solution", "answer" (an edit), "note"}

For an image run (`skillmix image run`) a person answers the judge's yes/no questions about
a sample of the images, without seeing the judge's answers (image.html):

    GET  /api/run               the run, and how many images it has
    GET  /api/queue?reviewer=R  the images R has not answered yet, stratified by k
                                (&limit=N, &seed=S)
    GET  /api/item?item_id=I[&reviewer=R]
                                the object, the prompt, the questions (and R's answers)
    GET  /api/image?item_id=I   the image as a data: URL
    POST /api/verdicts          {"reviewer", "item_id", "verdicts": {concept_id: 0|1}}
    GET  /api/agreement         judge-vs-human agreement, overall and per category

Security: it listens on 127.0.0.1 unless told otherwise, and any other address needs a
token (at least 22 random characters; `generate_token` makes one). With a token, every
request must carry it: `?token=` for the page and its assets, the `X-Review-Token` header
for the API. Without one, requests must name a loopback Host (against DNS rebinding). An
API request that a browser marks as coming from another page (`Sec-Fetch-Site`, `Origin`
with another scheme, host or port) is refused before any work is done, and a POST must be
JSON. Inputs are checked against bounds (body size, integer ranges, string length, valid
UTF-8) and every error, including a bug's, is a JSON answer. Every answer carries a
Content-Security-Policy that allows only the app's own script and styles, and the page
puts model text into the document with textContent only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import ipaddress
import json
import logging
import secrets
import socket
import threading
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import web

from skillmix.errors import InputError
from skillmix.image.agreement import image_agreement
from skillmix.image.image_store import ImageStore
from skillmix.image.report import ImageReport, build_image_report
from skillmix.image.review import answered_by, check_answers, image_queue, review_item
from skillmix.image.run import KIND as IMAGE_KIND
from skillmix.jsonsafe import finite
from skillmix.math.generate import PIPELINE as GENERATE_KIND
from skillmix.math.generate import StoredGenerateRun, load_generate_run
from skillmix.math.generate_review import (
    MAX_NOTE_CHARS,
    MAX_TEXT_CHARS,
    candidate_view,
    decisions,
    put_decision,
    review_summary,
)
from skillmix.math.generate_review import review_queue as question_queue
from skillmix.report.details import item_details
from skillmix.review.queue import review_queue
from skillmix.scoring.human import human_agreement
from skillmix.scoring.results import RunScores, score_run
from skillmix.store import EVALUATION, Store, StoreError, run_kind
from skillmix.store.backend import is_postgres

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8321
TOKEN_HEADER = "X-Review-Token"
TOKEN_ENV = "SKILLMIX_REVIEW_TOKEN"
MIN_TOKEN_LENGTH = 22  # 16 random bytes in url-safe base64; 32 in hex
MIN_TOKEN_SYMBOLS = 8  # distinct characters: refuses "aaaa…" and the like
MAX_TOKEN_LENGTH = 512
MAX_REVIEWER_LENGTH = 100
MAX_ID_LENGTH = 200  # item and criterion ids
MAX_BODY_BYTES = 64 * 1024  # a verdict is a few hundred bytes
MAX_GEN_ROUND = 1_000_000
MAX_SEED = 2**63 - 1
MAX_QUEUE_LIMIT = 1000
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
STATIC_TYPES = {
    "dom.js": "text/javascript",
    "app.js": "text/javascript",
    "app.css": "text/css",
    "favicon.svg": "image/svg+xml",
    "math.js": "text/javascript",
    "math.css": "text/css",
    "image.js": "text/javascript",
    "image.css": "text/css",
}
# The image page shows each image from a data: URL that its script fetched with the token.
IMAGE_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "img-src 'self'", "img-src 'self' data:"
)
REVIEWABLE = (EVALUATION, GENERATE_KIND, IMAGE_KIND)  # the kinds of run the app can show
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
# Sec-Fetch-Site values of requests that another page started (browsers send the header).
FOREIGN_SITES = {"cross-site", "same-site"}

log = logging.getLogger("skillmix.review")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ReviewError(InputError):
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


def generate_token() -> str:
    """A fresh random token: 32 bytes, url-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def check_token(token: str) -> None:
    """Refuse a token that is easy to guess or cannot travel in a URL and a header."""
    how = (
        f"use at least {MIN_TOKEN_LENGTH} random characters, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe())'"
    )
    if not token.strip():
        raise ReviewError(f"the review token is empty: {how}")
    if not all("!" <= c <= "~" for c in token) or len(token) > MAX_TOKEN_LENGTH:
        raise ReviewError(
            f"the review token must be printable ASCII without spaces, at most "
            f"{MAX_TOKEN_LENGTH} characters: {how}"
        )
    if len(token) < MIN_TOKEN_LENGTH or len(set(token)) < MIN_TOKEN_SYMBOLS:
        raise ReviewError(
            f"the review token is too weak ({len(token)} characters, {len(set(token))} "
            f"different): {how}"
        )


def check_binding(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token, and any weak token."""
    if token is not None:
        check_token(token)
    elif not is_loopback(host):
        raise ReviewError(
            f"refusing to listen on {host} without a token: anyone who can reach it could "
            f"read the run and write verdicts. Set {TOKEN_ENV} or pass --token-file (the "
            "`skillmix review` command makes one when you give none), or listen on "
            "127.0.0.1 and use an SSH tunnel."
        )


@dataclass
class _Review:
    """What one app serves: the run, its scores and details (a snapshot), the store.

    The snapshot is indexed by (item_id, gen_round), so looking a generation up costs the
    same whatever the run's size. It is re-read only for a generation that can still
    appear: one of the run's items, a round within its generation rounds, while the run
    was not yet done when the snapshot was taken. Any other id is answered from memory.
    """

    store_path: str  # an SQLite file or a postgresql:// URL
    run_id: str
    token: str | None
    store: Store | None = None
    scores: RunScores | None = None
    details: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    item_ids: frozenset[str] = frozenset()
    complete: bool = False  # the run was done when the snapshot was taken
    static: dict[str, bytes] = field(default_factory=dict)
    kind: str = EVALUATION  # what made the run: a Skill-Mix evaluation, or `math generate`
    generated: StoredGenerateRun | None = None  # a `math generate` run, read once
    image_report: ImageReport | None = None  # an image run: read again until it is done

    @property
    def db(self) -> Store:
        if self.store is None:  # opened on the server's own thread (sqlite needs that)
            self.store = Store(self.store_path)
        return self.store

    def refresh(self) -> None:
        """Re-read scores and details (they change only while the run is still going)."""
        # The status first: if the run was done then, this snapshot holds all of it.
        self.complete = self.db.get_run(self.run_id)["status"] == "done"
        self.scores = score_run(self.db, self.run_id)
        self.item_ids = frozenset(i["item_id"] for i in self.db.items(self.run_id))
        self.details = {
            (d["item_id"], d["gen_round"]): d for d in item_details(self.db, self.scores)
        }

    def current_scores(self) -> RunScores:
        if self.scores is None:
            self.refresh()
        assert self.scores is not None
        return self.scores

    def detail(self, item_id: str, gen_round: int) -> dict[str, Any] | None:
        """One generation's details, or None when the run has no such generation."""
        rounds = int(self.current_scores().run["config"]["generation_rounds"])
        key = (item_id, gen_round)
        if key in self.details:
            return self.details[key]
        if self.complete or item_id not in self.item_ids or not 0 <= gen_round < rounds:
            return None
        self.refresh()  # a generation stored since the snapshot, while the run goes on
        return self.details.get(key)

    def generated_run(self) -> StoredGenerateRun:
        """The `math generate` run under review (done, so read once)."""
        if self.generated is None:
            self.generated = load_generate_run(self.db, self.run_id)
        return self.generated

    def image_run(self) -> ImageReport:
        """The image run under review (read again while it is still going)."""
        if self.image_report is None or self.image_report.status != "done":
            self.image_report = build_image_report(self.db, self.run_id)
        return self.image_report

    def image_row(self, item_id: str) -> dict[str, Any] | None:
        """One sample of the image run that has its image, or None."""
        rows = [r for r in self.image_run().rows if r["item"]["item_id"] == item_id]
        return rows[0] if rows and rows[0]["image"] is not None else None

    def image_agreement(self) -> dict[str, Any]:
        report = self.image_run()
        humans = self.db.human_verdicts(self.run_id)
        found = image_agreement(
            (r["grade"] for r in report.rows if r["grade"]),
            humans,
            concept_names={c["id"]: c["name"] for c in report.catalog.get("concepts", [])},
            category_names={
                c["id"]: c.get("name", c["id"]) for c in report.catalog.get("categories", [])
            },
            seed=int(report.config.get("seed", 0)),
        )
        return {
            "reviewers": sorted({h["reviewer"] for h in humans}),
            "reviewed_images": len({h["item_id"] for h in humans}),
            "agreement": None if found is None else found.to_dict(),
        }

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

    Raises ReviewError when the store or the run does not exist, or the token is weak.
    """
    path = str(store_path)
    if not is_postgres(path) and not Path(path).is_file():
        raise ReviewError(f"no run store at {path}; pass --store or run `skillmix run` first")
    if token is not None:
        check_token(token)
    try:
        store = Store(path)
        try:
            run = store.get_run(run_id)
        finally:
            store.close()
    except StoreError as err:
        raise ReviewError(str(err)) from err
    full_id, kind = str(run["id"]), run_kind(run)
    if kind not in REVIEWABLE:
        raise ReviewError(
            f"run {full_id} is a {kind} run: the review app shows Skill-Mix runs (their "
            "grades), math generate runs (their questions) and image runs (their images)"
        )
    if kind == GENERATE_KIND and run["status"] != "done":
        raise ReviewError(
            f"run {full_id} is {run['status']}: its questions are not all filtered yet",
            hint="re-run the same `skillmix math generate` command to finish it",
        )

    review = _Review(path, full_id, token, static=_load_static(), kind=kind)
    app = web.Application(middlewares=[_errors_as_json, _guard], client_max_size=MAX_BODY_BYTES)
    app[REVIEW] = review
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/", _page)
    app.router.add_get("/static/{name}", _static)
    if kind == GENERATE_KIND:
        app.router.add_get("/api/run", _math_run)
        app.router.add_get("/api/queue", _math_queue)
        app.router.add_get("/api/candidate", _math_candidate)
        app.router.add_post("/api/decision", _math_decision)
    elif kind == IMAGE_KIND:
        app.router.add_get("/api/run", _image_run)
        app.router.add_get("/api/queue", _image_queue)
        app.router.add_get("/api/item", _image_item)
        app.router.add_get("/api/image", _image_data)
        app.router.add_post("/api/verdicts", _image_verdicts)
        app.router.add_get("/api/agreement", _image_agreement)
    else:
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
    pages = ("index.html", "math.html", "image.html", *STATIC_TYPES)
    return {name: (folder / name).read_bytes() for name in pages}


async def _close_store(app: web.Application) -> None:
    review = app[REVIEW]
    if review.store is not None:
        review.store.close()
        review.store = None


# --- middlewares ------------------------------------------------------------------------------


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every answer that leaves the app, whoever made it (a handler, aiohttp, an error)."""
    images = request.app[REVIEW].kind == IMAGE_KIND
    response.headers["Content-Security-Policy"] = (
        IMAGE_CONTENT_SECURITY_POLICY if images else CONTENT_SECURITY_POLICY
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"  # the page URL may hold the token
    response.headers["Cache-Control"] = "no-store"


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as JSON: HTTP errors (404, 405, 413, ...) and bad input as they are,
    anything else as a 500 whose traceback goes to the log (it is a bug)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _error(exc.status, exc.reason)
        if "Allow" in exc.headers:  # a 405 says which methods would do
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except _Invalid as err:
        return _error(err.status, str(err))
    except Exception:
        log.exception("review app: %s %s failed", request.method, request.path)
        return _error(500, "internal error in the review app; its log has the details")


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Token, Host and origin checks, before any handler runs."""
    review = request.app[REVIEW]
    is_api = request.path.startswith("/api/")
    if review.token is not None:
        supplied = request.headers.get(TOKEN_HEADER)
        if supplied is None and not is_api:
            supplied = request.query.get("token")
        if supplied is None or not hmac.compare_digest(
            supplied.encode(errors="replace"), review.token.encode()
        ):
            where = f"the {TOKEN_HEADER} header" if is_api else "?token= in the URL"
            return _error(403, f"this review app needs its token ({where})")
    elif not is_loopback(_hostname(request.host)):
        return _error(403, f"unexpected Host '{request.host}': open the app via 127.0.0.1")
    if is_api or request.method not in ("GET", "HEAD"):
        refused = _foreign_origin(request)
        if refused:
            return _error(403, f"cross-origin request from {refused} refused")
    if request.method == "POST" and request.content_type != "application/json":
        return _error(415, "send the body as JSON (Content-Type: application/json)")
    return await handler(request)


def _foreign_origin(request: web.Request) -> str | None:
    """Who sent a request that came from another page, or None when it is our own.

    Browsers say where a request comes from: `Sec-Fetch-Site` on every request (also the
    no-cors ones, which carry no Origin) and `Origin` on POSTs and CORS requests. An
    origin is scheme, host and port, all three compared. Clients that send neither
    (curl, scripts) are not browsers driven by another page and are let through.
    """
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() != _own_origin(request):
        return origin
    if site in FOREIGN_SITES:
        return origin or f"a {site} page"
    return None


def _own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}".lower()


def _hostname(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


# --- handlers ---------------------------------------------------------------------------------


async def _page(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    query = f"?token={quote(review.token, safe='')}" if review.token else ""
    name = {GENERATE_KIND: "math.html", IMAGE_KIND: "image.html"}.get(review.kind, "index.html")
    page = review.static[name].decode().replace("__ASSET_QUERY__", html.escape(query))
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
    reviewer = _reviewer(request.query.get("reviewer"), "say who is reviewing: ?reviewer=NAME")
    limit = _query_int(request, "limit", 50, 1, MAX_QUEUE_LIMIT)
    seed = _query_int(request, "seed", 0, 0, MAX_SEED)
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
    item_id = _identifier(request.query.get("item_id"), "item_id")
    gen_round = _query_int(request, "gen_round", None, 0, MAX_GEN_ROUND)
    detail = review.detail(item_id, gen_round)
    if detail is None:
        return _error(404, f"no generation {gen_round} of item '{item_id}' in {review.run_id}")
    given = request.query.get("reviewer", "")
    reviewer = _reviewer(given) if given.strip() else ""
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
    body = _parse_json(await request.read())  # at most MAX_BODY_BYTES, or a 413
    reviewer, item_id, gen_round, verdicts = _check_verdicts(review, body)
    review.db.put_human_verdicts(review.run_id, item_id, gen_round, reviewer, verdicts)
    return _json({"saved": len(verdicts), "agreement": review.agreement()})


async def _agreement(request: web.Request) -> web.Response:
    return _json(request.app[REVIEW].agreement())


# --- handlers of a `math generate` run: the verification queue of generated questions -----


async def _math_run(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    run = review.generated_run()
    config = run.config
    return _json(
        {
            "run_id": review.run_id,
            "kind": review.kind,
            "teacher": config.get("teacher", ""),
            "verifier": config.get("verifier") or config.get("teacher", ""),
            "catalog": run.catalog.name,
            "pool": config.get("pool"),
            "pairs": len(run.candidates),
            "warnings": run.warnings(),
            **review_summary(run, decisions(review.db, review.run_id)),
        }
    )


async def _math_queue(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    reviewer = _reviewer(request.query.get("reviewer"), "say who is reviewing: ?reviewer=NAME")
    limit = _query_int(request, "limit", 50, 1, MAX_QUEUE_LIMIT)
    run = review.generated_run()
    found = decisions(review.db, review.run_id)
    queue = question_queue(run, found, reviewer)
    decided_by: dict[str, list[str]] = {}
    for d in found:
        decided_by.setdefault(d.candidate_id, []).append(d.reviewer)
    total = len(run.survivors)
    return _json(
        {
            "reviewer": reviewer,
            "remaining": len(queue),
            "reviewed": total - len(queue),
            "total": total,
            "entries": [
                {
                    "id": c.id,
                    "skills": list(c.skill_names),
                    "decided_by": decided_by.get(c.id, []),
                }
                for c in queue[:limit]
            ],
        }
    )


async def _math_candidate(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    candidate_id = _identifier(request.query.get("id"), "id")
    given = request.query.get("reviewer", "")
    reviewer = _reviewer(given) if given.strip() else ""
    run = review.generated_run()
    candidate = run.candidate(candidate_id)
    if candidate is None:
        return _error(404, f"no generated question '{candidate_id}' in {review.run_id}")
    found = decisions(review.db, review.run_id)
    return _json(candidate_view(run, candidate, found, reviewer))


async def _math_decision(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    body = _parse_json(await request.read())  # at most MAX_BODY_BYTES, or a 413
    if not isinstance(body, dict):
        raise _Invalid("the body must be a JSON object with reviewer, candidate_id, decision")
    reviewer = _reviewer(body.get("reviewer"))
    candidate_id = _identifier(body.get("candidate_id"), "candidate_id")
    decision = body.get("decision")
    if decision not in ("accept", "edit", "reject"):
        raise _Invalid("decision must be accept, edit or reject")
    texts = {
        name: _edited_text(body.get(name), name, MAX_TEXT_CHARS)
        for name in ("question", "solution", "answer")
        if decision == "edit" and body.get(name) is not None
    }
    note = _edited_text(body.get("note"), "note", MAX_NOTE_CHARS) if body.get("note") else ""
    run = review.generated_run()
    candidate = run.candidate(candidate_id)
    if candidate is None:
        raise _Invalid(f"no generated question '{candidate_id}' in {review.run_id}", 404)
    try:
        saved = put_decision(
            review.db,
            review.run_id,
            candidate,
            reviewer,
            decision,
            question=texts.get("question"),
            solution=texts.get("solution"),
            answer=texts.get("answer"),
            note=note,
        )
    except InputError as err:
        raise _Invalid(str(err)) from err
    summary = review_summary(run, decisions(review.db, review.run_id))
    return _json({"saved": saved.to_record(), "summary": summary})


# --- handlers of an image run: people answer the judge's questions about the images -------


async def _image_run(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    report = review.image_run()
    config = report.config
    return _json(
        {
            "run_id": review.run_id,
            "kind": review.kind,
            "status": report.status,
            "generator": config.get("generator", ""),
            "judge": config.get("judge", ""),
            "k": config.get("k", []),
            "samples": len(report.rows),
            "images": sum(1 for r in report.rows if r["image"] is not None),
        }
    )


async def _image_queue(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    reviewer = _reviewer(request.query.get("reviewer"), "say who is reviewing: ?reviewer=NAME")
    limit = _query_int(request, "limit", 50, 1, MAX_QUEUE_LIMIT)
    seed = _query_int(request, "seed", 0, 0, MAX_SEED)
    rows = review.image_run().rows
    queue = image_queue(rows, review.db.human_verdicts(review.run_id), reviewer=reviewer, seed=seed)
    total = sum(1 for r in rows if r["image"] is not None)
    return _json(
        {
            "reviewer": reviewer,
            "seed": seed,
            "remaining": len(queue),
            "reviewed": total - len(queue),
            "total": total,
            "entries": [e.to_dict() for e in queue[:limit]],
        }
    )


def _image_row(review: _Review, item_id: str) -> dict[str, Any]:
    row = review.image_row(item_id)
    if row is None:
        raise _Invalid(f"no image of sample '{item_id}' in {review.run_id}", 404)
    return row


async def _image_item(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    row = _image_row(review, _identifier(request.query.get("item_id"), "item_id"))
    given = request.query.get("reviewer", "")
    reviewer = _reviewer(given) if given.strip() else ""
    own = answered_by(review.db.human_verdicts(review.run_id), reviewer) if reviewer else {}
    return _json(review_item(row, own.get(row["item"]["item_id"], {})))


async def _image_data(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    row = _image_row(review, _identifier(request.query.get("item_id"), "item_id"))
    item_id, digest = row["item"]["item_id"], row["image"]["sha256"]
    try:
        url = ImageStore.beside(review.db).data_url(digest)
    except StoreError as err:
        gone = f"the image of sample '{item_id}' is not in the image folder beside the store"
        raise _Invalid(gone, 404) from err
    return _json({"item_id": item_id, "sha256": digest, "data_url": url})


async def _image_verdicts(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    body = _parse_json(await request.read())  # at most MAX_BODY_BYTES, or a 413
    if not isinstance(body, dict):
        raise _Invalid("the body must be a JSON object with reviewer, item_id, verdicts")
    reviewer = _reviewer(body.get("reviewer"))
    item_id = _identifier(body.get("item_id"), "item_id")
    gen_round = body.get("gen_round", 0)
    if type(gen_round) is not int or gen_round != 0:
        raise _Invalid("gen_round must be 0 (or left out) for an image")
    row = _image_row(review, item_id)
    try:
        answers = check_answers(row, body.get("verdicts"))
    except ValueError as err:
        raise _Invalid(str(err)) from err
    review.db.put_human_verdicts(review.run_id, item_id, 0, reviewer, answers)
    return _json({"saved": len(answers), "agreement": review.image_agreement()})


async def _image_agreement(request: web.Request) -> web.Response:
    return _json(request.app[REVIEW].image_agreement())


# --- input checks: each raises _Invalid, which the error middleware answers as JSON --------


class _Invalid(ValueError):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _parse_json(raw: bytes) -> Any:
    """A request body as JSON, or _Invalid saying why not (never a 500)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise _Invalid("the body is not UTF-8 text") from err
    except json.JSONDecodeError as err:
        raise _Invalid(f"the body is not valid JSON: {err}") from err
    except RecursionError as err:
        raise _Invalid("the body is not a verdict: its JSON is nested too deeply") from err
    except ValueError as err:  # an integer with more digits than Python converts
        raise _Invalid("the body is not a verdict: it holds a number too long") from err


def _query_int(request: web.Request, name: str, default: int | None, low: int, high: int) -> int:
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
        raise _Invalid(expected)
    return value


def _is_text(value: str) -> bool:
    """Valid Unicode (no lone surrogates) without control characters."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(unicodedata.category(c) == "Cc" for c in value)


def _reviewer(value: Any, missing: str = "reviewer must be a non-empty name") -> str:
    """A reviewer's name, stripped: stored with every verdict and shown in reports."""
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(missing)
    name = value.strip()
    if len(name) > MAX_REVIEWER_LENGTH:
        raise _Invalid(f"reviewer must be at most {MAX_REVIEWER_LENGTH} characters")
    if not _is_text(name):
        raise _Invalid("reviewer must be plain text: no control characters, valid Unicode")
    return name


def _edited_text(value: Any, name: str, limit: int) -> str:
    """A reviewer's text (a question, solution, answer or note): lines and tabs allowed,
    other control characters and invalid Unicode refused."""
    if not isinstance(value, str):
        raise _Invalid(f"{name} must be text")
    if len(value) > limit:
        raise _Invalid(f"{name} must be at most {limit} characters")
    if not _is_text(value.replace("\n", " ").replace("\r", " ").replace("\t", " ")):
        raise _Invalid(f"{name} must be plain text: no control characters, valid Unicode")
    return value


def _identifier(value: Any, name: str) -> str:
    """An item or criterion id as sent (ids are compared exactly, never stripped)."""
    if not isinstance(value, str) or not value:
        raise _Invalid(f"{name} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH or not _is_text(value):
        raise _Invalid(f"{name} must be at most {MAX_ID_LENGTH} characters of plain text")
    return value


def _check_verdicts(review: _Review, body: Any) -> tuple[str, str, int, dict[str, int]]:
    """(reviewer, item_id, gen_round, verdicts) from a POST body, or _Invalid saying why."""
    if not isinstance(body, dict):
        raise _Invalid("the body must be a JSON object with reviewer, item_id, gen_round, verdicts")
    reviewer = _reviewer(body.get("reviewer"))
    item_id = _identifier(body.get("item_id"), "item_id")
    gen_round = body.get("gen_round")
    if not isinstance(gen_round, int) or isinstance(gen_round, bool):
        raise _Invalid(f"gen_round must be an integer from 0 to {MAX_GEN_ROUND}")
    if not 0 <= gen_round <= MAX_GEN_ROUND:
        raise _Invalid(f"gen_round must be an integer from 0 to {MAX_GEN_ROUND}")
    verdicts = body.get("verdicts")
    if not isinstance(verdicts, dict) or not verdicts:
        raise _Invalid("verdicts must be a non-empty object {criterion_id: 0 or 1}")
    detail = review.detail(item_id, gen_round)
    if detail is None:
        raise _Invalid(f"no generation {gen_round} of item '{item_id}' in {review.run_id}", 404)
    known = [c["id"] for c in detail["criteria"]]
    unknown = [c for c in verdicts if c not in known]
    if unknown:
        shown = ", ".join(json.dumps(c) for c in unknown[:5])  # ASCII: escapes anything odd
        raise _Invalid(
            f"not a criterion of item {item_id}: {shown} (its criteria: {', '.join(known)})"
        )
    bad = [
        c
        for c, v in verdicts.items()
        if not isinstance(v, int) or isinstance(v, bool) or v not in (0, 1)
    ]
    if bad:
        shown = ", ".join(f"{c}={json.dumps(verdicts[c])}" for c in bad)
        raise _Invalid(f"verdict values must be 0 (not met) or 1 (met), got {shown}")
    return reviewer, item_id, gen_round, {c: int(v) for c, v in verdicts.items()}


def _json(data: Any) -> web.Response:
    return web.json_response(finite(data))
