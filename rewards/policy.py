"""What the verifier accepts: the limits and the few constructs a researcher may choose to allow."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

STANDARD_AXIOMS = ("propext", "Classical.choice", "Quot.sound")
# Axioms a proof gains by trusting Lean's compiler (`native_decide`, `decide +native`, `bv_decide`).
COMPILER_AXIOMS = ("Lean.ofReduceBool", "Lean.ofReduceNat", "Lean.trustCompiler")


@dataclass(frozen=True)
class Policy:
    """The verifier's rules. Every field is part of the cache key, so changing one re-checks.

    The defaults are the strict reading of "reward 1 means the Lean kernel accepted a proof of
    exactly this statement using only the standard axioms".
    """

    max_heartbeats: int = 400_000
    """Lean's `maxHeartbeats` for the proof (`set_option maxHeartbeats N in` before the theorem;
    the header's own setting is overridden). 0 means no limit: then only `timeout` stops a proof."""

    timeout: float = 60.0
    """Wall-clock seconds one proof may take inside a Lean run (start-up not counted)."""

    max_bytes: int = 65_536
    """Largest submission, in UTF-8 bytes, before anything else is looked at."""

    allow_native_decide: bool = False
    """Accept `native_decide`, `decide +native`, `bv_decide` and `Lean.ofReduceBool`: proofs that
    trust Lean's compiler, not only its kernel (their axioms are then allowed by the audit)."""

    allow_whole_file: bool = True
    """Accept a whole Lean file that restates the trusted header and statement; else bodies only."""

    allowed_options: tuple[str, ...] = (
        "maxRecDepth",
        "maxHeartbeats",
        "synthInstance.maxHeartbeats",
        "synthInstance.maxSize",
        "pp.*",
        "trace.*",
        "linter.*",
    )
    """Options the body may set with `set_option NAME VALUE in …` (`pp.*`: every option under
    `pp`). They change how far Lean searches or what it prints, never what it accepts: the
    heartbeat options only up to `max_heartbeats` (never 0, "no limit"), and `debug.*` (which
    holds `debug.skipKernelTC`) is refused whatever this list says."""

    audit: bool = True
    """A runtime with no judge (a bare pool of Lean REPLs): re-check each proved candidate with the
    kernel in a separate Lean run (`rewards/audit.py`). No effect where a judge decides (both
    runtimes `get_runtime` makes)."""

    @property
    def allowed_axioms(self) -> frozenset[str]:
        return frozenset(STANDARD_AXIOMS + (COMPILER_AXIOMS if self.allow_native_decide else ()))

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> Policy:
        """A policy from JSON fields (a server request), each checked against its default's type."""
        defaults = asdict(cls())
        unknown = sorted(set(fields) - set(defaults))
        if unknown:
            raise ValueError(f"unknown policy field(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, value in fields.items():
            default = defaults[name]
            if isinstance(default, tuple):
                ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
                value = tuple(value) if ok else value
            elif isinstance(default, bool):
                ok = isinstance(value, bool)
            else:  # int or float: a number, not a bool
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                ok = ok and (isinstance(default, float) or float(value).is_integer()) and value >= 0
                value = type(default)(value) if ok else value
            if not ok:
                raise ValueError(f"policy field {name!r} must be like {default!r}, not {value!r}")
            values[name] = value
        return cls(**values)

    def key(self) -> str:
        """A stable text form, for cache keys."""
        return json.dumps(asdict(self), sort_keys=True)
