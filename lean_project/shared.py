"""The process's shared Lean runtimes: one per runtime name, and the rule for when it closes.

Environments, the trainer, the evaluator and the reward functions all verify through
`rewards.get_verifier`, and every verifier it makes for one runtime name (whatever its policy)
checks with that name's one shared runtime: so their proofs can share a batch and the same
warm Lean processes. This registry is the only place those runtimes live:

* `shared_runtime("embedded")` is the shared `RuntimeSlot` for a name; its `get()` makes the runtime
  on first use (`get_runtime(name)`), and again after a close.
* Users that say when they are done take a *hold* (`hold()`, then `release()`): the
  environments, one each. When the last hold is released the runtime closes and its Lean
  processes end, unless the runtime is *pinned*.
* Users that never say (the trainer, the evaluator, reward functions called batch after
  batch) *pin* it (`pin()`, which `get_verifier` does for them): the runtime then stays up
  until the process exits, or until someone calls `close()` explicitly. So closing the last
  environment never ends Lean under a trainer that still verifies with it.
* `shared_runtime(my_runtime)` makes a runtime you built the shared one for its name. It stays
  yours: the registry never closes it, however its holds come and go.
"""

from __future__ import annotations

import threading

from leangym.lean_project import get_runtime
from leangym.lean_project.runtime import LeanRuntime

_LOCK = threading.Lock()
_SHARED: dict[str, RuntimeSlot] = {}


class RuntimeSlot:
    """A runtime made on first use (`get_runtime(name)`) or given, with the holds and pin that decide its close.

    The registry keeps one per runtime name (`shared_runtime`); a `Verifier` that is not shared keeps
    its runtime in a private one (never held, never pinned).
    """

    def __init__(self, name: str, runtime: LeanRuntime | None = None):
        self.name = name
        self.owned = runtime is None  # a given runtime is its creator's to close
        self.holds = 0
        self.pinned = False
        self._runtime = runtime
        self._lock = threading.Lock()

    def get(self) -> LeanRuntime:
        """The runtime, made now if there is none (raises `LeanRuntimeError` when it is not installed)."""
        with self._lock:
            if self._runtime is None:
                self._runtime = get_runtime(self.name)
            return self._runtime

    def wraps(self, runtime: LeanRuntime) -> bool:
        """Whether this slot holds `runtime` now (a closed slot holds none)."""
        return self._runtime is runtime

    def hold(self) -> None:
        """Take a hold: the runtime stays up at least until the matching `release`."""
        with self._lock:
            self.holds += 1

    def release(self) -> None:
        """Give a hold back; the last one closes the runtime unless it is pinned (no hold: nothing to do)."""
        with self._lock:  # decided and done under one lock: no `hold` or `pin` can slip in between
            if self.holds == 0:
                return
            self.holds -= 1
            if self.holds == 0 and not self.pinned:
                self._close_locked()

    def pin(self) -> None:
        """Keep the runtime up for the rest of the process (or until `close`), whatever the holds do."""
        with self._lock:
            self.pinned = True

    def close(self) -> None:
        """Close the runtime now if the registry made it (its Lean processes end; the next `get` makes a new one)."""
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        if self.owned and self._runtime is not None:
            self._runtime.close()
            self._runtime = None


def shared_runtime(runtime: LeanRuntime | str = "embedded") -> RuntimeSlot:
    """The process's `RuntimeSlot` for a runtime name; a `LeanRuntime` becomes the shared one for its name.

    Installing a runtime replaces the entry (a new slot, which `get_verifier` notices).
    """
    with _LOCK:
        if isinstance(runtime, str):
            return _SHARED.setdefault(runtime, RuntimeSlot(runtime))
        entry = _SHARED.get(runtime.name)
        if entry is None or not entry.wraps(runtime):
            entry = _SHARED[runtime.name] = RuntimeSlot(runtime.name, runtime)
        return entry
