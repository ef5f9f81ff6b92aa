"""`leangym serve`: one warm Lean for many processes and any language, over HTTP.

    leangym serve                                    # http://127.0.0.1:8000, embedded Lean
    curl -s localhost:8000/verify -H 'content-type: application/json' \\
      -d '{"items": [{"name": "t", "formal_statement": "theorem t : 1 + 1 = 2 := by", "proof": "decide"}]}'

The server owns the runtime and the verifiers (one per policy, sharing the runtime), so each
answer is what the same request would get in-process: `/verify` returns the lines of
`leangym verify`, verdicts decided by the trusted judge; `/check` returns `SourceResult`s;
`/sessions` are `LeanTactic-v0` episodes held on the server for clients that are not Python.
The schema is at `/docs` (OpenAPI). FastAPI under uvicorn: typed request models and the
schema come free, and both are the stack prover servers already run (Kimina Lean Server).

Under load and bad input (docs/serve.md): at most `max_queue` requests wait for Lean, beyond
that 429 with `Retry-After`; a body over `max_body_mb` is 413; malformed JSON is 422 with a
readable message; 401 without the key when one is set; SIGTERM lets running requests finish
(uvicorn's graceful shutdown) and refuses new ones. Lean work runs in worker threads, so a
client that disconnects costs only its own batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import gymnasium as gym
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import leangym
from leangym.envs.tactic_env import LeanTacticEnv
from leangym.lean_project.runtime import LeanRuntime
from leangym.lean_project.types import RuntimeHealth
from leangym.rewards.adapters import make_problem
from leangym.rewards.cli import verify_rows
from leangym.rewards.policy import Policy
from leangym.rewards.problem import Problem
from leangym.rewards.verifier import Verifier, get_verifier

T = TypeVar("T")
# Proved at start-up, one of each common kind: the wasm Lean compiles each function at its first call, so
# a server warmed with `decide` alone answered its first `omega` or `simp` proof ~0.1 s slower.
WARMUP = (
    ("leangym_warmup_decide", "theorem leangym_warmup_decide : (1 : Nat) + 1 = 2 := by", "  decide"),
    ("leangym_warmup_omega", "theorem leangym_warmup_omega (a b : Nat) (h : a < b) : a + 1 ≤ b := by", "  omega"),
    ("leangym_warmup_simp", "theorem leangym_warmup_simp (xs : List Nat) : xs.length + 0 = xs.length := by", "  simp"),
    ("leangym_warmup_term", "theorem leangym_warmup_term (n : Nat) : n + 0 = n :=", " Nat.add_zero n"),
)


@dataclass
class ServeConfig:
    """What `leangym serve` takes (its flags, one for one)."""

    host: str = "127.0.0.1"
    port: int = 8000
    runtime: str = "embedded"
    api_key: str | None = None  # required as `Authorization: Bearer KEY` (or `X-API-Key`) when set
    api_key_file: str | None = None  # where the key came from (recorded for `--server auto` clients)
    max_queue: int = 64  # requests waiting for or running in Lean; beyond: 429
    max_body_mb: float = 16.0
    session_ttl: float = 600.0  # seconds a tactic session lives unused
    max_sessions: int = 1024
    max_timeout: float = 120.0  # the largest `policy.timeout` a client may ask for (seconds per proof)
    max_heartbeats: int = 4_000_000  # the largest `policy.max_heartbeats` (0, no limit, is refused)
    idle_exit: float | None = None  # stop after this many seconds without a request
    record: bool = False  # write the address for `--server auto` clients (`--background`)
    runtime_options: dict[str, Any] = field(default_factory=dict)


# -- request models (the OpenAPI schema) -----------------------------------------------------


class VerifyRequest(BaseModel):
    items: list[Any] = Field(
        description="rows as `leangym verify` reads them: name, formal_statement, header?, proof|code"
    )
    policy: dict[str, Any] | None = Field(None, description="fields of `Policy` (timeout, max_heartbeats, …)")


class CheckRequest(BaseModel):
    sources: list[str] = Field(description="whole Lean sources, each checked from its own imports")
    timeout: float | None = Field(None, description="seconds per source (default: the runtime's)")
    export: bool = Field(False, description="also return the declarations each source added (untrusted data)")


class ProblemModel(BaseModel):
    name: str | None = None
    formal_statement: str
    header: str = ""


class SessionRequest(BaseModel):
    problem: ProblemModel
    max_steps: int = Field(64, ge=1, le=100_000)
    policy: dict[str, Any] | None = None


class StepRequest(BaseModel):
    tactic: str


class GotoRequest(BaseModel):
    state_id: str


class TryRequest(BaseModel):
    state_id: str
    tactics: list[str]


class Refused(Exception):
    """A request the server answers with an HTTP error (status, readable detail, extra headers)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


