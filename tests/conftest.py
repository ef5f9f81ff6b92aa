"""Shared fixtures. Every test that judges a proof runs the real embedded Lean.

An embedded Lean session costs ~27 s to start and then milliseconds a source, so the whole
test session shares one runtime (its sessions stay up between calls), and each test module
sends what it needs to Lean in as few batches as it can (module-scoped fixtures).
"""

from __future__ import annotations

import pytest

from leangym.lean import LeanRuntime, get_runtime


@pytest.fixture(scope="session")
def lean() -> LeanRuntime:
    """The embedded runtime, shared by the whole test session (installed by `make test`)."""
    runtime = get_runtime("embedded", timeout=60.0)
    runtime.prewarm()
    yield runtime
    runtime.close()
