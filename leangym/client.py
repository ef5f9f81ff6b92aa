"""A client of `leangym serve`: verdicts, Lean checks and tactic sessions from a warm server.

    from leangym.client import Client

    with Client("http://127.0.0.1:8000") as server:
        [line] = server.verify([{"name": "t", "formal_statement": "theorem t : 1 + 1 = 2 := by", "proof": "decide"}])
        line["verdict"], line["reward"]                  # exactly what `leangym verify` writes

Wherever a runtime name goes, a server's address goes too: `get_verifier("http://…")`,
`gym.make("leangym/LeanProof-v0", runtime="http://…")`, `leangym verify --server URL`, and
`LEANGYM_SERVER=URL` (or `auto`: the server `leangym serve --background` left running) for
processes you do not construct, such as TRL's reward function (`server_for`).

A server that cannot be reached is retried with backoff for `retry_for` seconds (a restart
takes ~10 s), then `ServerUnavailable`: through `RemoteVerifier` that is an `error` verdict,
never a reward of 0. `AsyncClient` is the same client for asyncio code.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from leangym.lean_project.runtime import LeanRuntime
from leangym.lean_project.types import RuntimeHealth, SourceResult
from leangym.rewards.adapters import VerifierUnavailable
from leangym.rewards.policy import Policy
from leangym.rewards.problem import Problem
from leangym.rewards.submission import Rejection, decode
from leangym.rewards.verdict import Verdict
from leangym.rewards.verifier import BaseVerifier

RETRY_FOR = 60.0  # seconds a call keeps retrying an unreachable or busy server
TIMEOUT = 900.0  # seconds one HTTP answer may take (a large batch on a cold Lean)


class ServerUnavailable(VerifierUnavailable):
    """The server could not be reached (or stayed busy) for `retry_for` seconds."""


class ServerError(RuntimeError):
    """The server refused the request (bad request, wrong key, unknown session): the caller's fault."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status, self.detail = status, detail


# -- what goes over the wire (shared by both clients) --------------------------------------


class _Address:
    """Where a server is and how to ask it: its URL, the key (`LEANGYM_API_KEY` by default), how long to
    wait for an answer (`timeout`) and to retry a busy or unreachable server (`retry_for`)."""

    def __init__(
        self, url: str, *, api_key: str | None = None, timeout: float = TIMEOUT, retry_for: float = RETRY_FOR
    ) -> None:
        self.url = url.rstrip("/")
        self.retry_for = retry_for
        key = api_key if api_key is not None else os.environ.get("LEANGYM_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = self._connect(timeout)

    def _connect(self, timeout: float) -> Any:
        """The HTTP client (httpx's sync or async one) that sends the requests."""
        raise NotImplementedError


def _policy_json(policy: Policy | None) -> dict[str, Any] | None:
    return None if policy is None else asdict(policy)


def _rows(pairs: Sequence[tuple[Problem, str]]) -> list[dict[str, Any]]:
    return [{"name": p.name, "formal_statement": p.formal_statement, "header": p.header, "proof": s} for p, s in pairs]


def _answer(response: httpx.Response) -> Any:
    """The JSON of a success, or `ServerError` with the server's own words."""
    if response.status_code < 400:
        return response.json()
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text
    raise ServerError(response.status_code, str(detail))


class _Backoff:
    """When to try again: doubling waits from 0.1 s to 2 s (or the server's `Retry-After`), for `retry_for` seconds."""

    def __init__(self, retry_for: float):
        self.deadline = time.monotonic() + retry_for
        self.wait = 0.1

    def next(self, response: httpx.Response | None, why: str) -> float:
        """Seconds to sleep before the next try; `ServerUnavailable` once the time is spent."""
        delay = self.wait
        if response is not None and response.headers.get("Retry-After", "").isdigit():
            delay = float(response.headers["Retry-After"])
        if time.monotonic() + delay > self.deadline:
            raise ServerUnavailable(why)
        self.wait = min(2.0, self.wait * 2)
        return delay


def _retryable(response: httpx.Response) -> bool:
    return response.status_code in (429, 502, 503, 504)


# -- the clients --------------------------------------------------------------------------------


class Client(_Address):
    """A synchronous client (thread-safe: httpx's connection pool)."""

    def _connect(self, timeout: float) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout, headers=self.headers)

    def health(self) -> dict[str, Any]:
        """The server's runtime, Lean version, processes, queue (`GET /health`)."""
        return self._call("GET", "/health")

    def verify(self, rows: Sequence[dict[str, Any]], policy: Policy | None = None) -> list[dict[str, Any]]:
        """Rows as `leangym verify` reads them → its output lines, in order."""
        return self._call("POST", "/verify", {"items": list(rows), "policy": _policy_json(policy)})["results"]

    def verify_batch(self, pairs: Sequence[tuple[Problem, str]], policy: Policy | None = None) -> list[Verdict]:
        return [Verdict.from_json(line) for line in self.verify(_rows(pairs), policy)]

    def check(
        self, sources: Sequence[str], *, timeout: float | None = None, export: bool = False
    ) -> list[SourceResult]:
        """Raw Lean sources → what Lean said of each (`LeanRuntime.check` on the server)."""
        answer = self._call("POST", "/check", {"sources": list(sources), "timeout": timeout, "export": export})
        return [SourceResult.from_json(r) for r in answer["results"]]

    def can_import(self, module: str) -> bool:
        return bool(self._call("GET", f"/imports/{module}")["importable"])

    # tactic sessions: the state lives on the server (`LeanTactic-v0` there)

    def start_session(self, problem: Problem, *, max_steps: int = 64, policy: Policy | None = None) -> dict[str, Any]:
        """A tactic session on `problem`: `{"session", "observation", "state_id"}`."""
        payload = {"problem": _rows([(problem, "")])[0], "max_steps": max_steps, "policy": _policy_json(policy)}
        return self._call("POST", "/sessions", payload, idempotent=False)

    def step(self, session: str, tactic: str) -> dict[str, Any]:
        """One tactic on the session's current state: observation, reward, terminated, truncated, info."""
        return self._call("POST", f"/sessions/{session}/step", {"tactic": tactic}, idempotent=False)

    def goto(self, session: str, state_id: str) -> dict[str, Any]:
        """Back (or forth) to a recorded state of the session."""
        return self._call("POST", f"/sessions/{session}/goto", {"state_id": state_id})

    def try_tactics(self, session: str, state_id: str, tactics: Sequence[str]) -> list[dict[str, Any]]:
        """Each tactic on a recorded state, in one Lean run; the current state does not move."""
        answer = self._call("POST", f"/sessions/{session}/try", {"state_id": state_id, "tactics": list(tactics)})
        return answer["results"]

    def session(self, session: str) -> dict[str, Any]:
        return self._call("GET", f"/sessions/{session}")

    def close_session(self, session: str) -> None:
        self._call("DELETE", f"/sessions/{session}")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, payload: Any = None, *, idempotent: bool = True) -> Any:
        """One request, tried again while the server is unreachable or busy. A request that may have
        reached the server is sent again only when it is idempotent (a tactic step is not)."""
        backoff = _Backoff(self.retry_for)
        while True:
            try:
                response = self._http.request(method, path, json=payload)
            except httpx.ConnectError as e:
                time.sleep(backoff.next(None, f"cannot reach the leangym server at {self.url}: {e}"))
                continue
            except httpx.TransportError as e:
                if not idempotent:
                    raise ServerUnavailable(f"the leangym server at {self.url} went away mid-request: {e}") from e
                time.sleep(backoff.next(None, f"the leangym server at {self.url} keeps failing: {e}"))
                continue
            if _retryable(response):
                time.sleep(
                    backoff.next(response, f"the leangym server at {self.url} stays busy ({response.status_code})")
                )
                continue
            return _answer(response)