# -- the service: runtime, verifiers, sessions, queue, metrics -----------------------------------


@dataclass
class _Session:
    env: LeanTacticEnv
    used: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class _LeanHealth:
    """The Lean processes' series, from one `runtime.health()` a scrape (it scans /proc for their memory)."""

    SERIES: tuple[tuple[str, str, Callable[[RuntimeHealth], float]], ...] = (
        ("leangym_lean_processes", "Lean processes running", lambda h: h.processes),
        ("leangym_lean_restarts", "Lean processes restarted after a failure", lambda h: h.restarts),
        ("leangym_lean_memory_mb", "private resident memory of the Lean processes (MiB)", lambda h: h.memory_mb),
    )

    def __init__(self, health: Callable[[], RuntimeHealth]) -> None:
        self.health = health

    def describe(self) -> list[GaugeMetricFamily]:  # the names, without asking Lean (called at `register`)
        return [GaugeMetricFamily(name, help) for name, help, _ in self.SERIES]

    def collect(self) -> list[GaugeMetricFamily]:
        h = self.health()
        return [GaugeMetricFamily(name, help, value=read(h)) for name, help, read in self.SERIES]


class Metrics:
    """The Prometheus series of one server (its own registry, so tests can run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("leangym_requests", "HTTP requests", ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram(
            "leangym_request_seconds",
            "request latency",
            ["endpoint"],
            buckets=(0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100, 300),
            registry=self.registry,
        )
        self.verdicts = Counter("leangym_verdicts", "verdicts given", ["outcome"], registry=self.registry)
        self.queue = Gauge("leangym_queue_depth", "requests waiting for or running in Lean", registry=self.registry)
        self.sessions = Gauge("leangym_tactic_sessions", "open tactic sessions", registry=self.registry)


class LeanService:
    """What the HTTP handlers call: every method is plain, blocking Python (run in worker threads)."""

    def __init__(self, config: ServeConfig, runtime: LeanRuntime | None = None):
        from leangym.lean_project import get_runtime

        self.config = config
        self._owns_runtime = runtime is None  # a given runtime stays its owner's to close
        self.runtime = runtime or get_runtime(config.runtime, **config.runtime_options)
        self.metrics = Metrics()
        self.started = time.time()
        self.pending = 0
        self.running: dict[object, float] = {}  # each request waiting for or in Lean -> when it came
        self.ready = False
        self.warmup_error = ""
        self.last_request = time.monotonic()
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._verifiers: dict[Policy, Verifier] = {}
        self.metrics.queue.set_function(lambda: self.pending)
        self.metrics.sessions.set_function(lambda: len(self._sessions))
        self.metrics.registry.register(_LeanHealth(lambda: self.runtime.health()))

    def verifier(self, policy: dict[str, Any] | None) -> Verifier:
        """The verifier for a request's policy (one per policy, all on the server's runtime)."""
        chosen = _policy(policy)
        config = self.config
        if chosen.timeout > config.max_timeout:
            raise Refused(422, f"bad policy: timeout {chosen.timeout:g} s > this server's {config.max_timeout:g} s")
        if not 0 < chosen.max_heartbeats <= config.max_heartbeats:
            raise Refused(422, f"bad policy: max_heartbeats must be 1..{config.max_heartbeats} on this server")
        with self._lock:
            if chosen not in self._verifiers:
                self._verifiers[chosen] = get_verifier(self.runtime, chosen)  # type: ignore[assignment]
            return self._verifiers[chosen]

    def warm_up(self) -> None:
        """Start Lean and the judge, and prove a theorem of each common kind (`WARMUP`): `ready` (health)
        says the first answer will be warm."""
        try:
            verdicts = self.verifier(None).verify_batch([(Problem(n, s), proof) for n, s, proof in WARMUP])
        except Exception as e:  # the server stays up to say why (health), rather than die unexplained
            self.warmup_error = f"{type(e).__name__}: {e}"
            return
        failed = next((v for v in verdicts if not v.proved), None)
        self.ready = failed is None
        self.warmup_error = "" if failed is None else f"a warm-up proof got {failed.outcome}: {failed.detail}"
        self.last_request = time.monotonic()  # `--idle-exit` counts from here: the start-up is not idleness

    def health(self) -> dict[str, Any]:
        h = self.runtime.health()
        return {
            "status": "ok" if self.ready else ("starting" if not self.warmup_error else "degraded"),
            "ready": self.ready,
            **({"detail": self.warmup_error} if self.warmup_error else {}),
            "runtime": self.runtime.name,
            "version": self.runtime.version,
            "leangym": leangym.__version__,
            "mode": h.mode,
            "processes": h.processes,
            "restarts": h.restarts,
            "memory_mb": round(h.memory_mb, 1),
            "queue_depth": self.pending,
            "oldest_request_s": round(time.monotonic() - min(self.running.values(), default=time.monotonic()), 1),
            "max_queue": self.config.max_queue,
            "tactic_sessions": len(self._sessions),
            "uptime_s": round(time.time() - self.started, 1),
            "pid": os.getpid(),
        }

    def lean_info(self) -> dict[str, str]:
        """Which Lean answered (in every verdict answer)."""
        return {
            "runtime": self.runtime.name,
            "version": self.runtime.version,
            "server": f"leangym {leangym.__version__}",
        }

    def verify(self, request: VerifyRequest) -> dict[str, Any]:
        lines = list(verify_rows(request.items, self.verifier(request.policy), chunk=max(1, len(request.items))))
        for line in lines:
            self.metrics.verdicts.labels(line["verdict"]).inc()
        return {"results": lines, "lean": self.lean_info()}

    def check(self, request: CheckRequest) -> dict[str, Any]:
        results = self.runtime.check(request.sources, timeout=request.timeout, export=request.export)
        return {"results": [r.to_json() for r in results], "lean": self.lean_info()}

    def can_import(self, module: str) -> dict[str, Any]:
        return {"module": module, "importable": self.runtime.can_import(module)}

    # tactic sessions

    def open_session(self, request: SessionRequest) -> dict[str, Any]:
        with self._lock:
            if len(self._sessions) >= self.config.max_sessions:
                raise Refused(429, f"{len(self._sessions)} tactic sessions are open: close some", {"Retry-After": "5"})
        p = request.problem
        try:
            problem = make_problem(p.formal_statement, p.header, p.name)
            env = LeanTacticEnv([problem], verifier=self.verifier(request.policy), max_steps=request.max_steps)
            observation, info = env.reset(options={"problem": problem.name})
        except (ValueError, RuntimeError) as e:  # a statement that does not elaborate, an import this Lean lacks
            raise Refused(422, str(e)) from e
        sid = uuid.uuid4().hex
        with self._lock:
            self._sessions[sid] = _Session(env, time.monotonic())
        return {"session": sid, "observation": observation, "state_id": info["state_id"]}

    def in_session(self, sid: str, act: Callable[[LeanTacticEnv], T]) -> T:
        """`act(env)` on a session's env, one caller at a time."""
        with self._lock:
            session = self._sessions.get(sid)
        if session is None:
            raise Refused(404, f"no tactic session {sid!r} (closed, or idle for over {self.config.session_ttl:.0f} s)")
        with session.lock:
            session.used = time.monotonic()
            try:
                return act(session.env)
            except KeyError as e:  # an unknown state id
                raise Refused(404, str(e.args[0]) if e.args else str(e)) from e
            except gym.error.ResetNeeded as e:  # a step after the episode ended
                raise Refused(409, str(e)) from e
            except (ValueError, TypeError) as e:
                raise Refused(422, str(e)) from e

    def close_session(self, sid: str) -> None:
        with self._lock:
            session = self._sessions.pop(sid, None)
        if session is None:
            raise Refused(404, f"no tactic session {sid!r}")
        session.env.close()

    def expire_sessions(self) -> int:
        """Close the sessions unused for `session_ttl` seconds; how many."""
        cutoff = time.monotonic() - self.config.session_ttl
        with self._lock:
            old = [sid for sid, s in self._sessions.items() if s.used < cutoff and not s.lock.locked()]
            gone = [self._sessions.pop(sid) for sid in old]
        for session in gone:
            session.env.close()
        return len(gone)

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.env.close()
        if self._owns_runtime:
            self.runtime.close()


