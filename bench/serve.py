"""What `leangym serve` gives a client process, measured in one run against Lean in the process.

    python bench/serve.py [--soak 20000] [--clients 8] [--only first|throughput|soak|restart]

1. First verdict: a new client process asks a warm server for one proof of a problem the server
   has not seen (its judge elaborates the reference too), three rounds of the four kinds; the
   seconds of the call, median and max by kind (and of the whole process, Python start-up
   included), against a new process that verifies such a proof with its own Lean (a cold start).
2. Throughput: 4 client processes × 64 new proofs at once (each sends 8 requests of 8 proofs),
   proofs per second and request latency p50/p95, against this process's warm verifier on the
   same kind of 256 new proofs, used the same way (4 threads) and as one batch.
3. Soak: `--soak` requests of one proof from `--clients` client processes (19 in 20 repeat one of
   64 known proofs, good and bad; the rest are new); every verdict is checked against what it
   must be, and the server's memory (its Python process, and with its Lean processes) is read
   at the start, the middle and the end.
4. Kill and restart: 4 clients send new proofs while the server is killed (SIGKILL) and started
   again; every request ends with its right verdict or an explicit error, none with a wrong 0.

Bounded in count and time; loopback only. Every number comes from this one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from runtime_batching import problem_and_proof  # bench/ is on sys.path

from leangym.client import Client, ServerUnavailable
from leangym.rewards import Problem, Verifier

HERE = Path(__file__).resolve().parent


def good(i: int, tag: str) -> dict:
    problem, proof = problem_and_proof(i)
    return {"name": problem.name, "formal_statement": problem.formal_statement, "proof": f"{proof} -- {tag}"}


def bad(i: int, tag: str) -> dict:
    statement = f"theorem f{i} (n : Nat) : n + {i + 1} = n := by"
    return {"name": f"f{i}", "formal_statement": statement, "proof": f"  omega -- {tag}"}


class Server:
    """`leangym serve` in a subprocess on a free loopback port."""

    def __init__(self) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start it and wait until it is warm; seconds taken."""
        t0 = time.monotonic()
        command = [sys.executable, "-m", "leangym", "serve", "--port", str(self.port)]
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Client(self.url, retry_for=600)
        while not client.health()["ready"]:
            time.sleep(0.1)
        return time.monotonic() - t0

    def memory_mib(self) -> tuple[float, float]:
        """RSS of the server's Python process, and of it with every descendant (its Lean processes)."""
        assert self.proc is not None

        def rss(pid: int) -> float:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
            except OSError:
                pass
            return 0.0

        def tree(pid: int) -> list[int]:
            kids: list[int] = []
            for task in Path(f"/proc/{pid}/task").glob("*"):
                with contextlib.suppress(OSError):  # a thread that ended meanwhile
                    kids += [int(k) for k in (task / "children").read_text().split()]
            return [pid] + [p for k in kids for p in tree(k)]

        return rss(self.proc.pid), sum(rss(p) for p in tree(self.proc.pid))

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=120)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- 1. the first verdict of a new process ------------------------------------------------------

CLIENT_PROCESS = """
import json, sys, time
t0 = time.perf_counter()
from leangym.client import Client
row = json.loads(sys.argv[2])
t1 = time.perf_counter()
client = Client(sys.argv[1])
[line] = client.verify([row])
t2 = time.perf_counter()
assert line["verdict"] == "proved", line
[again] = client.verify([row])
print(json.dumps({"call": t2 - t1, "import": t1 - t0, "cached": time.perf_counter() - t2}))
"""

LOCAL_PROCESS = """
import json, sys, time
from leangym.rewards import Problem, get_verifier
row = json.loads(sys.argv[1])
t1 = time.perf_counter()
verdict = get_verifier("embedded").verify(Problem(row["name"], row["formal_statement"]), row["proof"])
assert verdict.proved, verdict
print(json.dumps({"call": time.perf_counter() - t1}))
"""


