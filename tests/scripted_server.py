"""A real OpenAI-compatible HTTP server on 127.0.0.1 that answers from a script.

Tests give it a `policy(body) -> Reply` function. It records every request body it got,
so a test can check what was sent and how often. Runs in a background thread (stdlib
ThreadingHTTPServer): no mock, real sockets and real HTTP.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    content: str | None = None
    status: int = 200
    raw: str | None = None  # send this body verbatim (for malformed responses)
    delay_s: float = 0.0
    headers: dict[str, str] | None = None
    drop: bool = False  # close the connection without answering


Policy = Callable[[dict[str, Any]], Reply]


def _digest(*parts: object) -> int:
    return int(hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest(), 16)


_NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def sentence_limit_in(text: str) -> int | None:
    """The "at most N sentence(s)" limit a prompt states, in digits (v1) or words (v2)."""
    match = re.search(r"at most (\d+|[a-z]+) sentence", text)
    if match is None:
        return None
    word = match.group(1)
    if word.isdigit():
        return int(word)
    return _NUMBER_WORDS.index(word) + 1 if word in _NUMBER_WORDS else None


def skill_names_in(prompt: str) -> list[str]:
    """The skills a student prompt lists: "- name: ..." (v1) or "**name**: ..." (v2)."""
    found = re.findall(r"^(?:- ([^:]+)|\*\*(.+?)\*\*):", prompt, flags=re.M)
    return [plain or bold for plain, bold in found]


def rubric_labels_in(prompt: str) -> list[str]:
    """The criteria a grading prompt lists: numbered lines, or a "Criteria: a, b" line."""
    numbered = re.findall(r"^\d+\. (.+)$", prompt, flags=re.M)
    if numbered:
        return numbered
    inline = re.search(r"^Criteria: (.+)$", prompt, flags=re.M)
    return inline.group(1).split(", ") if inline else []


def honest_policy(body: dict[str, Any]) -> Reply:
    """A deterministic student and judge.

    Student: writes exactly as many sentences as the turn-2 prompt allows (turn 1: two
    more), about the topic, and names a skill when the seed says so (1 in 7).
    Judge: marks each criterion from a hash of (answer, key, seed), so grading rounds
    differ and majority vote matters; answers JSON when a schema is given, a table with
    a Points Earned column when asked for one, else lines.
    """
    messages = body["messages"]
    last = messages[-1]["content"]
    seed = body.get("seed", 0)
    if "Text to grade" in last:
        answer = last.split("=== Text to grade ===")[1].split("=== End of text ===")[0].strip()
        fmt = body.get("response_format")
        if fmt:
            keys = list(fmt["json_schema"]["schema"]["properties"])
        elif "Points Earned" in last:
            keys = rubric_labels_in(last)
        else:
            keys = re.findall(r"^(.+): <1 or 0>$", last, flags=re.M)
        values = {k: int(_digest(answer, k, seed) % 5 != 0) for k in keys}
        if fmt:
            return Reply(json.dumps(values))
        if "Points Earned" in last:
            rows = "\n".join(f"| {k} | {v} |" for k, v in values.items())
            total = sum(values.values())
            return Reply(
                "| Criteria | Points Earned |\n|---|---|\n"
                f"{rows}\n| Total Points Earned | {total} |\n\nExplanation: graded."
            )
        return Reply("\n".join(f"{k}: {v}" for k, v in values.items()))
    topic = re.search(r"about (.+?) that illustrates", messages[0]["content"]).group(1)
    limit = sentence_limit_in(last)
    n = limit if limit is not None else 3
    if limit is None:
        n += 2
    sentences = [f"The {topic} story goes on, part {i + 1}." for i in range(n)]
    if limit is not None and _digest(messages[0]["content"], seed) % 7 == 0:
        names = skill_names_in(messages[0]["content"])
        sentences[0] = f"This shows {names[0]} about {topic}."
    return Reply("Answer: " + " ".join(sentences) + "\nExplanation: it does.")


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (timeout, dropped connection) is expected here, not an error.

    The listen backlog is socketserver's 5 by default: a run opening dozens of connections
    at once then has some refused and retried by the kernel after 1 s, 3 s, 7 s... which
    turns a test of seconds into minutes. 128 takes every client a test starts at once.
    """

    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


