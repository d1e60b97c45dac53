"""Who may use the review app: tokens, the address it listens on, and the Host and origin
of each request (against other pages and DNS rebinding), as its middlewares check them."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from skillmix.errors import InputError
from skillmix.image.run import KIND as IMAGE_KIND
from skillmix.review.inputs import Invalid, error_response
from skillmix.review.state import REVIEW

TOKEN_HEADER = "X-Review-Token"
TOKEN_ENV = "SKILLMIX_REVIEW_TOKEN"
MIN_TOKEN_LENGTH = 22  # 16 random bytes in url-safe base64; 32 in hex
MIN_TOKEN_SYMBOLS = 8  # distinct characters: refuses "aaaa…" and the like
MAX_TOKEN_LENGTH = 512
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# The image page shows each image from a data: URL that its script fetched with the token.
IMAGE_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "img-src 'self'", "img-src 'self' data:"
)
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


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
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
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as JSON: HTTP errors (404, 405, 413, ...) and bad input as they are,
    anything else as a 500 whose traceback goes to the log (it is a bug)."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error_response(exc.status, exc.reason)
        if "Allow" in exc.headers:  # a 405 says which methods would do
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Invalid as err:
        return error_response(err.status, str(err))
    except Exception:
        log.exception("review app: %s %s failed", request.method, request.path)
        return error_response(500, "internal error in the review app; its log has the details")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
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
            return error_response(403, f"this review app needs its token ({where})")
    elif not is_loopback(hostname(request.host)):
        return error_response(403, f"unexpected Host '{request.host}': open the app via 127.0.0.1")
    if is_api or request.method not in ("GET", "HEAD"):
        refused = foreign_origin(request)
        if refused:
            return error_response(403, f"cross-origin request from {refused} refused")
    if request.method == "POST" and request.content_type != "application/json":
        return error_response(415, "send the body as JSON (Content-Type: application/json)")
    return await handler(request)


def foreign_origin(request: web.Request) -> str | None:
    """Who sent a request that came from another page, or None when it is our own.

    Browsers say where a request comes from: `Sec-Fetch-Site` on every request (also the
    no-cors ones, which carry no Origin) and `Origin` on POSTs and CORS requests. An
    origin is scheme, host and port, all three compared. Clients that send neither
    (curl, scripts) are not browsers driven by another page and are let through.
    """
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() != own_origin(request):
        return origin
    if site in FOREIGN_SITES:
        return origin or f"a {site} page"
    return None


def own_origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}".lower()


def hostname(host_header: str) -> str:
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header
