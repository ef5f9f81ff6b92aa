"""A theorem to prove, as a verifier trusts it: its header and its statement."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from leangym.lean_project.source import imports_of

_header_imports = functools.lru_cache(maxsize=1024)(imports_of)  # a set's few headers, asked once per proof


@dataclass(frozen=True)
class Problem:
    """One problem of a set, in the JSONL shape provers use (miniF2F, DeepSeek-Prover).

    `header` and `formal_statement` are trusted: the verifier re-assembles every file it
    checks from them and the submitted proof body, never from text around a submission.
    """

    name: str
    formal_statement: str  # `theorem name … :=` or `… := by`
    header: str = ""  # placed before the statement: imports, `set_option`, `open`
    informal_statement: str = ""  # miniF2F's `informal_prefix` (a doc comment), if any
    split: str = ""
    category: str = ""
    reference_proof: str | None = None  # a body known to be accepted, if the set has one
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)  # carried through

    @property
    def imports(self) -> tuple[str, ...]:
        return _header_imports(self.header)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Problem:
        """Read one JSONL row (`name`, `formal_statement`, optional `header`, `informal_prefix`, …)."""
        known = {"name", "formal_statement", "header", "informal_prefix", "split", "category", "reference_proof"}
        return cls(
            name=str(row["name"]),
            formal_statement=str(row["formal_statement"]).rstrip(),
            header=str(row.get("header") or ""),
            informal_statement=str(row.get("informal_prefix") or ""),
            split=str(row.get("split") or ""),
            category=str(row.get("category") or ""),
            reference_proof=row.get("reference_proof"),
            extra={k: v for k, v in row.items() if k not in known},
        )
