"""Verification on a Ray cluster: the verifier's interface, with Lean on many machines.

    from leangym.rewards.distributed import RayVerifier

    with RayVerifier("auto", actors=16) as verifier:        # "local" starts Ray on this machine
        verdicts = verifier.verify_batch(pairs)             # same order, same verdicts as Verifier

Each actor (`VerifierActor`) owns a `Verifier` over its own runtime (embedded or native), so
its Lean stays warm between calls and its cache lives as long as it does. A batch is cut into
shards by the content hash of each item: a repeated proof always goes to the same actor and is
answered from its cache, without Lean. Shards run on every actor at once, at most
`max_inflight` of them outstanding (back-pressure: a huge batch does not queue everything on
the cluster at once), and a progress bar counts finished shards. `RayVerifier.runtime` is a
`LeanRuntime` over the same actors, so what checks Lean sources itself (a tactic search)
runs on the cluster too.

An actor that dies (its node, its process, a kill) or runs past a shard's time limit
(`timeout_per_item` times the shard's size, plus `startup_timeout` while its Lean starts) is
replaced, and its shard runs again on another actor; a shard that fails `retries + 1` times
gets `error` verdicts (kind `lost`, which callers retry), never `rejected`: a lost machine is
not a judgement of a proof. Actors ask Ray for `memory_mb` each, so Ray places no more on a
node than its memory holds (see docs/scale.md). Needs the `[ray]` extra; nothing else in
leangym imports Ray.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from leangym.lean_project.kernel import KernelCheck, KernelVerdict
from leangym.lean_project.runtime import LeanRuntime
from leangym.lean_project.types import InfraError, SourceResult
from leangym.rewards.policy import Policy
from leangym.rewards.problem import Problem
from leangym.rewards.verdict import Verdict
from leangym.rewards.verifier import BaseVerifier, Verifier, get_verifier

RAY_HINT = "pip install 'lean-gym[ray]'"
R = TypeVar("R")


class RayUnavailable(RuntimeError):
    """Ray is not installed."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise RayUnavailable(f"Ray is not installed ({RAY_HINT})") from e
    return ray


class VerifierActor:
    """A `Verifier` and its runtime in a Ray actor (wrapped by `ray.remote` when actors are made)."""

    def __init__(self, runtime: str, policy: Policy, runtime_options: dict[str, Any]):
        from leangym.lean_project import get_runtime

        self.verifier = Verifier(get_runtime(runtime, **runtime_options), policy)
        self.verifier.prewarm()  # Lean starts now, not with the first shard

    def verify(self, pairs: list[tuple[Problem, str | bytes]]) -> list[Verdict]:
        return self.verifier.verify_batch(pairs)

    def check(self, sources: list[str], timeout: float | None, export: bool = False) -> list[SourceResult]:
        return self.verifier.runtime.check(sources, timeout=timeout, export=export)

    def kernel_check(self, items: list[KernelCheck], timeout: float | None) -> list[KernelVerdict]:
        return self.verifier.runtime.kernel_check(items, timeout=timeout)

    def describe(self, modules: list[str]) -> tuple[str, list[bool], int]:
        """The Lean version, whether each module can be imported, and this actor's process id."""
        runtime = self.verifier.runtime
        return runtime.version, [runtime.can_import(m) for m in modules], os.getpid()


@dataclass
class _Shard:
    indices: list[int]
    home: int  # the actor the content hash names
    attempts: int = 0


@dataclass
class RayStats:
    """What the last call did: how it was split over the actors, and what the cache answered."""

    shards: int = 0
    actors_replaced: int = 0
    retried_shards: int = 0
    per_actor: dict[int, int] = field(default_factory=dict)  # items sent to each actor slot


