"""A wrong URL or a stopped server fails in a few quick tries; an endpoint that has answered
before is flaky, not absent, and gets the full retries. Attempts are counted, never timed."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from pathlib import Path

import pytest

from conftest import skillmix
from scripted_server import Reply, ScriptedServer
from skillmix.models import ChatRequest, ModelError
from skillmix.models.openai_compat import OpenAICompatModel
from skillmix.models.retry import FIRST_CONTACT_TRIES, retry_status

REQUEST = ChatRequest(({"role": "user", "content": "hi"},), 0.0, 8, 1)


def closed_port() -> int:
    """A port nothing listens on: bound, noted, closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def complete(model: OpenAICompatModel, request: ChatRequest = REQUEST):
    async def go():
        try:
            return await model.complete(request)
        finally:
            await model.aclose()

    return asyncio.run(go())


class AcceptAndClose:
    """A TCP listener that counts connections and closes each at once, answering nothing."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed: the test is over
                return
            self.connections += 1
            conn.close()

    def __enter__(self) -> AcceptAndClose:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close alone won't
        self.sock.close()
        self.thread.join()


def test_a_run_against_a_closed_port_fails_after_three_quick_tries(tmp_path: Path):
    spec = f"openai:model@http://127.0.0.1:{closed_port()}/v1"
    failed = skillmix(
        *("run", "--student", spec, "--judge", spec, "--k", "2", "--items", "1"),
        cwd=tmp_path,
        check=False,
        timeout=120,
    )
    assert failed.returncode == 1, failed.stderr
    assert f"cannot connect to {spec.partition('@')[2]}" in failed.stderr
    assert "is the server running and the base URL right?" in failed.stderr
    assert f"gave up after {FIRST_CONTACT_TRIES} quick tries: it has never answered" in (
        failed.stderr
    )
    assert "Traceback" not in failed.stderr


def test_each_request_to_a_closed_port_makes_three_connection_attempts():
    # A path of its own: whether an endpoint has answered is remembered per process.
    model = OpenAICompatModel(
        "m", base_url=f"http://127.0.0.1:{closed_port()}/closed/v1", max_retries=8
    )
    with pytest.raises(ModelError, match="gave up after 3 quick tries"):
        complete(model)
    assert model.retry_causes == Counter({"connect": FIRST_CONTACT_TRIES - 1})


def test_a_listener_that_never_answers_gets_three_connections():
    with AcceptAndClose() as listener:
        model = OpenAICompatModel(
            "m", base_url=f"http://127.0.0.1:{listener.port}/silent/v1", max_retries=8
        )
        with pytest.raises(ModelError, match="is there an HTTP server at that address"):
            complete(model)
    assert listener.connections == FIRST_CONTACT_TRIES


def test_an_endpoint_that_answered_once_is_retried_in_full():
    with ScriptedServer(lambda body: Reply("hello"), model="m") as server:
        model = OpenAICompatModel("m", base_url=server.base_url, max_retries=5, backoff_s=0.001)
        assert complete(model).text == "hello"
    # The server is gone: the port refuses connections now.
    with pytest.raises(ModelError, match=r"cannot connect .* \(gave up after 6 tries\)"):
        complete(model)
    assert model.retries == 5


def test_a_server_that_comes_back_is_found_by_the_retries():
    with ScriptedServer(lambda body: Reply("first"), model="m") as server:
        model = OpenAICompatModel("m", base_url=server.base_url, max_retries=8, backoff_s=0.01)
        assert complete(model).text == "first"
    port = server.port

    async def restart_after_two_refusals() -> ScriptedServer:
        while model.retry_causes["connect"] < 2:  # wait for the condition, not for time
            await asyncio.sleep(0.005)
        return ScriptedServer(lambda body: Reply("back"), model="m", port=port).__enter__()

    async def go() -> str:
        try:
            answer, back = await asyncio.gather(
                model.complete(REQUEST), restart_after_two_refusals()
            )
        finally:
            await model.aclose()
        back.__exit__()
        return answer.text

    assert asyncio.run(go()) == "back"
    assert model.retry_causes["connect"] >= 2


def test_retries_in_progress_are_shown_by_cause():
    script = iter([Reply(status=429, raw="slow down"), Reply(status=500, raw="boom")])

    def policy(body):
        return next(script, Reply("fine"))

    with ScriptedServer(policy, model="m") as server:
        model = OpenAICompatModel("m", base_url=server.base_url, backoff_s=0.05)
        seen: list[str] = []

        async def watch(task: asyncio.Task) -> None:
            while not task.done():  # note every distinct status line while it runs
                status = retry_status([model])
                if status and status not in seen:
                    seen.append(status)
                await asyncio.sleep(0.001)

        async def go() -> str:
            try:
                task = asyncio.create_task(model.complete(REQUEST))
                await watch(task)
                return (await task).text
            finally:
                await model.aclose()

        assert asyncio.run(go()) == "fine"
    assert seen == ["retrying: 1 (429 x1)", "retrying: 1 (500 x1)"]
    assert retry_status([model]) == ""


def test_retry_status_sums_models_and_skips_idle_causes():
    class Model:
        def __init__(self, **waiting: int):
            self.retrying = Counter(waiting)

    busy = Model(**{"429": 2, "timeout": 1, "500": 0})
    assert retry_status([busy, Model(), busy]) == "retrying: 6 (429 x4, timeout x2)"
    assert retry_status([Model(), object()]) == ""
