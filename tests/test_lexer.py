"""The Lean lexer: code versus comments and strings (no Lean needed)."""

from __future__ import annotations

import pytest

from leangym.lean_project.source import code_tokens, normalize_name, tokenize


def idents(src: str) -> list[str]:
    return [t.name for t in code_tokens(src) if t.kind == "ident"]


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("exact foo -- sorry", ["exact", "foo"]),
        ("/- sorry /- nested sorry -/ still comment -/ rfl", ["rfl"]),
        ('exact "sorry" ++ "admit"', ["exact"]),
        ('s!"value {sorry} here"', ["sorry"]),  # interpolation is code
        ('m!"{x} and {f "y" z}"', ["x", "f", "z"]),
        ("h' x'' Nat.succ_le.mp «sorry»", ["h'", "x''", "Nat.succ_le.mp", "sorry"]),
        ("'a' '\\n' h", ["h"]),  # character literals
        ('r#"raw " sorry"# admit', ["admit"]),  # raw strings with hashes
        ("simp? exact! foo.1", ["simp?", "exact!", "foo"]),
        ("α β x₁ ℕ", ["α", "β", "x₁", "ℕ"]),
    ],
)
def test_code_identifiers(src: str, expected: list[str]) -> None:
    assert idents(src) == expected


def test_unterminated_tokens_are_flagged() -> None:
    assert tokenize("/- open")[-1].unterminated
    assert tokenize('"open')[-1].unterminated
    assert tokenize("«open")[-1].unterminated
    assert not any(t.unterminated for t in tokenize('/- a -/ "b" «c»'))


def test_offsets_cover_the_source() -> None:
    src = "theorem t : 1 = 1 := by\n  rfl -- done"
    for tok in tokenize(src):
        assert src[tok.start : tok.end] == tok.text


@pytest.mark.parametrize(
    ("lookalike", "canonical"),
    [
        ("ｓｏｒｒｙ", "sorry"),  # full-width (NFKC)
        ("ѕоrrу", "sorry"),  # Cyrillic lookalikes
        ("n\u200bative_decide", "native_decide"),  # zero-width space
        ("«sorry»Ax", "sorryAx"),
        ("Lean.οfReduceBool", "Lean.ofReduceBool"),  # Greek omicron
    ],
)
def test_normalize_name(lookalike: str, canonical: str) -> None:
    assert normalize_name(lookalike) == canonical
