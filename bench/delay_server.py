"""An OpenAI-compatible chat server that answers every request after a fixed delay.

    python bench/delay_server.py --port 8765 --delay 0.2

`POST /v1/chat/completions` (any path ending in /chat/completions) sleeps `--delay` seconds
and then answers:

* a judge request (one with `response_format` json_schema): a JSON object with every
  property of the schema set to 1;
* anything else: "Answer: The bench sentence. Explanation: x" (one sentence, so it is
  within the limit for every k).

`GET /stats` returns `{"requests", "inflight", "peak_inflight"}` and resets the peak, so a
benchmark can check how many requests a client really kept in flight.

It stands in for a backend whose latency is all waiting (a GPU server, a remote API), so
that a client's throughput can be compared with the ideal `concurrency / delay`. It is
built to cost as little CPU as possible, because it shares the machine's cores with the
client being measured: aiohttp's low-level server (no router, no access log), response
bodies prepared once (judge bodies cached per set of schema keys), and the request body
only parsed when it carries a schema.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Awaitable, Callable

from aiohttp import web

STUDENT_TEXT = "Answer: The bench sentence. Explanation: x"
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
JSON_HEADERS = {"Content-Type": "application/json"}
_SCHEMA_MARKER = b'"response_format"'  # a JSON key; inside message text it would be escaped
_JUDGE_CACHE_LIMIT = 10_000


def completion_body(content: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": "bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        },
        separators=(",", ":"),
    ).encode()


STUDENT_BODY = completion_body(STUDENT_TEXT)
NOT_FOUND_BODY = b'{"error":{"message":"not found"}}'


def make_handler(delay: float) -> Callable[[web.BaseRequest], Awaitable[web.Response]]:
    judge_bodies: dict[tuple[str, ...], bytes] = {}
    # requests answered, requests in flight now, most in flight since the last GET /stats
    stats = {"requests": 0, "inflight": 0, "peak_inflight": 0}

    def judge_body(raw: bytes) -> bytes:
        try:
            fmt = json.loads(raw).get("response_format") or {}
            keys = tuple(fmt["json_schema"]["schema"]["properties"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return STUDENT_BODY  # a response_format without a schema: answer as text
        body = judge_bodies.get(keys)
        if body is None:
            if len(judge_bodies) >= _JUDGE_CACHE_LIMIT:
                judge_bodies.clear()
            verdict = json.dumps(dict.fromkeys(keys, 1), separators=(",", ":"))
            body = judge_bodies[keys] = completion_body(verdict)
        return body

    async def handle(request: web.BaseRequest) -> web.Response:
        if request.method != "POST" or not request.path.endswith("/chat/completions"):
            if request.path == "/stats":  # read and reset the peak
                body = json.dumps(stats).encode()
                stats["peak_inflight"] = stats["inflight"]
                return web.Response(body=body, headers=JSON_HEADERS)
            return web.Response(status=404, body=NOT_FOUND_BODY, headers=JSON_HEADERS)
        stats["inflight"] += 1
        if stats["inflight"] > stats["peak_inflight"]:
            stats["peak_inflight"] = stats["inflight"]
        try:
            raw = await request.read()
            body = judge_body(raw) if _SCHEMA_MARKER in raw else STUDENT_BODY
            if delay > 0:
                await asyncio.sleep(delay)
        finally:
            stats["inflight"] -= 1
        stats["requests"] += 1
        return web.Response(body=body, headers=JSON_HEADERS)

    return handle


async def serve(host: str, port: int, delay: float, backlog: int) -> None:
    server = web.Server(make_handler(delay), access_log=None)
    runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=backlog, reuse_address=True)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--delay", type=float, default=0.2, help="seconds before each answer")
    parser.add_argument("--backlog", type=int, default=4096, help="listen backlog")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.delay, args.backlog))


if __name__ == "__main__":
    main()