class ActorPool:
    """The actors, and shards of work scheduled on them (hash homes, back-pressure, replace and retry)."""

    def __init__(
        self,
        address: str,
        *,
        actors: int | None,
        runtime: str,
        policy: Policy,
        runtime_options: dict[str, Any],
        memory_mb: int,
        shard_size: int,
        max_inflight: int | None,
        timeout_per_item: float,
        startup_timeout: float,
        retries: int,
        progress: bool,
    ):
        ray = _ray()
        if not ray.is_initialized():
            if address == "local":  # a Ray instance on this machine
                ray.init(include_dashboard=False, log_to_driver=False)
            else:  # "auto" (RAY_ADDRESS or a `ray start` on this machine) or ray://host:port
                ray.init(address=address, log_to_driver=False)
        self.size = actors or max(1, int(ray.cluster_resources().get("CPU", 2)) // 2)
        self.shard_size, self.max_inflight = shard_size, max_inflight or 2 * self.size
        self.timeout_per_item, self.startup_timeout = timeout_per_item, startup_timeout
        self.retries, self.progress = retries, progress
        remote = ray.remote(num_cpus=1, memory=memory_mb * 2**20, max_restarts=0)(VerifierActor)
        self._make = lambda: remote.remote(runtime, policy, runtime_options)
        self.actors: list[Any] = [self._make() for _ in range(self.size)]
        self._warm = [False] * self.size  # has the actor answered anything yet?
        self.stats = RayStats()

    def home(self, key: str) -> int:
        return int(hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8], 16) % self.size

    def run(
        self,
        keys: Sequence[str],
        items: Sequence[Any],
        call: Callable[[Any, list[Any]], Any],
        failed: Callable[[str], R],
    ) -> list[R]:
        """`call(actor, shard_items)` for every shard, results in the order of `items`; `failed(why)` for lost ones."""
        ray = _ray()
        self.stats = RayStats()
        results: list[Any] = [None] * len(items)
        queue = deque(self._shards(keys))
        self.stats.shards = len(queue)
        running: dict[Any, tuple[_Shard, int, float]] = {}  # ObjectRef -> (shard, actor, deadline)
        load = [0] * self.size
        bar = _progress(len(queue), self.progress)
        try:
            while queue or running:
                while queue and len(running) < self.max_inflight:
                    shard = queue.popleft()
                    actor = shard.home if shard.attempts == 0 or self.size == 1 else self._least_busy(shard, load)
                    ref = call(self.actors[actor], [items[i] for i in shard.indices])
                    allowance = 0.0 if self._warm[actor] else self.startup_timeout
                    running[ref] = (
                        shard,
                        actor,
                        time.monotonic() + allowance + self.timeout_per_item * len(shard.indices),
                    )
                    load[actor] += 1
                    self.stats.per_actor[actor] = self.stats.per_actor.get(actor, 0) + len(shard.indices)
                done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in done:
                    shard, actor, _ = running.pop(ref)
                    load[actor] -= 1
                    try:
                        for i, result in zip(shard.indices, ray.get(ref), strict=True):
                            results[i] = result
                        self._warm[actor] = True
                        bar.update(1)
                    except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
                        self._lost(
                            shard, actor, queue, results, failed, f"the Ray actor died ({type(e).__name__})", bar
                        )
                for ref, (shard, actor, deadline) in list(running.items()):
                    if time.monotonic() > deadline:  # stuck (its Lean or its node): the actor goes, the shard again
                        running.pop(ref)
                        load[actor] -= 1
                        self._lost(shard, actor, queue, results, failed, "the shard ran past its time limit", bar)
        finally:
            bar.close()
        return results

    def _shards(self, keys: Sequence[str]) -> list[_Shard]:
        by_home: dict[int, list[int]] = {}
        for i, key in enumerate(keys):
            by_home.setdefault(self.home(key), []).append(i)
        size = self.shard_size
        return [_Shard(ix[k : k + size], h) for h, ix in sorted(by_home.items()) for k in range(0, len(ix), size)]

    def _least_busy(self, shard: _Shard, load: list[int]) -> int:
        """A retried shard avoids the actor it failed on."""
        return min((a for a in range(self.size) if a != shard.home), key=lambda a: load[a])

    def _lost(
        self,
        shard: _Shard,
        actor: int,
        queue: deque[_Shard],
        results: list[Any],
        failed: Callable[[str], Any],
        why: str,
        bar: Any,
    ) -> None:
        """Replace the actor; run the shard again, or give its items `failed(why)` (never a verdict)."""
        _ray().kill(self.actors[actor])
        self.actors[actor], self._warm[actor] = self._make(), False
        self.stats.actors_replaced += 1
        shard.attempts += 1
        if shard.attempts <= self.retries:
            self.stats.retried_shards += 1
            queue.appendleft(shard)
            return
        for i in shard.indices:
            results[i] = failed(why)
        bar.update(1)

    def describe(self, modules: list[str]) -> tuple[str, list[bool], list[int]]:
        """The Lean version, importability of `modules` (first actor), and every actor's process id."""
        answers = _ray().get([a.describe.remote(modules) for a in self.actors])
        return answers[0][0], answers[0][1], [pid for _, _, pid in answers]

    def close(self) -> None:
        ray = _ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


