"""What the verifier says about one submission, and the reward that follows from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from leangym.lean_project.types import Message

Outcome = Literal["proved", "rejected", "error"]


@dataclass(frozen=True)
class Verdict:
    """`proved`, `rejected` (with stable reason codes) or `error` (the verifier could not decide).

    `error` is never a judgement of the proof: Lean crashed, the runtime is missing, the header
    needs another runtime. Trainers retry those instead of scoring them 0.
    """

    outcome: Outcome
    reasons: tuple[str, ...] = ()  # e.g. ("lean_error",), ("forbidden_construct:native_decide",)
    messages: tuple[Message, ...] = ()  # Lean's, positions relative to the submitted proof body
    seconds: float = 0.0
    detail: str = ""  # human-readable explanation for `error` (and for some rejections)
    cached: bool = field(default=False, compare=False)

    @property
    def reward(self) -> float:
        return 1.0 if self.outcome == "proved" else 0.0

    @property
    def proved(self) -> bool:
        return self.outcome == "proved"

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": self.outcome,
            "reward": self.reward,
            "reasons": list(self.reasons),
            "messages": [m.to_json() for m in self.messages],
            "seconds": round(self.seconds, 3),
            **({"detail": self.detail} if self.detail else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Verdict:
        """The verdict `to_json` wrote (a line of `leangym verify`, an answer of a leangym server)."""
        return cls(
            d["verdict"],
            tuple(d.get("reasons", ())),
            tuple(Message.from_json(m) for m in d.get("messages", ())),
            float(d.get("seconds", 0.0)),
            d.get("detail", ""),
        )
