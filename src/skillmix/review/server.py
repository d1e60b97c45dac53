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

Here: the app, its server and the background server. `security` checks who may use it,
`inputs` what requests send, `state` holds the run under review; `handlers`,
`math_handlers` and `image_handlers` answer the routes of each kind of run.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from skillmix.image.run import KIND as IMAGE_KIND
from skillmix.math.generate import PIPELINE as GENERATE_KIND
from skillmix.review import handlers, image_handlers, math_handlers
from skillmix.review.handlers import STATIC_TYPES
from skillmix.review.security import (
    TOKEN_ENV,
    TOKEN_HEADER,
    ReviewError,
    check_binding,
    check_token,
    errors_as_json,
    generate_token,
    guard,
    security_headers,
)
from skillmix.review.state import REVIEW, ReviewState
from skillmix.store import EVALUATION, Store, StoreError, run_kind
from skillmix.store.backend import is_postgres

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8321
MAX_BODY_BYTES = 64 * 1024  # a verdict is a few hundred bytes
REVIEWABLE = (EVALUATION, GENERATE_KIND, IMAGE_KIND)  # the kinds of run the app can show

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "MAX_BODY_BYTES",
    "TOKEN_ENV",
    "TOKEN_HEADER",
    "BackgroundServer",
    "ReviewError",
    "check_binding",
    "check_token",
    "create_app",
    "generate_token",
    "page_url",
    "serve",
]


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

    review = ReviewState(path, full_id, token, static=_load_static(), kind=kind)
    app = web.Application(middlewares=[errors_as_json, guard], client_max_size=MAX_BODY_BYTES)
    app[REVIEW] = review
    app.on_response_prepare.append(security_headers)
    app.router.add_get("/", handlers.page)
    app.router.add_get("/static/{name}", handlers.static)
    if kind == GENERATE_KIND:
        math_handlers.add_routes(app)
    elif kind == IMAGE_KIND:
        image_handlers.add_routes(app)
    else:
        handlers.add_routes(app)
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
