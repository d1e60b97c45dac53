"""Model calls on a Ray cluster: `skillmix run --executor ray [--ray-address ADDRESS]`.

The `skillmix` process (Ray's driver) runs the job as it does locally: the units, the
`CallCache` (store, budget, identical requests sharing one call), progress and pause.
Only `complete()` goes to Ray (see `runtime.executor`). Each model gets a pool of actors,
each holding its own client built from the model's spec and the driver's settings (an
HTTP client, or a vLLM engine on its own GPUs) and serving many calls at once.

- **Limits stay per endpoint across the cluster.** Every call passes the driver's limiter
  before it leaves: for an HTTP model the local model's own `AdaptiveLimiter`, which also
  halves on the rate limits the actors meet. An in-process model (vLLM, embedded) is one
  engine per actor, so its limit counts once per actor.
- **A lost actor loses only its calls in flight.** They are sent again on another live
  actor and a replacement starts. Nothing answered is sent again: the driver stores each
  answer as it lands, addressed by the request's content.
- **A cluster that cannot serve a model stops the job resumably.** When every actor of a
  model is gone and none can be restarted (or none can start), a `ClusterError` names the
  cluster; like any model failure it stops the job with its answers saved, and running
  the same command again resumes it.

Placement. HTTP actors reserve no CPU (they wait on the network) and are spread over the
nodes; `actors` per model (2 by default). vLLM: one engine per actor with
`num_gpus = tensor_parallel_size` (from the model's `engine_args`, default 1), by default
as many actors as the cluster has GPUs for (data parallel); with tensor parallelism the
engine runs its shards as processes inside its actor (vLLM's "mp" backend), on the GPUs
Ray gave the actor. Embedded: one CPU per actor.

Every node needs skillmix installed (the same version as the driver). Actors get the
driver's provider variables (`provider_environment`) through Ray's `runtime_env`, and
each checks that it builds a model of the driver's identity (the same endpoint), so a
run's cache keys are the same on Ray and locally.

Ray is imported only when this executor starts: `pip install 'skillmix[ray]'`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import pickle
import re
import socket
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from skillmix.errors import InputError, ModelError, SkillmixError
from skillmix.models import (
    ENDPOINT_PROVIDERS,
    ChatRequest,
    ChatResponse,
    Model,
    Settings,
    parse_spec,
    resolve_model,
)
from skillmix.models.limiter import AdaptiveLimiter

DEFAULT_ACTORS = 2  # per model, unless vLLM sizes it by GPUs
# Calls one actor serves at once: its model's own limit still applies inside.
ACTOR_CONCURRENCY = 1000
RESTARTS_PER_ACTOR = 3  # replacements a pool may start, per actor it began with
START_TIMEOUT_S = 600.0  # for an actor to be scheduled and build its model
CLOSE_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0  # for the check that something listens at --ray-address
DEFAULT_CLIENT_PORT = 10001  # Ray Client's port, for ray://HOST without one
INSTALL_HINT = "install Ray: pip install 'skillmix[ray]'"
CLUSTER_HINT = (
    "start a cluster with `ray start --head` and pass --ray-address HOST:PORT (or auto on "
    "one of its nodes); without --ray-address a local Ray starts for this command. A "
    "cluster with token authentication also needs RAY_AUTH_MODE=token here"
)
RESUME_HINT = (
    "answers so far are saved: check the cluster (`ray status`), then run the same command "
    "again to resume"
)
# Driver variables that providers read: sent to the actors so that they build the same
# clients (keys, base URLs) as the driver, wherever they run.
_PROVIDER_VARIABLE = re.compile(r"^(SKILLMIX_|OPENAI_)|(_API_KEY|_API_BASE|_BASE_URL)$|^HF_TOKEN$")


class ClusterError(ModelError):
    """The Ray cluster cannot serve a model: unreachable, too small, or every actor lost."""


# --- planning (pure) -------------------------------------------------------------------------


@dataclass(frozen=True)
class ActorPlan:
    """How many actors a model gets and the Ray options of each."""

    count: int
    options: dict[str, Any]
    # Whether each actor runs its own engine (vLLM, embedded): its limit counts per actor.
    in_process: bool = False
    tensor_parallel: int = 1


def plan_actors(
    spec: str, engine_args: Mapping[str, Any], gpus: float, requested: int | None, cluster: str
) -> ActorPlan:
    """The actors for model `spec` on a cluster with `gpus` GPUs (`requested`: --ray-actors).

    vLLM: one engine per actor on `tensor_parallel_size` GPUs, as many as fit unless
    `requested`; a `ClusterError` when not even one fits or `requested` do not.
    """
    provider = parse_spec(spec).provider
    if provider == "vllm":
        tensor_parallel = int(engine_args.get("tensor_parallel_size") or 1)
        fit = int(gpus) // tensor_parallel
        count = requested or fit
        if fit < 1 or count > fit:
            asked = f"{count} engine(s)" if requested else "an engine"
            raise ClusterError(
                f"{spec}: {asked} of {tensor_parallel} GPU(s) each (tensor_parallel_size "
                f"{tensor_parallel}) do not fit on the Ray cluster at {cluster}, which has "
                f"{gpus:g} GPU(s)",
                hint="add GPU nodes to the cluster, lower --ray-actors, or set a smaller "
                "tensor_parallel_size under engine_args in skillmix.toml",
            )
        options = {"num_gpus": tensor_parallel, "num_cpus": 1}
        return ActorPlan(count, options, in_process=True, tensor_parallel=tensor_parallel)
    if provider == "embedded":
        return ActorPlan(requested or DEFAULT_ACTORS, {"num_cpus": 1}, in_process=True)
    return ActorPlan(requested or DEFAULT_ACTORS, {"num_cpus": 0, "scheduling_strategy": "SPREAD"})


def provider_environment(environ: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """The driver's variables an actor needs to build the same clients: base URLs and keys
    of the providers (OPENAI_*, SKILLMIX_*, *_API_KEY, *_API_BASE, *_BASE_URL, HF_TOKEN)
    and every `api_key_env` named in the settings."""
    named = {m.api_key_env for m in settings.models.values() if m.api_key_env}
    return {
        name: value
        for name, value in environ.items()
        if name in named or _PROVIDER_VARIABLE.search(name)
    }


def actor_spec(local: Model) -> str:
    """The spec an actor builds `local` from: with its endpoint, wherever the driver found
    it (the spec, skillmix.toml, the environment), so that both have the same identity."""
    base_url = getattr(local, "base_url", None)
    if base_url and local.provider in ENDPOINT_PROVIDERS:
        return f"{local.spec}@{base_url}"
    return local.spec


def check_actor_count(actors: int | None) -> int | None:
    """`actors` (--ray-actors) if it is None or at least 1, else an `InputError`."""
    if actors is not None and actors < 1:
        raise InputError(f"--ray-actors must be at least 1 (got {actors})")
    return actors


# --- the actor (runs on the cluster) ---------------------------------------------------------


@dataclass
class Reply:
    """What an actor returns for one call: the answer or the model's error, and its client's
    running counts (retries by cause, structured-output dialects still in use)."""

    response: ChatResponse | None
    error: SkillmixError | None
    retry_causes: dict[str, int]
    structured_modes: list[str] | None


class ModelActor:
    """One model client on a Ray worker: an HTTP client, or a vLLM engine on its GPUs.

    Ray runs it as an async actor (`ray.remote(ModelActor)`), so one actor serves many
    calls at once on its event loop.
    """

    def __init__(self, spec: str, settings: Settings, tensor_parallel: int = 1):
        self.model: Model | None = None
        self.error: SkillmixError | None = None
        try:
            self.model = resolve_model(spec, settings)
        except SkillmixError as err:
            self.error = portable(err)
            return
        engine_kwargs = getattr(self.model, "engine_kwargs", None)
        if tensor_parallel > 1 and isinstance(engine_kwargs, dict):
            # The actor holds its GPUs already: vLLM's own Ray backend would ask the
            # cluster for them again; its multiprocessing backend uses the actor's.
            engine_kwargs.setdefault("distributed_executor_backend", "mp")

    async def ready(self) -> dict[str, Any]:
        """Where this actor runs and the identity of its model (or why it has none)."""
        if self.model is None:
            return {"error": self.error}
        return {"identity": self.model.identity, "pid": os.getpid(), "host": socket.gethostname()}

    async def complete(self, request: ChatRequest) -> Reply:
        if self.model is None:
            return Reply(None, self.error, {}, None)
        try:
            response = await self.model.complete(request)
        except SkillmixError as err:
            return self._reply(None, portable(err))
        return self._reply(response, None)

    def _reply(self, response: ChatResponse | None, error: SkillmixError | None) -> Reply:
        causes = getattr(self.model, "retry_causes", None)
        modes = getattr(self.model, "structured_modes", None)
        return Reply(
            response,
            error,
            dict(causes) if causes else {},
            list(modes) if isinstance(modes, list) else None,
        )

    async def aclose(self) -> None:
        if self.model is not None:
            await self.model.aclose()


def portable(err: SkillmixError) -> SkillmixError:
    """`err` if it survives pickling (to travel back to the driver), else a `ModelError`
    with its message, hint and retryability."""
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:
        return ModelError(str(err), retryable=bool(getattr(err, "retryable", False)), hint=err.hint)
    return err


# --- the driver side -------------------------------------------------------------------------


@dataclass(eq=False)
class _Actor:
    handle: Any
    started: Any  # the ObjectRef of its ready() call
    replacement: bool = False
    up: bool = False
    pid: int = 0
    host: str = ""
    load: int = 0  # calls in flight on it
    served: int = 0  # calls it answered
    watch: asyncio.Task[None] | None = None  # waits for it to start
    retries_seen: Counter[str] = field(default_factory=Counter)

    def where(self) -> str:
        return f"pid {self.pid} on {self.host}" if self.up else "not started yet"


class ActorPool:
    """The actors serving one model: calls go to the least loaded live actor; a lost actor's
    calls go to another, and a replacement starts (up to RESTARTS_PER_ACTOR each)."""

    def __init__(
        self,
        spec: str,
        identity: str,
        start_actor: Callable[[], tuple[Any, Any]],
        plan: ActorPlan,
        cluster: str,
        on_event: Callable[[str], None],
    ):
        self.spec = spec
        self.identity = identity
        self.plan = plan
        self.cluster = cluster
        self.on_event = on_event
        self._start_actor = start_actor
        self.max_restarts = RESTARTS_PER_ACTOR * plan.count
        self.restarts = 0
        self.lost = 0
        self.served: list[int] = []  # calls answered by each actor lost so far
        self._warming = True  # until each first actor has started (or failed to)
        self.failure: SkillmixError | None = None
        self.actors = [self._start() for _ in range(plan.count)]

    def _start(self, replacement: bool = False) -> _Actor:
        handle, started = self._start_actor()
        return _Actor(handle, started, replacement)

    async def call(self, request: ChatRequest) -> tuple[Reply, Counter[str]]:
        """The reply of a live actor to `request`, and the retries its client made since
        the last reply (so that the driver can count them)."""
        from ray.exceptions import RayActorError

        while True:
            actor = await self._available()
            actor.load += 1
            try:
                reply: Reply = await _wait(actor.handle.complete.remote(request))
            except RayActorError as err:
                self._lose(actor, err)
                continue
            finally:
                actor.load -= 1
            actor.served += 1
            seen = actor.retries_seen | Counter(reply.retry_causes)  # replies may overtake
            new, actor.retries_seen = seen - actor.retries_seen, seen
            return reply, new

    async def _available(self) -> _Actor:
        """The least loaded actor that is up, waiting for one to start if none is."""
        while True:
            if self.failure is not None:
                raise copy.copy(self.failure)  # a fresh one per caller: no shared traceback
            up = [a for a in self.actors if a.up]
            starting = [self._watch(a) for a in self.actors if not a.up]
            if up and not (self._warming and starting):
                return min(up, key=lambda a: (a.load, a.served))
            if not starting:
                self._fail(f"{self.spec}: no Ray actor is left on the cluster at {self.cluster}")
                continue
            # The first calls wait for every first actor, so that all share the work.
            first = asyncio.ALL_COMPLETED if self._warming else asyncio.FIRST_COMPLETED
            done, _ = await asyncio.wait(starting, return_when=first)
            self._warming = False
            for task in done:
                error = task.exception()
                if error is not None:
                    raise error

    def _watch(self, actor: _Actor) -> asyncio.Task[None]:
        """The task (on this loop) that marks `actor` up, or lost, once it has started."""
        loop = asyncio.get_running_loop()
        if actor.watch is None or actor.watch.get_loop() is not loop:
            actor.watch = loop.create_task(self._started(actor))
        return actor.watch

    async def _started(self, actor: _Actor) -> None:
        from ray.exceptions import RayError

        try:
            info = await asyncio.wait_for(_wait(actor.started), START_TIMEOUT_S)
        except (RayError, TimeoutError) as err:
            if isinstance(err, TimeoutError):
                err = TimeoutError(f"not scheduled within {START_TIMEOUT_S:g} s")
            self._lose(actor, err)
            return
        if actor not in self.actors:
            return  # lost meanwhile
        if info.get("error") is not None:
            self.failure = info["error"]  # the model cannot be built there: no use retrying
            self.on_event(f"ray: {self.spec} cannot be built on the cluster: {self.failure}")
            return
        if info["identity"] != self.identity:
            self._fail(
                f"{self.spec}: an actor on the Ray cluster at {self.cluster} builds it as "
                f"{info['identity']!r}, this process as {self.identity!r}; their cache keys "
                "would differ",
                hint="put the base URL in the model spec (openai:MODEL@URL) or in "
                "skillmix.toml, so that it does not depend on a machine's environment",
            )
            return
        actor.up, actor.pid, actor.host = True, info["pid"], info["host"]

    def _lose(self, actor: _Actor, err: BaseException) -> None:
        if actor not in self.actors:
            return  # its other calls in flight failed too; handled once
        self.actors.remove(actor)
        if actor.served:
            self.served.append(actor.served)
        _kill(actor.handle)
        cause = _first_line(err)
        if not actor.up and not actor.replacement:
            # One of the first actors could not start: the others may; none is replaced.
            self.on_event(f"ray: an actor of {self.spec} could not start: {cause}")
            if not self.actors:
                self._fail(
                    f"{self.spec}: no Ray actor could start on the cluster at "
                    f"{self.cluster}: {cause}"
                )
            return
        self.lost += 1
        message = (
            f"ray: lost an actor of {self.spec} ({actor.where()}: {cause}); "
            f"{actor.load} call(s) in flight go to another actor"
        )
        if self.restarts < self.max_restarts:
            self.restarts += 1
            self.actors.append(self._start(replacement=True))
            self.on_event(f"{message}; started a replacement")
            return
        self.on_event(f"{message}; no more replacements ({self.restarts} started)")
        if not self.actors:
            self._fail(
                f"{self.spec}: every Ray actor serving it on the cluster at {self.cluster} is "
                f"gone ({self.lost} lost, {self.restarts} replacement(s) started); the last: "
                f"{cause}"
            )

    def _fail(self, message: str, hint: str = RESUME_HINT) -> None:
        self.failure = ClusterError(message, hint=hint)

    def summary(self) -> str:
        """`ray: openai:m: 240 call(s) on 3 actor(s) (90, 70, 80), 1 lost, 1 replaced`."""
        served = [*self.served, *(a.served for a in self.actors)]
        lost = f", {self.lost} lost, {self.restarts} replaced" if self.lost else ""
        return (
            f"ray: {self.spec}: {sum(served)} call(s) on {len(served)} actor(s) "
            f"({', '.join(map(str, served))}){lost}"
        )


class RemoteModel:
    """A model whose calls run on a pool of Ray actors, with the local model's provider,
    name, spec and identity (so the same cache keys) and, for an HTTP model, its limiter.

    The local model stays the driver's record of the client: the retries the actors make
    are added to its `retry_causes`, and a structured-output dialect the backend refused
    is dropped from its `structured_modes`, as a local run would.
    """

    def __init__(self, local: Model, pool: ActorPool, limiter: AdaptiveLimiter):
        self.local = local
        self.pool = pool
        self.limiter = limiter
        self.provider = local.provider
        self.name = local.name
        self.max_concurrency = local.max_concurrency

    @property
    def spec(self) -> str:
        return self.local.spec

    @property
    def identity(self) -> str:
        return self.local.identity

    @property
    def supports_structured(self) -> bool:
        return self.local.supports_structured

    async def complete(self, request: ChatRequest) -> ChatResponse:
        async with self.limiter:
            reply, retries = await self.pool.call(request)
        self._mirror(reply, retries)
        if reply.error is not None:
            raise reply.error
        assert reply.response is not None
        self.limiter.on_success()
        return reply.response

    def _mirror(self, reply: Reply, retries: Counter[str]) -> None:
        causes = getattr(self.local, "retry_causes", None)
        if retries and isinstance(causes, Counter):
            causes.update(retries)
        for _ in range(retries.get("429", 0)):
            self.limiter.on_rate_limited(None)
        modes = getattr(self.local, "structured_modes", None)
        if reply.structured_modes is not None and isinstance(modes, list):
            modes[:] = [m for m in modes if m in reply.structured_modes]

    async def aclose(self) -> None:
        """Nothing to close here: the executor stops the actors when it shuts down."""


class RayExecutor:
    """Runs model calls on Ray actors (see the module's docstring).

    `address`: None starts a local Ray for this executor (or attaches where RAY_ADDRESS
    points), "auto" attaches to the cluster this machine is a node of, "HOST:PORT" to a
    cluster's head, "ray://HOST:PORT" through Ray Client. `actors`: actors per model
    (default 2 per HTTP model; one per GPU, or per `tensor_parallel_size` GPUs, for
    vLLM). `on_event` hears of lost actors and, at shutdown, what each pool served.

        with RayExecutor("auto") as ray_executor, executing_on(ray_executor):
            ...
    """

    def __init__(
        self,
        address: str | None = None,
        actors: int | None = None,
        *,
        on_event: Callable[[str], None] | None = None,
    ):
        self.address = address or None
        self.actors = check_actor_count(actors)
        self.on_event = on_event or (lambda message: None)
        self.cluster = address or "a local Ray"
        self._connected = False  # by this executor (so it disconnects too)
        self._actor_class: Any = None
        self._pools: dict[str, ActorPool] = {}
        self._models: dict[int, tuple[Model, RemoteModel]] = {}

    # -- connecting ---------------------------------------------------------------------

    def start(self) -> RayExecutor:
        """Connect to the cluster (or start a local Ray); a `ClusterError` if it is not there."""
        ray = _import_ray()
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if not ray.is_initialized():
            target = self.address or os.environ.get("RAY_ADDRESS") or None
            if target:
                check_reachable(target)
            options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
            if target is None:
                options["include_dashboard"] = False
            try:
                ray.init(address=self.address, **options)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise ClusterError(
                    f"cannot use the Ray cluster at {target or 'a local Ray'}: {_first_line(err)}",
                    hint=CLUSTER_HINT,
                ) from err
            self._connected = True
        with contextlib.suppress(Exception):
            self.cluster = self.address or ray.get_runtime_context().gcs_address
        self._actor_class = ray.remote(ModelActor)
        return self

    def describe(self) -> str:
        """`Ray cluster at 10.0.0.1:6379: 2 node(s), 16 CPU(s), 4 GPU(s)`."""
        ray = _import_ray()
        resources = ray.cluster_resources()
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        return (
            f"Ray cluster at {self.cluster}: {nodes} node(s), {resources.get('CPU', 0):g} "
            f"CPU(s), {resources.get('GPU', 0):g} GPU(s)"
        )

    # -- the Executor protocol ----------------------------------------------------------

    def model(self, local: Model, settings: Settings) -> Model:
        """The model that answers `local`'s calls on the cluster (one pool per identity)."""
        found = self._models.get(id(local))
        if found is not None:
            return found[1]
        if self._actor_class is None:
            raise ClusterError("the Ray executor was not started", hint="call start() first")
        pool = self._pools.get(local.identity)
        if pool is None:
            pool = self._pools[local.identity] = self._pool(local, settings)
        limiter = getattr(local, "limiter", None)
        if not isinstance(limiter, AdaptiveLimiter):
            width = local.max_concurrency * (pool.plan.count if pool.plan.in_process else 1)
            limiter = AdaptiveLimiter(width)
        remote = RemoteModel(local, pool, limiter)
        self._models[id(local)] = (local, remote)
        return remote

    def _pool(self, local: Model, settings: Settings) -> ActorPool:
        ray = _import_ray()
        engine_args = settings.for_model(local.spec).engine_args
        gpus = float(ray.cluster_resources().get("GPU", 0))
        plan = plan_actors(local.spec, engine_args, gpus, self.actors, self.cluster)
        options: dict[str, Any] = {
            **plan.options,
            "max_concurrency": max(ACTOR_CONCURRENCY, local.max_concurrency),
        }
        environment = provider_environment(os.environ, settings)
        if environment:
            options["runtime_env"] = {"env_vars": environment}
        actor_class = self._actor_class.options(**options)
        spec = actor_spec(local)

        def start_actor() -> tuple[Any, Any]:
            handle = actor_class.remote(spec, settings, plan.tensor_parallel)
            return handle, handle.ready.remote()

        return ActorPool(local.spec, local.identity, start_actor, plan, self.cluster, self.on_event)

    # -- stopping -----------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop every actor (closing its clients first) and disconnect if start() connected."""
        if self._actor_class is None:
            return
        ray = _import_ray()
        pools = list(self._pools.values())
        self._pools.clear()
        self._models.clear()
        for pool in pools:
            if pool.lost or pool.served or any(a.served for a in pool.actors):
                self.on_event(pool.summary())
        handles = [actor.handle for pool in pools for actor in pool.actors]
        if handles:
            with contextlib.suppress(Exception):
                ray.get([h.aclose.remote() for h in handles], timeout=CLOSE_TIMEOUT_S)
        for handle in handles:
            _kill(handle)
        if self._connected:
            ray.shutdown()
            self._connected = False
        self._actor_class = None

    def __enter__(self) -> RayExecutor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


# --- helpers ---------------------------------------------------------------------------------


def check_reachable(address: str) -> None:
    """A `ClusterError` unless something accepts connections at `address` ("auto" and
    other forms without a host and port pass): Ray itself waits for a missing cluster
    without end."""
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep:
        if not address.startswith("ray://"):
            return
        host, port = target, str(DEFAULT_CLIENT_PORT)
    if not port.isdigit() or not host:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as err:
        raise ClusterError(
            f"no Ray cluster answers at {address} ({err.strerror or err})", hint=CLUSTER_HINT
        ) from None


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise InputError(
            f"--executor ray needs Ray, which is not installed ({err})", hint=INSTALL_HINT
        ) from None
    return ray


async def _wait(ref: Any) -> Any:
    """The value of a Ray ObjectRef (also Ray Client's), awaited on any asyncio loop."""
    return await asyncio.wrap_future(ref.future())


def _kill(handle: Any) -> None:
    with contextlib.suppress(Exception):
        _import_ray().kill(handle, no_restart=True)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
