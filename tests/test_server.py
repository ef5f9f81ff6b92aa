"""`leangym serve` for real: a server process on a loopback port, its own embedded Lean, HTTP clients.

The verdicts the server gives must be the ones this process's verifier gives (the verifier's
red-team, control and mixed suites, a problem set's reference proofs), a tactic session over
HTTP must walk as `LeanTactic-v0` does, and the URL must work wherever a runtime name does.
Refusals (401, 413, 422, 429) are checked on a second server run in a thread of this process
over the test session's Lean. The last test stops the server with SIGTERM mid-request and
starts it again while a client waits. (TRL's `GRPOTrainer` against this server: test_rl_clients.py.)
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import gymnasium as gym
import httpx
import pytest
from conftest import ServerProcess, free_port
from test_rewards_lean import ALL, P

import leangym.envs  # noqa: F401 - registers the environments
from leangym.cli import main as leangym_main
from leangym.client import Client, RemoteVerifier, ServerError, ServerUnavailable
from leangym.envs.problems import load_problems
from leangym.envs.tactic_env import LeanTacticEnv
from leangym.lean_project import LeanRuntime
from leangym.rewards import Policy, Problem, get_verifier
from leangym.rewards.cli import verify_rows

pytestmark = pytest.mark.lean

TACTIC_PROBLEM = Problem("swap_add", "theorem swap_add (a b : Nat) (h : a = b) : a + 0 = b := by")
TACTIC_WALK = ["intro x", "rw [Nat.add_zero]", "exact h"]  # a failure, then two steps that close the goal


def _rows(pairs: list) -> list[dict]:
    return [{"name": p.name, "formal_statement": p.formal_statement, "header": p.header, "proof": s} for p, s in pairs]


@pytest.fixture(scope="module")
def suite_pairs() -> list:
    """The verifier's whole suite (text submissions) and a problem set's reference proofs."""
    pairs = [(P[c.problem], c.submission) for c in ALL if isinstance(c.submission, str)]
    core = load_problems("core:valid")[:24]
    return pairs + [(p, p.reference_proof) for p in core] + [(p, "  rfl") for p in core[:8]]


def test_verify_over_http_equals_the_local_verifier(server: ServerProcess, lean: LeanRuntime, suite_pairs) -> None:
    local = list(verify_rows(_rows(suite_pairs), get_verifier(lean, Policy()), chunk=len(suite_pairs)))
    with Client(server.url) as client:
        remote = client.verify(_rows(suite_pairs))
        health = client.health()
    assert len(remote) == len(local) == len(suite_pairs)
    for mine, theirs in zip(local, remote, strict=True):
        mine.pop("seconds"), theirs.pop("seconds")
        assert theirs == mine  # the same JSON as `leangym verify`, field for field
    outcomes = [line["verdict"] for line in remote]
    assert outcomes.count("proved") >= 40 and outcomes.count("rejected") >= 40  # both kinds, judged alike
    assert health["runtime"] == "embedded" and health["ready"] and health["processes"] >= 1 and health["memory_mb"] > 0


def test_the_url_works_wherever_a_runtime_name_does(server: ServerProcess, lean: LeanRuntime, tmp_path: Path) -> None:
    verifier = get_verifier(server.url)
    assert isinstance(verifier, RemoteVerifier) and get_verifier(server.url) is verifier
    good, bad = (P["add_comm"], "  omega"), (P["one_one"], "  decide")
    assert [v.outcome for v in verifier.verify_batch([good, bad, (P["add_zero"], b"  simp \xff")])] == [
        "proved",
        "rejected",
        "rejected",  # not UTF-8: refused before it leaves this process, as locally
    ]
    assert "server" in verifier.describe() and server.url in verifier.describe()

    env = gym.make("leangym/LeanProof-v0", problems=[P["add_comm"], P["one_one"]], runtime=server.url)
    env.reset(options={"problem": P["add_comm"].name})
    assert env.step("  omega")[1] == 1.0
    env.reset(options={"problem": P["one_one"].name})
    assert env.step("  decide")[1] == 0.0
    env.close()

    rows = tmp_path / "in.jsonl"
    rows.write_text("\n".join(json.dumps(r) for r in _rows([good, bad])) + "\n")
    assert leangym_main(["verify", str(rows), "--out", str(tmp_path / "out.jsonl"), "--server", server.url]) == 0
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [line["verdict"] for line in out] == ["proved", "rejected"]


def test_a_tactic_session_over_http_walks_as_the_env_does(server: ServerProcess, lean: LeanRuntime) -> None:
    env = LeanTacticEnv([TACTIC_PROBLEM], runtime=lean)
    local_obs, local_info = env.reset(options={"problem": TACTIC_PROBLEM.name})
    with Client(server.url) as client:
        started = client.start_session(TACTIC_PROBLEM)
        sid = started["session"]
        assert started["observation"] == local_obs and started["state_id"] == local_info["state_id"]
        for tactic in TACTIC_WALK:
            local = env.step(tactic)
            remote = client.step(sid, tactic)
            assert remote["observation"] == local[0]
            assert (remote["reward"], remote["terminated"], remote["truncated"]) == local[1:4]
            assert remote["info"]["state_id"] == local[4]["state_id"] and remote["info"]["error"] == local[4]["error"]
        assert remote["reward"] == 1.0 and remote["info"]["verdict"] == "proved"
        with pytest.raises(ServerError) as over:
            client.step(sid, "rfl")
        assert over.value.status == 409  # the episode is over

        root = started["state_id"]
        assert client.goto(sid, root)["observation"]["goals"] == local_obs["goals"]  # backtracking
        tried = client.try_tactics(sid, root, ["omega", "sorry", "simp [h]"])
        assert [t["state_id"] for t in tried] == ["no-goals", None, "no-goals"]
        assert tried[0]["verdict"]["verdict"] == "proved" and "refused" in tried[1]["error"]
        assert set(client.session(sid)["states"]) >= {root, "no-goals"}
        client.close_session(sid)
        with pytest.raises(ServerError) as gone:
            client.step(sid, "rfl")
        assert gone.value.status == 404
        with pytest.raises(ServerError) as bad:
            client.start_session(Problem("nope", "theorem nope : NotAType := by"))
        assert bad.value.status == 422
    env.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=5).json()["ready"]
    except httpx.ConnectError:
        return False


@pytest.fixture(scope="module")
def guarded(lean: LeanRuntime, tmp_path_factory: pytest.TempPathFactory):
    """A second server, in a thread of this process over the session's Lean: a key, a queue of 1, 1 MB bodies."""
    import uvicorn

    from leangym.server import LeanService, ServeConfig, make_app

    config = ServeConfig(port=free_port(), api_key="s3cret", max_queue=1, max_body_mb=1.0)
    service = LeanService(config, runtime=lean)
    app = make_app(config, service)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=config.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{config.port}"
    deadline = time.monotonic() + 300
    while not _ready(url):  # uvicorn binds its port in its thread, a moment after `start`
        assert time.monotonic() < deadline
        time.sleep(0.2)
    yield url, service
    server.should_exit = True
    thread.join(timeout=60)