def _policy(fields: dict[str, Any] | None) -> Policy:
    if not fields:
        return Policy()
    try:
        return Policy.from_json(fields)
    except ValueError as e:
        raise Refused(422, f"bad policy: {e}") from e


def _session_view(env: LeanTacticEnv) -> dict[str, Any]:
    return {"observation": env.observation(), "state_id": env.state_id, "steps": env.steps, "states": list(env.states)}


def _step_view(env: LeanTacticEnv, tactic: str) -> dict[str, Any]:
    observation, reward, terminated, truncated, info = env.step(tactic)
    return {
        "observation": observation,
        "reward": reward,
        "terminated": terminated,
        "truncated": truncated,
        "info": info,
    }


def _try_view(env: LeanTacticEnv, state_id: str, tactics: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "tactic": out.tactic,
            "state_id": out.state_id,
            "goals": list(out.goals),
            "error": out.error,
            **({"infra": str(out.infra)} if out.infra else {}),
            **({"verdict": out.verdict.to_json()} if out.verdict else {}),
        }
        for out in env.try_tactics(state_id, tactics)
    ]


# -- the ASGI guard: body size, key, metrics, activity ---------------------------------------


def _endpoint(path: str) -> str:
    """A metric label for a path (bounded: session ids are not labels)."""
    first = path.strip("/").split("/")[0]
    return (
        first
        if first in ("verify", "check", "sessions", "imports", "health", "metrics", "docs", "openapi.json")
        else "other"
    )


