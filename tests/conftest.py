"""Shared fixtures. Every test that judges a proof runs the real embedded Lean.

An embedded Lean session costs ~7 s to start and then milliseconds a source, so the whole
test session shares one runtime (its sessions stay up between calls), and each test module
sends what it needs to Lean in as few batches as it can (module-scoped fixtures).
"""

from __future__ import annotations

import pytest

from leangym.lean_project import LeanRuntime, get_runtime


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