def test_refusals_are_explicit(guarded) -> None:
    guarded, service = guarded
    key = {"Authorization": "Bearer s3cret"}
    good = {"items": _rows([(P["two_two"], "  decide")])}
    assert httpx.post(guarded + "/verify", json=good).status_code == 401
    assert httpx.post(guarded + "/verify", json=good, headers={"Authorization": "Bearer wrong"}).status_code == 401
    proved = httpx.post(guarded + "/verify", json=good, headers=key, timeout=60)  # Lean's work: not httpx's 5 s
    assert proved.json()["results"][0]["verdict"] == "proved"
    assert httpx.get(guarded + "/metrics").status_code == 401 and httpx.get(guarded + "/health").status_code == 200

    big = httpx.post(guarded + "/check", content=b'{"sources": ["' + b"x" * (2 << 20) + b'"]}', headers=key)
    assert big.status_code == 413 and "MB" in big.json()["detail"]
    broken = httpx.post(
        guarded + "/verify", content=b'{"items": [', headers={**key, "content-type": "application/json"}
    )
    assert broken.status_code == 422 and broken.json()["detail"].startswith("malformed request")
    missing = httpx.post(guarded + "/verify", json={"policy": {}}, headers=key)
    assert missing.status_code == 422 and "items" in missing.json()["detail"]
    odd_policy = httpx.post(guarded + "/verify", json={**good, "policy": {"no_such_field": 1}}, headers=key)
    assert odd_policy.status_code == 422 and "policy" in odd_policy.json()["detail"]
    for greedy in ({"timeout": 3600}, {"max_heartbeats": 0}):  # a client cannot hold Lean longer than the server allows
        refused = httpx.post(guarded + "/verify", json={**good, "policy": greedy}, headers=key)
        assert refused.status_code == 422 and "this server" in refused.json()["detail"], refused.text

    # The queue holds one request: while a long check runs, the next Lean request gets 429 + Retry-After.
    sources = [f"theorem q{i} (n : Nat) : n + {i} = {i} + n := by omega" for i in range(150)]
    long = {}
    runner = threading.Thread(
        target=lambda: long.update(
            r=httpx.post(guarded + "/check", json={"sources": sources}, headers=key, timeout=300)
        )
    )
    runner.start()
    deadline = time.monotonic() + 60
    while httpx.get(guarded + "/health").json()["queue_depth"] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    assert httpx.get(guarded + "/health").json()["oldest_request_s"] >= 0.3  # how long the Lean work has run
    busy = httpx.post(guarded + "/verify", json=good, headers=key)
    assert busy.status_code == 429 and busy.headers["Retry-After"].isdigit()
    with pytest.raises(ServerUnavailable):  # the client waits as told, then says so; it never makes up a verdict
        Client(guarded, api_key="s3cret", retry_for=0.5).verify(good["items"])
    runner.join()
    assert long["r"].status_code == 200 and all(r["status"] == "ok" for r in long["r"].json()["results"])
    metrics = httpx.get(guarded + "/metrics", headers=key).text
    assert 'leangym_requests_total{endpoint="verify",status="429"}' in metrics
    assert 'leangym_verdicts_total{outcome="proved"}' in metrics and "leangym_lean_processes" in metrics

    schema = httpx.get(guarded + "/openapi.json").json()  # the typed API, for clients in any language
    assert {"/verify", "/check", "/sessions", "/sessions/{sid}/step", "/health"} <= set(schema["paths"])

    opened = httpx.post(guarded + "/sessions", json={"problem": {"formal_statement": P["two_two"].formal_statement}},
                        headers=key, timeout=60).json()  # fmt: skip
    service.config.session_ttl = 0.0  # as if idle for longer than the time to live
    assert service.expire_sessions() == 1
    assert httpx.get(guarded + f"/sessions/{opened['session']}", headers=key).status_code == 404