class Guard:
    """Pure ASGI middleware: 413 past the body limit, 401 without the key, request metrics."""

    OPEN = ("/health", "/docs", "/openapi.json")  # answered without the key

    def __init__(self, app: ASGIApp, service: LeanService):
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, endpoint = time.monotonic(), _endpoint(scope["path"])
        self.service.last_request = started
        status = {"code": 500}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            refusal = self._refusal(scope)
            if refusal is None:
                body = await self._body(receive)
                if body is None:
                    refusal = Refused(413, f"the request body is over {self.service.config.max_body_mb:g} MB")
            if refusal is not None:
                await _error(refusal)(scope, receive, sending)
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await receive()  # then: the disconnect, when it comes
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await self.app(scope, replay, sending)
        finally:
            metrics = self.service.metrics
            metrics.requests.labels(endpoint, str(status["code"])).inc()
            metrics.latency.labels(endpoint).observe(time.monotonic() - started)

    def _refusal(self, scope: Scope) -> Refused | None:
        key = self.service.config.api_key
        if key is None or scope["path"] in self.OPEN:
            return None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
        if given and hmac.compare_digest(given.encode(), key.encode()):
            return None
        return Refused(401, "this server needs its API key (Authorization: Bearer KEY)", {"WWW-Authenticate": "Bearer"})

    async def _body(self, receive: Receive) -> bytes | None:
        """The whole body, or None past the limit (read no further)."""
        limit, chunks, size = int(self.service.config.max_body_mb * 2**20), [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return None
            if not message.get("more_body"):
                break
        return b"".join(chunks)


def _error(refusal: Refused) -> JSONResponse:
    return JSONResponse({"detail": refusal.detail}, status_code=refusal.status, headers=refusal.headers)


# -- the app ---------------------------------------------------------------------------------------


def make_app(config: ServeConfig, service: LeanService | None = None) -> FastAPI:
    """The FastAPI app over a `LeanService` (made from `config` unless given)."""
    service = service or LeanService(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        def warm_up() -> None:  # then tell `--server auto` clients where the (warm) server is
            service.warm_up()
            if config.record and service.ready:
                _write_record(config, os.getpid())

        threading.Thread(target=warm_up, daemon=True).start()
        sweeper = asyncio.create_task(_sweep(service, app))
        try:
            yield
        finally:
            sweeper.cancel()
            await run_in_threadpool(service.close)
            if config.record:
                _remove_record(os.getpid())

    app = FastAPI(
        title="leangym",
        version=leangym.__version__,
        summary="Lean 4 proof verification and tactic sessions; the kernel's verdict is the reward.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(Guard, service=service)

    async def lean(work: Callable[[], T]) -> T:
        """Run blocking Lean work in a worker thread, within the queue bound."""
        if service.pending >= config.max_queue:
            raise Refused(429, f"{service.pending} requests are queued for Lean; try again", {"Retry-After": "1"})
        service.pending += 1
        token = object()
        service.running[token] = time.monotonic()
        try:
            return await run_in_threadpool(work)
        finally:
            service.pending -= 1
            del service.running[token]

    @app.exception_handler(Refused)
    async def refused(request: Request, e: Refused) -> JSONResponse:
        return _error(e)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, e: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()[:5])
        return JSONResponse({"detail": f"malformed request: {problems}"}, status_code=422)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Runtime, Lean version, readiness, processes, queue depth."""
        return await run_in_threadpool(service.health)  # it scans /proc for the processes' memory: off the loop

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        """Prometheus text format."""
        text = await run_in_threadpool(generate_latest, service.metrics.registry)  # it scans /proc: off the loop
        return PlainTextResponse(text, media_type=CONTENT_TYPE_LATEST)

    @app.post("/verify")
    async def verify(request: VerifyRequest) -> dict[str, Any]:
        """Verdicts, exactly as `leangym verify` writes them (same fields, same reasons)."""
        return await lean(lambda: service.verify(request))

    @app.post("/check")
    async def check(request: CheckRequest) -> dict[str, Any]:
        """What Lean said of each raw source (untrusted: messages, not verdicts)."""
        return await lean(lambda: service.check(request))

    @app.get("/imports/{module}")
    async def imports(module: str) -> dict[str, Any]:
        """Whether this server's Lean can import `module`."""
        return service.can_import(module)

    @app.post("/sessions")
    async def open_session(request: SessionRequest) -> dict[str, Any]:
        """Start a tactic session (`LeanTactic-v0`) on a problem."""
        return await lean(lambda: service.open_session(request))

    @app.get("/sessions/{sid}")
    async def session(sid: str) -> dict[str, Any]:
        """The current state, its id, the steps taken and the states recorded."""
        return service.in_session(sid, _session_view)

    @app.post("/sessions/{sid}/step")
    async def step(sid: str, request: StepRequest) -> dict[str, Any]:
        """One tactic on the current state (Gymnasium's step: observation, reward, terminated, truncated, info)."""
        return await lean(lambda: service.in_session(sid, lambda env: _step_view(env, request.tactic)))

    @app.post("/sessions/{sid}/goto")
    async def goto(sid: str, request: GotoRequest) -> dict[str, Any]:
        """Backtrack: make a recorded state current again."""
        return service.in_session(
            sid, lambda env: {"observation": env.goto(request.state_id), "state_id": request.state_id}
        )

    @app.post("/sessions/{sid}/try")
    async def try_tactics(sid: str, request: TryRequest) -> dict[str, Any]:
        """Each tactic on a recorded state, in one Lean run (a search's node expansion)."""
        return {
            "results": await lean(
                lambda: service.in_session(sid, lambda env: _try_view(env, request.state_id, request.tactics))
            )
        }

    @app.delete("/sessions/{sid}")
    async def close_session(sid: str) -> dict[str, Any]:
        service.close_session(sid)
        return {"closed": sid}

    return app


async def _sweep(service: LeanService, app: FastAPI) -> None:
    """Every few seconds: expire idle sessions; stop the server once idle past `idle_exit`."""
    config = service.config
    while True:
        await asyncio.sleep(min(5.0, max(0.5, config.session_ttl / 4)))
        await run_in_threadpool(service.expire_sessions)
        idle = time.monotonic() - service.last_request
        started = service.ready or service.warmup_error  # a slow start-up is not idleness
        if config.idle_exit is not None and started and idle > config.idle_exit and service.pending == 0:
            print(f"leangym serve: idle for {idle:.0f} s; stopping", file=sys.stderr, flush=True)
            app.state.stop()  # uvicorn's graceful shutdown
            return


# -- running it: foreground, background, the record ----------------------------------------------


def _write_record(config: ServeConfig, pid: int) -> None:
    from leangym.client import record_path

    record = {
        "url": f"http://{config.host}:{config.port}",
        "pid": pid,
        "runtime": config.runtime,
        "leangym": leangym.__version__,
        "api_key_file": config.api_key_file,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    path = record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{pid}.tmp")
    tmp.write_text(json.dumps(record) + "\n", encoding="utf-8")
    tmp.replace(path)


def _remove_record(pid: int) -> None:
    from leangym.client import read_record, record_path

    record = read_record()
    if record is not None and record.get("pid") == pid:
        record_path().unlink(missing_ok=True)


def serve(config: ServeConfig) -> None:
    """Run the server in this process until SIGTERM or Ctrl-C (running requests finish first)."""
    import uvicorn

    os.environ.pop("LEANGYM_SERVER", None)  # the server's own verifiers are local, never itself
    # IPPROTO_TCP named, so that asyncio sets TCP_NODELAY on each connection (else a 40 ms delayed-ACK stall)
    sock = socket.socket(
        socket.AF_INET6 if ":" in config.host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP
    )
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.host, config.port))
    config.port = sock.getsockname()[1]  # port 0: the one the system chose
    app = make_app(config)
    print(
        f"leangym serve: http://{config.host}:{config.port} ({config.runtime} Lean; API docs at /docs)",
        file=sys.stderr,
        flush=True,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=60, access_log=False))
    app.state.stop = lambda: setattr(server, "should_exit", True)
    server.run(sockets=[sock])
