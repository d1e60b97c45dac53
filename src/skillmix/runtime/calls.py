"""Every model call goes through here: the shared response cache, the ledger and the budget.

A request is addressed by its content (model identity, messages, decoding settings, seed,
sample index). If the store already holds the answer, from this run or any other, it is
reused; otherwise it is sent once (identical requests in flight share one call), stored at
once, and recorded in the run's ledger with its role and whether it was paid for. The first
answer stored for a request is the one every run uses, even when two processes asked at
once. Once the store stops taking writes (a full disk), nothing new is sent: the calls in
flight land and the store's failure is raised.

With `max_cost`, the budget is a cap, checked before each request: a request is sent only
if what is already spent, plus the worst case of every request in flight, plus its own
worst case fits under the cap. The worst case is the prompt's tokens (a generous estimate)
at the input price plus `max_tokens` at the output price; it is reserved while the request
is in flight and replaced by the real cost when the answer lands. A request that does not
fit yet waits for those in flight to settle; one that cannot fit even then is refused
(`BudgetExhausted`) and the job pauses. So a run ends at or under its cap, unless a server
bills more prompt tokens than the estimate allows (about one token per 3 bytes of text).
`stats.cost` is the one figure for what was spent.

In estimate mode nothing is sent or written: a miss returns a synthetic record carrying
the tokens the call is expected to use, so `skillmix estimate` walks the same protocol
as `skillmix run` and only counts what a run would really send.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from skillmix.errors import BudgetError
from skillmix.models import ChatRequest, ChatResponse, Model, ModelError
from skillmix.models.base import Message
from skillmix.models.settings import Price, Settings
from skillmix.runtime.budget import check_max_cost
from skillmix.runtime.executor import answering
from skillmix.store import CallRecord, Store
from skillmix.store.text import escape_text, has_lone_surrogates, repair_text


class BudgetExhausted(ModelError, BudgetError):
    """--max-cost was reached: no new request is sent; the run resumes later."""

    def __init__(self, message: str, *, worst_case: float):
        super().__init__(message)
        self.worst_case = worst_case


# A generous prompt-token estimate for the worst case: English runs near 4 characters a
# token with current tokenizers, other scripts near one character (3 UTF-8 bytes) a token;
# every message also costs a few tokens of chat formatting.
BYTES_PER_TOKEN_BOUND = 3
TOKENS_PER_MESSAGE = 8
# An image costs a vision model up to a few thousand tokens (OpenAI's high detail at 2048 px:
# 765 for 1024 x 1024, up to about 1,100); 2,000 is a safe bound for the images we send.
TOKENS_PER_IMAGE_BOUND = 2000


def prompt_tokens_bound(messages: Sequence[Message], images: int = 0) -> int:
    """A deliberately high estimate of the prompt tokens of `messages` (and `images` images
    shown with them), for the budget."""
    size = sum(len(m["content"].encode("utf-8", "surrogatepass")) for m in messages)
    tokens = -(-size // BYTES_PER_TOKEN_BOUND) + TOKENS_PER_MESSAGE * len(messages)
    return tokens + TOKENS_PER_IMAGE_BOUND * images


def usd(amount: float) -> str:
    """Money as every budget message and usage line shows it: `$0.0371`."""
    return f"${amount:.4f}"


@dataclass
class RoleUsage:
    sent: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0  # sent calls whose model has no known price


@dataclass
class CallStats:
    roles: dict[str, RoleUsage] = field(default_factory=dict)

    def role(self, role: str) -> RoleUsage:
        return self.roles.setdefault(role, RoleUsage())

    @property
    def sent(self) -> int:
        return sum(r.sent for r in self.roles.values())

    @property
    def cached(self) -> int:
        return sum(r.cached for r in self.roles.values())

    @property
    def cost(self) -> float:
        return sum(r.cost for r in self.roles.values())

    @property
    def by_role(self) -> dict[str, int]:
        return {name: r.sent for name, r in self.roles.items() if r.sent}


class CallCache:
    def __init__(
        self,
        store: Store,
        *,
        run_id: str | None = None,
        settings: Settings | None = None,
        max_cost: float | None = None,
        estimate: bool = False,
    ):
        self.store = store
        self.run_id = run_id
        self.settings = settings or Settings()
        self.max_cost = check_max_cost(max_cost)
        self.estimate = estimate
        self.stats = CallStats()
        self.retries: Counter[str] = Counter()
        self._inflight: dict[str, asyncio.Future[CallRecord]] = {}
        self._history: dict[tuple[str, str], tuple[float, float]] = {}
        # The budget: the worst case of each request in flight, by request key, and the
        # worst case of the first request it refused.
        self._reserved: dict[str, float] = {}
        self._settled: asyncio.Event | None = None
        self.refused: float | None = None
        self._prices: dict[tuple[str, str], Price | None] = {}

    def check_prices(self, models: list[Model]) -> None:
        """With a budget, every model must have a price: fail before anything is sent."""
        if self.max_cost is None:
            return
        for m in models:
            if self.settings.price(m.provider, m.name) is None:
                raise ModelError(
                    f"--max-cost needs a price for {m.spec}: add it under [pricing] in "
                    "skillmix.toml or pass --pricing FILE"
                )

    async def call(self, model: Model, role: str, request: ChatRequest) -> CallRecord:
        if self.store.failed and not self.estimate:
            # The store stopped taking writes (a full disk): send nothing new, let the calls
            # in flight land (their answers are paid for and go to the side file), then stop.
            await self._wait_inflight()
            self.store.raise_if_failed()
        key = request.key(model.identity)
        usage = self.stats.role(role)
        cached = self.store.get_call(key)
        if cached is not None:
            usage.cached += 1
            self._ledger(cached, role, sent=False)
            return cached
        if self.estimate:
            return self._synthetic(model, role, request, key)
        if key in self._inflight:  # the same request is already on its way
            return await asyncio.shield(self._inflight[key])
        if self.max_cost is not None and not await self._reserve(
            key, self.worst_case(model, request)
        ):  # another caller sent this very request while this one waited
            return await asyncio.shield(self._inflight[key])
        future: asyncio.Future[CallRecord] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            record = await self._send(model, role, request, key)
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # mark retrieved: no "never retrieved" warning
            raise
        finally:
            self._inflight.pop(key, None)
            self._release(key)
        future.set_result(record)
        return record

    def _price(self, model: Model) -> Price | None:
        # Looked up for every request: once per model instead.
        key = (model.provider, model.name)
        if key not in self._prices:
            self._prices[key] = self.settings.price(model.provider, model.name)
        return self._prices[key]

    # --- the budget ---------------------------------------------------------------------

    def worst_case(self, model: Model, request: ChatRequest) -> float:
        """The most `request` can cost: its prompt (estimated high) and every token it may
        generate, at the model's price (0 for a model without one)."""
        price = self._price(model)
        if price is None:
            return 0.0
        bound = prompt_tokens_bound(request.messages, len(request.images))
        return price.cost(bound, request.max_tokens)

    @property
    def reserved(self) -> float:
        """The worst case of the requests in flight, not yet spent."""
        return sum(self._reserved.values())

    async def _reserve(self, key: str, worst: float) -> bool:
        """Hold `worst` of the budget for a request, waiting while requests in flight may
        still free some; `BudgetExhausted` when it cannot fit even once they have landed.

        False (nothing held) when the same request went out while this one waited.
        """
        assert self.max_cost is not None
        while True:
            if key in self._inflight:
                return False
            spent = self.stats.cost
            if spent + worst > self.max_cost:
                if self.refused is None:
                    self.refused = worst
                raise BudgetExhausted(
                    f"budget reached: {usd(spent)} spent of --max-cost {usd(self.max_cost)}, "
                    f"and the next request could cost up to {usd(worst)}",
                    worst_case=worst,
                )
            if spent + self.reserved + worst <= self.max_cost:
                self._reserved[key] = worst
                return True
            if self._settled is None:
                self._settled = asyncio.Event()
            await self._settled.wait()

    def _release(self, key: str) -> None:
        """A request landed (its real cost is in `stats`) or failed: free its reservation."""
        if self._reserved.pop(key, None) is not None and self._settled is not None:
            self._settled.set()  # wake every waiter; each checks again
            self._settled = None

    def budget_summary(self) -> str:
        """Why the budget stopped the job, with the final spend (the usage line's figure).

        Call it once the requests in flight have landed: their cost is part of the figure.
        """
        assert self.max_cost is not None
        text = f"budget reached: {usd(self.stats.cost)} spent of --max-cost {usd(self.max_cost)}"
        if self.refused is not None:
            text += f"; the next request could cost up to {usd(self.refused)}"
        return text

    async def _wait_inflight(self) -> None:
        waiting = [f for f in self._inflight.values() if not f.done()]
        if waiting:
            await asyncio.wait(waiting)

    async def _send(self, model: Model, role: str, request: ChatRequest, key: str) -> CallRecord:
        started = time.perf_counter()
        # Here (or where an executor such as Ray sends it); the rest stays in this process.
        response: ChatResponse = await answering(model, self.settings).complete(request)
        # A lone surrogate cannot be stored: keep a repaired text, and the reply as sent.
        unstorable = has_lone_surrogates(response.text)  # checked once, for both
        raw = escape_text(response.text) if unstorable else None
        record = CallRecord(
            key=key,
            provider=model.provider,
            model=model.name,
            role=role,
            messages=list(request.messages),
            settings=request.settings(),
            response=repair_text(response.text) if unstorable else response.text,
            prompt_tokens=response.prompt_tokens,
            completion_tokens=response.completion_tokens,
            structured=_mode(response.structured),
            finish_reason=response.finish_reason,
            latency_s=time.perf_counter() - started,
            messages_json=request.messages_json,
            settings_json=request.settings_json,
            raw_response=raw,
        )
        self.store.put_call(record)
        self._ledger(record, role, sent=True)
        usage = self.stats.role(role)
        usage.sent += 1
        usage.prompt_tokens += response.prompt_tokens
        usage.completion_tokens += response.completion_tokens
        price = self._price(model)
        if price is None:
            usage.unpriced += 1
        else:
            usage.cost += price.cost(response.prompt_tokens, response.completion_tokens)
        await self.store.committed()
        # Another process may have stored an answer to this request first: that one counts.
        return self.store.answer_for(key, record)

    def _ledger(self, call: CallRecord, role: str, *, sent: bool) -> None:
        if self.run_id is not None and not self.estimate:
            self.store.record_use(self.run_id, call.key, role, sent, call)

    # --- estimate mode ------------------------------------------------------------------

    def _synthetic(self, model: Model, role: str, request: ChatRequest, key: str) -> CallRecord:
        chars_per_token, completion = self._calibration(model, role, request.max_tokens)
        text_chars = sum(len(m["content"]) for m in request.messages)
        prompt_tokens = int(text_chars / chars_per_token) + 4 * len(request.messages)
        completion_tokens = int(completion)
        usage = self.stats.role(role)
        usage.sent += 1
        usage.prompt_tokens += prompt_tokens
        usage.completion_tokens += completion_tokens
        price = self._price(model)
        if price is None:
            usage.unpriced += 1
        else:
            usage.cost += price.cost(prompt_tokens, completion_tokens)
        return CallRecord(
            key=key,
            provider=model.provider,
            model=model.name,
            role=role,
            messages=list(request.messages),
            settings=request.settings(),
            response="",
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            structured="estimate" if request.json_schema is not None else "",
            finish_reason="estimate",
            latency_s=0.0,
            synthetic=True,
        )

    def _calibration(self, model: Model, role: str, max_tokens: int) -> tuple[float, float]:
        """Characters per prompt token and mean completion tokens, from this model's history.

        Without history: 4 characters per token and the full max_tokens (an upper bound).
        """
        cache_key = (model.identity, role)
        if cache_key not in self._history:
            rows = self.store.db.execute(
                "SELECT messages, prompt_tokens, completion_tokens FROM calls "
                "WHERE provider = ? AND model = ? AND role = ? AND prompt_tokens > 0 LIMIT 500",
                (model.provider, model.name, role),
            ).fetchall()
            if len(rows) >= 5:
                chars = sum(sum(len(m["content"]) for m in json.loads(r[0])) for r in rows)
                tokens = sum(r[1] for r in rows)
                self._history[cache_key] = (chars / tokens, sum(r[2] for r in rows) / len(rows))
            else:
                self._history[cache_key] = (4.0, float("nan"))
        chars_per_token, completion = self._history[cache_key]
        if completion != completion:  # nan: no history
            completion = float(max_tokens)
        return chars_per_token, min(completion, float(max_tokens))

    def estimated_without_history(self, model: Model, role: str) -> bool:
        """Whether an estimate counted `model`'s calls in `role` at their full max_tokens
        (no history in the store), so that its completion tokens are an upper bound."""
        history = self._history.get((model.identity, role))
        return history is not None and history[1] != history[1]


def _mode(structured: str | bool) -> str:
    if isinstance(structured, str):
        return structured
    return "constrained" if structured else ""