class RayRuntime(LeanRuntime):
    """A `LeanRuntime` whose sources are checked by the actors of an `ActorPool`."""

    def __init__(self, actor_pool: ActorPool, name: str):
        self.actor_pool, self.name = actor_pool, name
        self._version: str | None = None
        self._importable: dict[str, bool] = {}

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = self.actor_pool.describe([])[0]
        return self._version

    def can_import(self, module: str) -> bool:
        if module not in self._importable:
            self._importable[module] = self.actor_pool.describe([module])[1][0]
        return self._importable[module]

    def check(
        self, sources: Sequence[str], *, timeout: float | None = None, export: bool = False
    ) -> list[SourceResult]:
        self._count(len(sources))
        return self.actor_pool.run(
            sources,
            sources,
            lambda actor, shard: actor.check.remote(shard, timeout, export),
            lambda why: SourceResult("error", error=InfraError("lost", why)),
        )

    def kernel_check(self, items: Sequence[KernelCheck], *, timeout: float | None = None) -> list[KernelVerdict]:
        return self.actor_pool.run(
            [json.dumps(item.constants, sort_keys=True) for item in items],  # shards by content
            list(items),
            lambda actor, shard: actor.kernel_check.remote(shard, timeout),
            lambda why: KernelVerdict("error", reason="lost", detail=why),
        )

    def has_judge(self) -> bool:
        return True  # each actor's runtime is one `get_runtime` makes by name, and every such one has a judge

    def prewarm(self) -> None:
        self.actor_pool.describe([])  # returns once every actor (and its Lean) is up

    def close(self) -> None:
        self.actor_pool.close()


class RayVerifier(BaseVerifier):
    """A `BaseVerifier` over Ray actors (see the module docstring)."""

    def __init__(
        self,
        address: str = "local",
        *,
        actors: int | None = None,
        runtime: str = "embedded",
        policy: Policy | None = None,
        runtime_options: dict[str, Any] | None = None,
        memory_mb: int = 3500,
        shard_size: int = 32,
        max_inflight: int | None = None,
        startup_timeout: float = 600.0,
        retries: int = 1,
        progress: bool = False,
    ):
        self.policy = policy or Policy()
        self.actor_pool = ActorPool(
            address,
            actors=actors,
            runtime=runtime,
            policy=self.policy,
            runtime_options=runtime_options or {},
            memory_mb=memory_mb,
            shard_size=shard_size,
            max_inflight=max_inflight,
            timeout_per_item=self.policy.timeout,
            startup_timeout=startup_timeout,
            retries=retries,
            progress=progress,
        )
        self._runtime = RayRuntime(self.actor_pool, runtime)

    @property
    def runtime(self) -> RayRuntime:
        return self._runtime

    def describe(self) -> str:
        return f"Lean {self.runtime.version} ({self.runtime_name}) on {self.actor_pool.size} Ray actors"

    def verify_batch(self, pairs: Sequence[tuple[Problem, str | bytes]]) -> list[Verdict]:
        """One verdict per pair, in order; shards on every actor at once (see the module docstring)."""
        keys = [json.dumps([p.header, p.formal_statement, s.hex() if isinstance(s, bytes) else s]) for p, s in pairs]
        return self.actor_pool.run(
            keys,
            pairs,
            lambda actor, shard: actor.verify.remote(shard),
            lambda why: Verdict("error", ("runtime_error:lost",), detail=why),
        )

    def close(self) -> None:
        self.actor_pool.close()


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="shard", desc="verifying on Ray", disable=not enabled)


def make_verifier(
    ray_address: str | None,
    runtime: str = "embedded",
    policy: Policy | None = None,
    *,
    server: str | None = None,
    **options: Any,
) -> BaseVerifier:
    """A `RayVerifier` when `ray_address` is given and Ray is installed, else the shared verifier
    (`get_verifier`: a server's when `server` or `LEANGYM_SERVER` names one, else this process's).

    Without Ray, the reason is printed and verification stays on this machine.
    """
    if ray_address:
        try:
            return RayVerifier(ray_address, runtime=runtime, policy=policy, **options)
        except RayUnavailable as e:
            print(f"leangym: {e}; verifying on this machine instead", file=sys.stderr)
    return get_verifier(runtime, policy, server=server)