FAULTS = ("429-retry-after", "429", "500", "slow", "drop", "invalid-json", "empty")


class FaultInjector:
    """Wraps a policy: the first time a request is seen it may fail in one of FAULTS.

    Which fault (or none) is chosen from a hash of the request, so the same run meets the
    same faults; a repeated request always gets the real answer, so a client that retries
    correctly ends with exactly the answers of a clean server. `slow_s` must exceed the
    client's timeout.
    """

    def __init__(self, policy: Policy = honest_policy, slow_s: float = 1.0, rate: int = 2):
        self.policy = policy
        self.slow_s = slow_s
        self.rate = rate  # one request in `rate` faults on first sight
        self.seen: dict[str, int] = {}
        self.injected: dict[str, int] = dict.fromkeys(FAULTS, 0)
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        key = json.dumps(body, sort_keys=True)
        with self._lock:
            attempt = self.seen.get(key, 0)
            self.seen[key] = attempt + 1
        digest = _digest(key, "fault")
        if attempt > 0 or digest % self.rate:
            return self.policy(body)
        fault = FAULTS[(digest // self.rate) % len(FAULTS)]
        with self._lock:
            self.injected[fault] += 1
        if fault == "429-retry-after":
            return Reply(status=429, raw='{"error": "rate"}', headers={"Retry-After": "0.05"})
        if fault == "429":
            return Reply(status=429, raw='{"error": "rate"}')
        if fault == "500":
            return Reply(status=500, raw='{"error": "internal"}')
        if fault == "slow":
            reply = self.policy(body)
            reply.delay_s = self.slow_s
            return reply
        if fault == "drop":
            return Reply(drop=True)
        if fault == "invalid-json":
            return Reply(status=200, raw='{"choices": [{"message": ')
        return Reply("")


class ScriptedServer:
    """Start with `with ScriptedServer(policy) as server:`; `server.base_url` ends in /v1."""

    def __init__(self, policy: Policy = honest_policy, model: str = "scripted", port: int = 0):
        self.policy = policy
        self.model = model
        self.requests: list[dict[str, Any]] = []
        # The client's (host, port) of each request, in the same order (which process sent it).
        self.clients: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        # A gate for tests that interrupt a client at a chosen request: see hold_from().
        self._hold_from: int | None = None
        self.holding = threading.Event()
        self._released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with server._lock:
                    server.requests.append(body)
                    server.clients.append(self.client_address[:2])
                    held = (
                        server._hold_from is not None and len(server.requests) >= server._hold_from
                    )
                if held:
                    server.holding.set()
                    server._released.wait(120)
                if not self.path.endswith("/chat/completions"):
                    return self._send(404, json.dumps({"error": "not found"}))
                if body.get("model") != server.model:
                    return self._send(
                        404,
                        json.dumps({"error": {"message": f"model {body.get('model')} not found"}}),
                    )
                reply = server.policy(body)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return None
                if reply.raw is not None:
                    return self._send(reply.status, reply.raw, reply.headers)
                payload = {
                    "id": "x",
                    "object": "chat.completion",
                    "model": server.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": reply.content},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
                }
                self._send(reply.status, json.dumps(payload), reply.headers)

            def _send(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = _QuietServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def hold_from(self, n: int) -> None:
        """Answer requests 1..n-1 as usual; hold the n-th and every later one unanswered.

        `holding` is set once the n-th request arrived; `release()` lets held ones go on.
        A test interrupts its client while it waits on held answers, at a point chosen by
        request count, not by time, so the interruption always lands mid-run.
        """
        self._hold_from = n
        self.holding.clear()  # a server may hold more than once
        self._released.clear()

    def release(self) -> None:
        self._hold_from = None
        self._released.set()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def spec(self) -> str:
        return f"openai:{self.model}@{self.base_url}"

    def __enter__(self) -> ScriptedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()
