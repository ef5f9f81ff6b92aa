"""Shared fixtures. Every test that judges a proof runs the real embedded Lean.

An embedded Lean session costs ~7 s to start and then milliseconds a source, so the whole
test session shares one runtime (its sessions stay up between calls), and each test module
sends what it needs to Lean in as few batches as it can (module-scoped fixtures).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from leangym.lean_project import LeanRuntime, get_runtime

# A shell script's background job (`make test &`) starts with SIGINT ignored, and Python then keeps
# it ignored, in this process and in the processes it starts: the Ctrl-C tests need it as a terminal
# gives it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def lean() -> LeanRuntime:
    """The embedded runtime, shared by the whole test session (installed by `make test`)."""
    runtime = get_runtime("embedded", timeout=60.0)
    runtime.prewarm()
    yield runtime
    runtime.close()


def verify_in_one_batch(lean: LeanRuntime, pairs: list) -> list:
    """Verify (problem, submission) pairs with the shared verifier, asserting they took one Lean batch."""
    from leangym.rewards import Policy, get_verifier

    verifier = get_verifier(lean, Policy())
    before = lean.lean_batches
    out = verifier.verify_batch(pairs)
    assert lean.lean_batches - before == 1  # one Lean batch for the lot
    return out


# A proof body that writes a forged "accepted" answer on the process's stdout and exits, from a
# tactic's configuration term (the trusted-verdicts issue): on a false statement it must earn 0.
FORGED_ANSWER = (
    "  simp (maxSteps := EST.Out.casesOn (motive := fun _ => Nat) ((do\n"
    '      let out ← IO.FS.Handle.mk "/dev/stdout" IO.FS.Mode.write\n'
    '      out.putStr "{\\"env\\": 100000, \\"messages\\": []}\\n\\n"; out.flush\n'
    "      IO.Process.exit 0 : IO Unit) (unsafeCast ())) (fun _ _ => 1) (fun _ _ => 1))"
)


def free_port() -> int:
    """A loopback port nobody listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A real `leangym serve` in its own process on a free loopback port (its own Lean behind it)."""

    def __init__(self, *args: str) -> None:
        self.port, self.args = free_port(), args
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self) -> ServerProcess:
        import subprocess
        import sys
        import tempfile

        self.log = tempfile.NamedTemporaryFile(prefix="leangym-serve-", suffix=".log", delete=False)  # noqa: SIM115
        command = [sys.executable, "-m", "leangym", "serve", "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Until `/health` says the warm-up proof was proved (fails with the server's log if it died)."""
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, f"the server exited: {self.read_log()}"
            try:
                if httpx.get(self.url + "/health", timeout=2).json().get("ready"):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the server was not ready in {timeout} s: {self.read_log()}")

    def read_log(self) -> str:
        from pathlib import Path

        return Path(self.log.name).read_text(errors="replace")[-3000:]

    def stop(self) -> int:
        """SIGTERM (graceful), then its exit status."""
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout=120)


@pytest.fixture(scope="session")
def server() -> ServerProcess:
    """One real server for the test session (started on first use; ~10 s while its Lean warms up)."""
    proc = ServerProcess().start()
    proc.wait_ready()
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        proc.stop()


def train_two_trl_steps(tmp_path, model, tokenizer, dataset, **trainer_args):
    """Two steps of TRL's real `GRPOTrainer` on the CPU (two prompts a step); `trainer_args`: reward_funcs,
    environment_factory, or GRPOConfig fields (`config_*`)."""
    import warnings

    from trl import GRPOConfig, GRPOTrainer

    fields = {k.removeprefix("config_"): v for k, v in trainer_args.items() if k.startswith("config_")}
    config = GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=2,
        learning_rate=1e-3,
        beta=0.0,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        seed=0,
        **fields,
    )
    others = {k: v for k, v in trainer_args.items() if not k.startswith("config_")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = GRPOTrainer(model=model, processing_class=tokenizer, args=config, train_dataset=dataset, **others)
        trainer.train()
    return trainer


def wait_until(predicate: Callable[[], bool], seconds: float, every: float = 0.2) -> bool:
    """Whether `predicate()` came true within `seconds` (asked every `every` seconds)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False