def test_the_async_client_and_leangym_server_variable(server: ServerProcess, monkeypatch) -> None:
    import asyncio

    from leangym.client import AsyncClient
    from leangym.rewards import compute_score_batch

    async def ask() -> list:
        async with AsyncClient(server.url) as client:
            return await asyncio.gather(*(client.verify_batch([(P["two_two"], f"  decide -- {i}")]) for i in range(4)))

    assert [v.outcome for [v] in asyncio.run(ask())] == ["proved"] * 4
    monkeypatch.setenv("LEANGYM_SERVER", server.url)  # processes we do not construct: verl's reward workers
    assert isinstance(get_verifier("embedded"), RemoteVerifier)
    assert compute_score_batch(["x", "x"], ["  omega", "  rfl"], [P["add_comm"].formal_statement] * 2,
                               [{"header": P["add_comm"].header}] * 2) == [1.0, 0.0]  # fmt: skip


def test_background_server_is_found_by_auto_and_exits_when_idle(tmp_path: Path, capsys) -> None:
    import subprocess
    import sys

    from leangym.client import read_record, running_server

    if running_server() is not None:
        pytest.skip("a background leangym server of this user is running: not touching its record")
    started = subprocess.run(
        [sys.executable, "-m", "leangym", "serve", "--background", "--port", "0", "--idle-exit", "6"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert started.returncode == 0 and "leangym server started: http://127.0.0.1:" in started.stdout, started.stderr
    record = read_record()
    assert record is not None and running_server() == record
    rows = tmp_path / "in.jsonl"
    rows.write_text(json.dumps(_rows([(P["two_two"], "  decide")])[0]) + "\n")
    assert leangym_main(["verify", str(rows), "--out", str(tmp_path / "out.jsonl"), "--server", "auto"]) == 0
    assert f"on the leangym server at {record['url']}" in capsys.readouterr().err
    deadline = time.monotonic() + 120  # idle for 6 s: it stops itself and removes its record
    while read_record() is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert read_record() is None


def test_a_header_that_never_ends_blocks_no_other_client(guarded) -> None:
    """Red team: a header looping in `#eval` once hung the judge every client shares (it elaborated the
    reference before the untrusted run had rejected anything). It must cost its own request only."""
    url, _ = guarded
    key = {"Authorization": "Bearer s3cret"}
    spin = "partial def spin (n : Nat) : IO Nat := spin (n + 1)\n#eval spin 0\n"
    hostile = {**_rows([(Problem("t", "theorem t : (1 : Nat) + 1 = 2 := by", header=spin), "  decide")])[0]}
    answer = httpx.post(url + "/verify", json={"items": [hostile], "policy": {"timeout": 5}}, headers=key, timeout=300)
    assert answer.json()["results"][0]["verdict"] == "rejected"  # its own time limit
    honest = httpx.post(url + "/verify", json={"items": _rows([(P["one_one"], "  decide"), (P["add_comm"], "  omega")])},
                        headers=key, timeout=120)  # fmt: skip
    assert [r["verdict"] for r in honest.json()["results"]] == ["rejected", "proved"]


def test_an_unreachable_server_is_an_error_never_a_zero() -> None:
    verifier = RemoteVerifier(f"http://127.0.0.1:{free_port()}", client=None)
    verifier.client.retry_for = 0.5
    [verdict] = verifier.verify_batch([(P["two_two"], "  decide")])
    assert verdict.outcome == "error" and verdict.reasons == ("runtime_error:server_unavailable",)


def test_sigterm_finishes_running_work_and_a_restart_serves_waiting_clients(server: ServerProcess) -> None:
    """The session's server, stopped with SIGTERM while it checks, then started again while a client retries."""
    sources = [f"theorem s{i} (n : Nat) : n * {i} = {i} * n := by omega" for i in range(120)]
    answer = {}
    running = threading.Thread(target=lambda: answer.update(r=Client(server.url).check(sources)))
    running.start()
    while httpx.get(server.url + "/health").json()["queue_depth"] == 0:
        time.sleep(0.01)
    assert server.stop() in (0, -15)  # uvicorn waits for running requests, then exits by the signal it got
    running.join()
    assert len(answer["r"]) == len(sources) and all(r.error_free for r in answer["r"])

    waiting = {}
    later = threading.Thread(
        target=lambda: waiting.update(v=Client(server.url, retry_for=300).verify(_rows([(P["two_two"], "  decide")])))
    )
    later.start()  # the server is down: the client retries with backoff
    time.sleep(1.0)
    server.start()  # the same port; the fixture stops it at the end of the session
    later.join()
    assert waiting["v"][0]["verdict"] == "proved"


def test_serve_refuses_an_unreadable_or_empty_api_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`leangym serve --api-key-file` exits 2 with the reason before it starts anything."""
    empty = tmp_path / "key"
    empty.write_text("  \n", encoding="utf-8")
    for path, said in [(tmp_path / "missing", "cannot read the API key"), (empty, "is empty")]:
        assert leangym_main(["serve", "--api-key-file", str(path), "--port", str(free_port())]) == 2
        assert said in capsys.readouterr().err