class AsyncClient(_Address):
    """`Client`'s verdicts and checks for asyncio code (`await client.verify(rows)`)."""

    def _connect(self, timeout: float) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=timeout, headers=self.headers)

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/health")

    async def verify(self, rows: Sequence[dict[str, Any]], policy: Policy | None = None) -> list[dict[str, Any]]:
        answer = await self._call("POST", "/verify", {"items": list(rows), "policy": _policy_json(policy)})
        return answer["results"]

    async def verify_batch(self, pairs: Sequence[tuple[Problem, str]], policy: Policy | None = None) -> list[Verdict]:
        return [Verdict.from_json(line) for line in await self.verify(_rows(pairs), policy)]

    async def check(
        self, sources: Sequence[str], *, timeout: float | None = None, export: bool = False
    ) -> list[SourceResult]:
        answer = await self._call("POST", "/check", {"sources": list(sources), "timeout": timeout, "export": export})
        return [SourceResult.from_json(r) for r in answer["results"]]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, payload: Any = None) -> Any:
        import asyncio

        backoff = _Backoff(self.retry_for)
        while True:
            try:
                response = await self._http.request(method, path, json=payload)
            except httpx.TransportError as e:
                await asyncio.sleep(backoff.next(None, f"cannot reach the leangym server at {self.url}: {e}"))
                continue
            if _retryable(response):
                await asyncio.sleep(backoff.next(response, f"the leangym server at {self.url} stays busy"))
                continue
            return _answer(response)


# -- the verifier's and the runtime's interfaces over a server ----------------------------------


