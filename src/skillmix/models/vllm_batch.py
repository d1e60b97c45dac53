"""vLLM offline inference in-process on a GPU, with requests batched behind `complete()`.

Spec: `vllm:MODEL`, where MODEL is a Hugging Face id or a local path. Needs the `vllm`
extra (`pip install 'skillmix[vllm]'`) on a machine with an NVIDIA GPU.

vLLM is fastest when it sees many prompts at once, but the engine calls `complete()` one
request at a time. So `complete()` only queues the request; a batcher task waits until no
new request has arrived for `batch_wait_s` (or `max_batch_size` are waiting), hands the
whole batch to `LLM.chat` in a worker thread, and resolves each request's future.
`LLM.chat` takes one SamplingParams per conversation, so requests with different settings
(temperature, seed, schema) share a batch. One batch runs at a time: the engine is not
safe to call from two threads at once.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

from skillmix.models.base import (
    LOCAL_DEFAULT_TEMPERATURE,
    ChatRequest,
    ChatResponse,
    ModelError,
    UnknownModelError,
    effective_temperature,
)

INSTALL_HINT = "pip install 'skillmix[vllm]' on a machine with an NVIDIA GPU"
DEFAULT_BATCH_WAIT_S = 0.02
DEFAULT_MAX_BATCH_SIZE = 1024

# One engine per (model, settings) per process: an engine holds most of the GPU's memory,
# so a second VLLMBatchModel for the same model (a new run in the same notebook) reuses it.
_ENGINES: dict[str, Any] = {}
_ENGINES_LOCK = threading.Lock()
# One batch on the GPU at a time, even if a closed model's batch is still finishing.
_GENERATE_LOCK = threading.Lock()


@dataclass
class _Pending:
    request: ChatRequest
    future: asyncio.Future[ChatResponse]


class VLLMBatchModel:
    """A model served by an in-process vLLM engine.

    `engine_kwargs` go to `vllm.LLM` (e.g. `gpu_memory_utilization=0.5, max_model_len=4096`)
    when the engine is first needed; pass `llm` to use an engine you already created.
    `batch_sizes` records the size of every batch sent to the engine.
    """

    provider = "vllm"
    supports_structured = True  # JSON schema -> vLLM guided decoding
    max_concurrency = 4096  # requests are batched inside, so let many wait here
    default_temperature = LOCAL_DEFAULT_TEMPERATURE  # not vLLM's 1.0: the published setting

    def __init__(
        self,
        name: str,
        *,
        batch_wait_s: float = DEFAULT_BATCH_WAIT_S,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        llm: Any = None,
        **engine_kwargs: Any,
    ):
        if not name:
            raise UnknownModelError(
                "vllm provider needs a model: vllm:MODEL (a Hugging Face id or a local path)"
            )
        self.name = name
        self.engine_kwargs = engine_kwargs
        self.batch_wait_s = batch_wait_s
        self.max_batch_size = max_batch_size
        self.batch_sizes: list[int] = []
        self._llm: Any = llm
        self._load_error: ModelError | None = None
        self._pending: list[_Pending] = []
        self._in_flight: list[_Pending] = []
        self._wakeup: asyncio.Event | None = None
        self._batcher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def identity(self) -> str:
        return self.spec

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Queue the request for the next batch and wait for its answer."""
        if self._load_error is not None:
            raise _copy(self._load_error)
        loop = asyncio.get_running_loop()
        wakeup = self._start_batcher(loop)
        future: asyncio.Future[ChatResponse] = loop.create_future()
        self._pending.append(_Pending(request, future))
        wakeup.set()
        return await future

    async def aclose(self) -> None:
        """Stop the batcher; the engine stays loaded for reuse (it is cached per process)."""
        batcher, self._batcher = self._batcher, None
        if batcher is not None and batcher.get_loop() is asyncio.get_running_loop():
            batcher.cancel()
            await asyncio.wait({batcher})
        closed = ModelError(f"{self.spec}: the model was closed")
        self._fail([*self._in_flight, *self._pending], closed)
        self._pending, self._in_flight = [], []

    # -- batching ---------------------------------------------------------------------

    def _start_batcher(self, loop: asyncio.AbstractEventLoop) -> asyncio.Event:
        """The wake-up event of this loop's batcher, starting one if none runs here."""
        if self._loop is not loop or self._batcher is None or self._batcher.done():
            if self._loop is not loop:
                self._pending = []  # futures of a previous, finished loop cannot be resolved
            self._loop = loop
            self._wakeup = asyncio.Event()
            self._batcher = loop.create_task(self._run_batcher(self._wakeup))
        assert self._wakeup is not None
        return self._wakeup

    async def _run_batcher(self, wakeup: asyncio.Event) -> None:
        try:
            await self._batch_forever(wakeup)
        except Exception as err:  # a bug here must not leave callers waiting forever
            self._fail(self._pending, ModelError(f"{self.spec}: batcher failed: {err!r}"))
            self._pending = []

    async def _batch_forever(self, wakeup: asyncio.Event) -> None:
        while True:
            await wakeup.wait()
            # Gather until the requests stop coming for a moment or the batch is full.
            while len(self._pending) < self.max_batch_size:
                wakeup.clear()
                try:
                    await asyncio.wait_for(wakeup.wait(), self.batch_wait_s)
                except TimeoutError:
                    break
            batch = self._pending[: self.max_batch_size]
            self._pending = self._pending[self.max_batch_size :]
            if not self._pending:
                wakeup.clear()
            batch = [p for p in batch if not p.future.done()]  # drop cancelled callers
            if batch:
                await self._answer(batch)

    async def _answer(self, batch: list[_Pending]) -> None:
        try:
            if self._llm is None:
                self._llm = await asyncio.to_thread(self._load)
        except ModelError as err:
            self._load_error = err
            self._fail([*batch, *self._pending], err)
            self._pending = []
            return
        self.batch_sizes.append(len(batch))
        self._in_flight = batch
        try:
            await self._generate_isolating(batch)
        finally:
            self._in_flight = []

    async def _generate_isolating(self, batch: list[_Pending]) -> None:
        """Run a batch; if vLLM rejects it, split it to find and fail only the bad requests.

        vLLM validates every prompt before generating and refuses the whole batch when one
        is invalid (e.g. longer than max_model_len); halving isolates it in a few calls.
        """
        try:
            outputs = await asyncio.to_thread(self._generate, [p.request for p in batch])
        except (ValueError, TypeError) as err:
            if len(batch) == 1:
                self._fail(batch, ModelError(f"{self.spec}: vLLM refused the request: {err}"))
                return
            half = len(batch) // 2
            await self._generate_isolating(batch[:half])
            await self._generate_isolating(batch[half:])
            return
        except Exception as err:  # CUDA errors and the like: the engine itself is in trouble
            self._fail(batch, ModelError(f"{self.spec}: vLLM failed: {err!r}"))
            return
        for pending, output in zip(batch, outputs, strict=True):
            if pending.future.done():
                continue
            try:
                pending.future.set_result(_response(pending.request, output))
            except (AttributeError, IndexError, TypeError) as err:
                self._fail([pending], ModelError(f"{self.spec}: unexpected vLLM output: {err!r}"))

    @staticmethod
    def _fail(batch: list[_Pending], err: ModelError) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(_copy(err))

    # -- the engine (runs in worker threads) -------------------------------------------

    def _load(self) -> Any:
        key = json.dumps([self.name, self.engine_kwargs], sort_keys=True, default=repr)
        with _ENGINES_LOCK:
            if key not in _ENGINES:
                _ENGINES[key] = _create_engine(self.name, self.engine_kwargs)
            return _ENGINES[key]

    def _generate(self, requests: list[ChatRequest]) -> list[Any]:
        conversations = [list(r.messages) for r in requests]
        params = [_sampling_params(r) for r in requests]
        with _GENERATE_LOCK:
            outputs: list[Any] = self._llm.chat(
                conversations, sampling_params=params, use_tqdm=False
            )
        return list(outputs)