def first_verdict(server: Server, rounds: int = 3) -> None:
    print(f"1. first verdict of a new client process: a new problem of each kind (omega, simp, decide, term), "
          f"{rounds} rounds")  # fmt: skip
    calls: dict[int, list[float]] = {kind: [] for kind in range(4)}
    wholes, cached, imports = [], [], []
    for r in range(rounds):
        for kind in range(4):
            time.sleep(2)  # the server idles between clients, as it would
            row = good(4 * (r + 1) + kind, f"first-{time.time()}")  # a problem the server has not seen
            t0 = time.monotonic()
            argv = [sys.executable, "-c", CLIENT_PROCESS, server.url, json.dumps(row)]
            out = subprocess.run(argv, capture_output=True)
            wholes.append(time.monotonic() - t0)
            answer = json.loads(out.stdout)
            calls[kind].append(answer["call"])
            cached.append(answer["cached"])
            imports.append(answer["import"])
    row = good(1, f"local-{time.time()}")
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", LOCAL_PROCESS, json.dumps(row)], capture_output=True, text=True)
    local_whole = time.monotonic() - t0
    local = json.loads(out.stdout.strip().splitlines()[-1])
    by_kind = ", ".join(f"{statistics.median(c):.3f} ({max(c):.3f})" for c in calls.values())
    print(f"  warm server: the call {by_kind} s by kind, median (max); the same proof again "
          f"(cached) {statistics.median(cached) * 1000:.0f} ms; the whole process {statistics.median(wholes):.2f} s "
          f"(importing the client {statistics.median(imports):.2f} s)")  # fmt: skip
    print(f"  own Lean (simp kind): the call {local['call']:.2f} s; the whole process {local_whole:.2f} s")
    ratio = local["call"] / statistics.median(calls[1])
    print(f"  ratio (call, simp kind): {ratio:.0f}x faster from the server", flush=True)


# -- 2. throughput --------------------------------------------------------------------------------


def client_batches(url: str, batches: list[list[dict]]) -> list[tuple[float, list[str]]]:
    client = Client(url)
    out = []
    for rows in batches:
        t0 = time.monotonic()
        lines = client.verify(rows)
        out.append((time.monotonic() - t0, [line["verdict"] for line in lines]))
    return out


def workload(tag: str) -> list[list[list[dict]]]:
    """4 clients × 8 requests × 8 new proofs (`tag` makes them new)."""
    return [[[good(c * 64 + b * 8 + i, tag) for i in range(8)] for b in range(8)] for c in range(4)]


def served(server: Server, tag: str) -> tuple[float, list[float]]:
    """Seconds for the workload from 4 client processes at once, and each request's latency."""
    clients = workload(tag)
    t0 = time.monotonic()
    with ProcessPoolExecutor(4) as pool:
        answers = list(pool.map(client_batches, [server.url] * 4, clients))
    wall = time.monotonic() - t0
    assert [v for a in answers for _, vs in a for v in vs] == ["proved"] * 256
    return wall, [s for a in answers for s, _ in a]


def in_process(verifier: Verifier, tag: str, threads: bool) -> float:
    """Seconds for the workload in this process: 4 threads at once, each as a client would; or one batch."""
    clients = [[[(Problem(r["name"], r["formal_statement"]), r["proof"]) for r in b] for b in c] for c in workload(tag)]
    t0 = time.monotonic()
    if threads:
        with ThreadPoolExecutor(4) as pool:
            done = list(pool.map(lambda c: [v for b in c for v in verifier.verify_batch(b)], clients))
    else:
        done = [verifier.verify_batch([pair for c in clients for b in c for pair in b])]
    assert all(v.proved for vs in done for v in vs)
    return time.monotonic() - t0


def throughput(server: Server) -> None:
    print("2. throughput: 4 clients x 64 new proofs at once (8 requests of 8 each); each side warmed by one round")
    served(server, f"warm-{time.time()}")
    wall, latencies = served(server, f"tp-{time.time()}")
    verifier = Verifier("embedded")
    in_process(verifier, f"warm-{time.time()}", threads=True)
    threads = in_process(verifier, f"th-{time.time()}", threads=True)
    one = in_process(verifier, f"one-{time.time()}", threads=False)
    verifier.close()
    p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    print(
        f"  server, 4 client processes:    {256 / wall:5.1f} proofs/s (request of 8: p50 {p50:.2f} s, p95 {p95:.2f} s)"
    )
    print(f"  in-process, 4 threads:         {256 / threads:5.1f} proofs/s   server / in-process {threads / wall:.2f}x")
    print(
        f"  in-process, one batch of 256:  {256 / one:5.1f} proofs/s   server / in-process {one / wall:.2f}x",
        flush=True,
    )