class RemoteRuntime(LeanRuntime):
    """`LeanRuntime` whose sources a server checks (`POST /check`): what a tactic env re-elaborates through.

    It has no judge of its own (`kernel_check` answers `error`): verdicts come from the server's
    verifier, through `RemoteVerifier`.
    """

    def __init__(self, client: Client, health: dict[str, Any]):
        self.client = client
        self.name = str(health["runtime"])
        self._version = str(health["version"])
        self._importable: dict[str, bool] = {}

    @classmethod
    def connect(cls, url: str) -> RemoteRuntime:
        """The runtime of the server at `url` (asked for its health now: a wrong address fails here)."""
        client = Client(url, api_key=_recorded_key(url))
        return cls(client, client.health())

    @property
    def version(self) -> str:
        return self._version

    def check(
        self, sources: Sequence[str], *, timeout: float | None = None, export: bool = False
    ) -> list[SourceResult]:
        self._count(len(sources))
        return self.client.check(sources, timeout=timeout, export=export)

    def can_import(self, module: str) -> bool:
        if module not in self._importable:
            self._importable[module] = self.client.can_import(module)
        return self._importable[module]

    def health(self) -> RuntimeHealth:
        h = self.client.health()
        return RuntimeHealth(
            f"server:{h['mode']}", int(h["processes"]), int(h["restarts"]), memory_mb=float(h.get("memory_mb", 0.0))
        )


class RemoteVerifier(BaseVerifier):
    """A `BaseVerifier` over a server.

    The server owns the Lean processes: `release` and `close` end nothing there. An unreachable
    server gives `error` verdicts (reason `runtime_error:server_unavailable`), which trainers
    retry or leave out, never a 0.
    """

    def __init__(self, url: str, policy: Policy | None = None, *, client: Client | None = None):
        self.policy = policy or Policy()
        self.client = client or Client(url, api_key=_recorded_key(url))
        self._runtime: RemoteRuntime | None = None
        self._lock = threading.Lock()

    @property
    def runtime(self) -> RemoteRuntime:
        """The server's runtime (its name and version are asked once)."""
        with self._lock:
            if self._runtime is None:
                self._runtime = RemoteRuntime(self.client, self.client.health())  # shares the client
            return self._runtime

    def describe(self) -> str:
        """Which Lean answers: the server's, with its version and address."""
        return f"Lean {self.runtime.version} ({self.runtime.name}) on the leangym server at {self.client.url}"

    def verify_batch(self, pairs: Sequence[tuple[Problem, str | bytes]]) -> list[Verdict]:
        """One verdict per pair, in order, from one request. Bytes that are not UTF-8 are rejected here,
        as the local verifier would (JSON carries text only)."""
        verdicts: list[Verdict | None] = [None] * len(pairs)
        texts: list[tuple[int, Problem, str]] = []
        for i, (problem, submission) in enumerate(pairs):
            text = decode(submission, self.policy)
            if isinstance(text, Rejection):
                verdicts[i] = Verdict("rejected", text.reasons, detail=text.detail)
            else:
                texts.append((i, problem, text))
        if texts:
            try:
                answers = self.client.verify_batch([(p, t) for _, p, t in texts], self.policy)
            except ServerUnavailable as e:
                answers = [Verdict("error", ("runtime_error:server_unavailable",), detail=str(e))] * len(texts)
            for (i, _, _), verdict in zip(texts, answers, strict=True):
                verdicts[i] = verdict
        return [v for v in verdicts if v is not None]

    def prewarm(self) -> None:
        """The server is warm already: ask it once, so that a wrong address fails now."""
        _ = self.runtime


# -- finding a server: an address, LEANGYM_SERVER, or the background server's record ----------------


def record_path() -> Path:
    """Where `leangym serve --background` writes its address (under the cache folder)."""
    from leangym.lean_project.toolchain import leangym_home

    return leangym_home() / "server.json"


def read_record() -> dict[str, Any] | None:
    """The background server's record, if one is there and its process is alive (else None: stale)."""
    try:
        record = json.loads(record_path().read_text(encoding="utf-8"))
        os.kill(int(record["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record


def _recorded_key(url: str) -> str | None:
    """The API key of the recorded server at `url` (from its key file), if it was started with one."""
    record = read_record()
    if record is None or record.get("url") != url.rstrip("/") or not record.get("api_key_file"):
        return None
    try:
        return Path(record["api_key_file"]).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def running_server() -> dict[str, Any] | None:
    """The background server's record, if it is alive and answers its health check."""
    record = read_record()
    if record is None:
        return None
    try:
        health = Client(record["url"], api_key=_recorded_key(record["url"]), timeout=3.0, retry_for=0).health()
    except (ServerUnavailable, ServerError, httpx.HTTPError):
        return None
    return record if health.get("ready") else None


_warned: set[str] = set()


def server_for(runtime: str, server: str | None = None) -> str | None:
    """The server to use for a runtime name: `server` (a URL or "auto"), else the name when it is a URL,
    else `LEANGYM_SERVER`. With "auto", the background server when it runs the same runtime; None (Lean
    in this process) otherwise, said once on stderr."""
    if runtime.startswith(("http://", "https://")):
        return runtime
    wanted = server or os.environ.get("LEANGYM_SERVER") or None
    if wanted is None or wanted == "none":
        return None
    if wanted != "auto":
        return wanted
    record = running_server()
    if record is not None and record.get("runtime") == runtime:
        return str(record["url"])
    why = "no leangym server is running" if record is None else f"the running server is not `{runtime}`"
    if why not in _warned:
        _warned.add(why)
        warnings.warn(f"{why} (start one: leangym serve --background); Lean runs in this process", stacklevel=2)
    return None
