"""Text spaces that hold Lean: any Unicode text up to a length.

Gymnasium's `spaces.Text` accepts only the characters of its charset (alphanumeric by
default), and Lean is full of `∀ ⊢ ℕ ⟨⟩ ⁻¹ …`. `LeanText` keeps a charset (for `sample`,
which `check_env` calls, and for masks) but `contains` accepts every character: a proof or a
goal is valid whatever symbols it uses. `sample` draws short strings (at most
`sample_length` characters) from a Lean-like alphabet, since a 60,000-character random
"proof" only costs Lean time.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium import spaces

# ASCII and the Unicode symbols Lean and Mathlib use most; only `sample` and masks use it.
LEAN_CHARSET = (
    string.ascii_letters + string.digits + string.punctuation + " \n"
    "∀∃λ→←↔¬∧∨≤≥≠⊢≡∣∈∉∪∩⊆⊂×∘·√∑∏∞ℕℤℚℝℂαβγδεζηθικμνξπρστφχψωΓΔΘΛΣΦΨΩ⟨⟩⁻¹⁰²³₀₁₂₃ᵢ‹›⦃⦄⌊⌋⌈⌉"
)


class LeanText(spaces.Text):
    """Unicode text of `min_length`..`max_length` characters (see the module docstring)."""

    def __init__(
        self,
        max_length: int,
        *,
        min_length: int = 0,
        sample_length: int = 64,
        seed: int | np.random.Generator | None = None,
    ):
        super().__init__(max_length, min_length=min_length, charset=LEAN_CHARSET, seed=seed)
        self.sample_length = max(min_length, min(sample_length, max_length))

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        if mask is None and probability is None:
            length = int(self.np_random.integers(self.min_length, self.sample_length + 1))
            chars = self.np_random.choice(len(self.character_list), size=length)
            return "".join(self.character_list[i] for i in chars)
        return super().sample(mask=mask, probability=probability)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.min_length}, {self.max_length}, unicode)"


def text_dict(**max_lengths: int) -> spaces.Dict:
    """A `Dict` of `LeanText`, one per key, in the given order."""
    return spaces.Dict({key: LeanText(n) for key, n in max_lengths.items()}, sort_keys=False)