# -- 3. soak --------------------------------------------------------------------------------------

KNOWN = [(good(i, "known"), "proved") for i in range(48)] + [(bad(i, "known"), "rejected") for i in range(16)]


def soak_client(url: str, client_id: int, n: int) -> dict:
    client = Client(url)
    wrong, lost, latencies = 0, 0, []
    for k in range(n):
        if k % 20 == 19:
            row, want = good(100_000 + client_id * n + k, "soak"), "proved"
        else:
            row, want = KNOWN[(client_id * 7 + k) % len(KNOWN)]
        t0 = time.monotonic()
        try:
            [line] = client.verify([row])
        except ServerUnavailable:
            lost += 1
            continue
        latencies.append(time.monotonic() - t0)
        wrong += line["verdict"] != want
    return {"wrong": wrong, "lost": lost, "latencies": latencies}


def soak(server: Server, requests: int, clients: int) -> None:
    print(f"3. soak: {requests} requests of one proof from {clients} client processes")
    per = requests // clients
    memory = [server.memory_mib()]
    t0 = time.monotonic()
    with ProcessPoolExecutor(clients) as pool:
        futures = [pool.submit(soak_client, server.url, c, per) for c in range(clients)]
        while not all(f.done() for f in futures):
            time.sleep(1)
            if len(memory) == 1 and sum(f.done() for f in futures) == 0 and time.monotonic() - t0 > 20:
                memory.append(server.memory_mib())  # the middle, roughly
        results = [f.result() for f in futures]
    wall = time.monotonic() - t0
    memory.append(server.memory_mib())
    latencies = [s for r in results for s in r["latencies"]]
    p50, p95 = statistics.median(latencies) * 1000, percentile(latencies, 0.95) * 1000
    print(f"  {per * clients} requests in {wall:.0f} s ({per * clients / wall:.0f}/s): "
          f"{sum(r['wrong'] for r in results)} mis-scored, {sum(r['lost'] for r in results)} lost; "
          f"p50 {p50:.0f} ms, p95 {p95:.0f} ms")  # fmt: skip
    print("  server memory (Python / with Lean): " + ", ".join(f"{a:.0f} / {b:.0f} MiB" for a, b in memory), flush=True)


# -- 4. kill and restart --------------------------------------------------------------------------


def restart_client(url: str, client_id: int, n: int) -> dict:
    client = Client(url, retry_for=120)
    right, wrong, errors = 0, 0, 0
    for k in range(n):
        row, want = (
            (good(200_000 + client_id * n + k, "restart"), "proved") if k % 3 else (bad(k, f"r{client_id}"), "rejected")
        )
        try:
            [line] = client.verify([row])
        except ServerUnavailable:
            errors += 1
            continue
        if line["verdict"] == "error":
            errors += 1
        elif line["verdict"] == want:
            right += 1
        else:
            wrong += 1
    return {"right": right, "wrong": wrong, "errors": errors}


def kill_restart(server: Server) -> None:
    print("4. kill and restart mid-load: 4 clients x 60 requests; the server gets SIGKILL after 3 s")
    with ProcessPoolExecutor(4) as pool:
        futures = [pool.submit(restart_client, server.url, c, 60) for c in range(4)]
        time.sleep(3)
        server.kill()
        restarted = server.start()
        results = [f.result() for f in futures]
    total = {k: sum(r[k] for r in results) for k in ("right", "wrong", "errors")}
    print(f"  restarted and warm in {restarted:.1f} s; of 240 requests: {total['right']} right verdicts, "
          f"{total['errors']} explicit errors, {total['wrong']} wrong", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soak", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--only", choices=["first", "throughput", "soak", "restart"], help="run one part")
    args = parser.parse_args()
    print(f"bench/serve.py on {os.cpu_count()} cores")
    server = Server()
    try:
        print(f"0. server start-up to warm: {server.start():.1f} s")
        parts = {
            "first": lambda: first_verdict(server),
            "throughput": lambda: throughput(server),
            "soak": lambda: soak(server, args.soak, args.clients),
            "restart": lambda: kill_restart(server),
        }
        for name, part in parts.items():
            if args.only in (None, name):
                part()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