def _copy(err: ModelError) -> ModelError:
    """A fresh exception per caller: raising one object in many tasks grows its traceback."""
    copy = type(err)(str(err), retryable=err.retryable)
    copy.__cause__ = err.__cause__
    return copy


def _create_engine(name: str, engine_kwargs: dict[str, Any]) -> Any:
    try:
        import vllm
    except ImportError as err:
        raise ModelError(f"vllm:{name}: vLLM is not installed; {INSTALL_HINT}") from err
    try:
        import torch

        has_gpu = bool(torch.cuda.is_available())
    except ImportError:
        has_gpu = False
    if not has_gpu:
        raise ModelError(
            f"vllm:{name}: vLLM needs an NVIDIA GPU with CUDA and none is visible here "
            "(torch.cuda.is_available() is False). Run on a GPU machine, or serve the model "
            "elsewhere and use openai:MODEL@URL, or use the embedded model."
        )
    try:
        return vllm.LLM(model=name, **engine_kwargs)
    except Exception as err:
        raise ModelError(
            f"vllm:{name}: could not start vLLM ({err!r}); check the model name or path and "
            "the engine settings (gpu_memory_utilization, max_model_len)"
        ) from err


def _sampling_params(request: ChatRequest) -> Any:
    from vllm import SamplingParams

    kwargs: dict[str, Any] = {
        "temperature": effective_temperature(VLLMBatchModel, request),
        "max_tokens": request.max_tokens,
    }
    if request.seed is not None:
        kwargs["seed"] = (request.seed + 7919 * request.sample) % (2**31 - 1)
    if request.json_schema is not None:
        kwargs.update(_structured_kwargs(request.json_schema))
    return SamplingParams(**kwargs)


def _structured_kwargs(schema: dict[str, Any]) -> dict[str, Any]:
    """SamplingParams arguments that constrain the output to `schema`, for any vLLM version.

    vLLM 0.10.2 renamed guided decoding to structured outputs; older versions only have
    `GuidedDecodingParams`, newer ones only `StructuredOutputsParams`.
    """
    try:
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}
    return {"structured_outputs": StructuredOutputsParams(json=schema)}


def _response(request: ChatRequest, output: Any) -> ChatResponse:
    completion = output.outputs[0]
    return ChatResponse(
        text=completion.text,
        prompt_tokens=len(output.prompt_token_ids or []),
        completion_tokens=len(completion.token_ids or []),
        structured=request.json_schema is not None,
        finish_reason=str(completion.finish_reason or ""),
    )
