"""Which constructs a proof body uses that a proof of *this* statement must not.

The body is lexed (`leangym.lean_project.source`), not grepped: a word inside a comment or a string
is not a construct, while an interpolated string's `{…}` is code, and every identifier is
compared after Unicode normalisation (`normalize_name`: full-width forms, Cyrillic and Greek
lookalikes, `«»` escapes), dotted part by dotted part (`Lean.ofReduceBool`, `ofReduceBool`
after `open Lean in`). Each finding carries a stable reason code:

* `escapes_declaration`: an unterminated comment, string or `«name»`, which would swallow
  the trusted text after the body;
* `extra_declarations`: a command (`theorem`, `axiom`, `instance`, `notation`, `macro`,
  `attribute`, `@[…]`, `#eval`, `end`, `namespace`, `open` without `in`, …): the body must
  not leave its declaration;
* `sorry`: `sorry`, `admit`, `sorryAx`;
* `forbidden_construct:<what>`: compiler-trusting decision procedures (`native_decide`,
  `decide +native`, `bv_decide`, `Lean.ofReduceBool`, `Lean.trustCompiler`), code that runs
  at elaboration (`run_tac`, `run_elab`, `run_meta`, `by_elab`, `elab`), `unsafe`,
  `implemented_by`, `extern`, and `set_option` of an option the policy does not allow
  (`Policy.allowed_options`: search limits and printing, never `debug.*`).

The list errs on the side of refusing: a prover loses nothing it needs for a proof.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from leangym.lean_project.source import COMMAND_WORDS, Token, code_only, normalize_name, tokenize
from leangym.rewards.policy import Policy

SORRY_WORDS = frozenset({"sorry", "admit", "sorryAx"})

# Dotted-name parts that make a proof trust Lean's compiler, by the reason code they map to.
COMPILER_WORDS = {
    "native_decide": "native_decide",
    "native": "native_decide",  # `decide +native`, `decide (config := { native := true })`
    "ofReduceBool": "ofReduceBool",
    "ofReduceNat": "ofReduceBool",
    "reduceBool": "ofReduceBool",
    "reduceNat": "ofReduceBool",
    "trustCompiler": "trustCompiler",
    "bv_decide": "bv_decide",
    "bv_check": "bv_decide",
}

# Metaprogramming and escape hatches from the kernel, refused whatever the policy.
FORBIDDEN_WORDS = frozenset({
    "run_tac", "run_elab", "run_meta", "run_cmd", "by_elab", "elab", "unsafe", "implemented_by", "extern",
})  # fmt: skip


@dataclass(frozen=True)
class Finding:
    """One construct the body may not use."""

    reason: str  # a stable code, e.g. "sorry", "forbidden_construct:native_decide"
    text: str  # the offending source text
    offset: int  # where it starts in the body (code points)


def screen(body: str, policy: Policy, tokens: Sequence[Token] | None = None) -> list[Finding]:
    """Every finding in `body`, in order of appearance (empty: the body may go to Lean).

    `tokens`: the body's, where the caller has lexed it already (`Submission.tokens`)."""
    tokens = tokenize(body) if tokens is None else tokens
    findings = [Finding("escapes_declaration", t.text[:20], t.start) for t in tokens if t.unterminated]
    code = code_only(tokens)
    allowed: set[int] = set()  # `scoped` right after an `open … in`
    for i, tok in enumerate(code):
        nxt = code[i + 1] if i + 1 < len(code) else None
        touching = nxt is not None and nxt.start == tok.end
        if tok.kind == "symbol":
            command = tok.text == "#" and touching and nxt.kind == "ident"  # `#eval`, `#exit`, `#print`
            attribute = tok.text == "@" and touching and nxt.text == "["  # `@[simp]`
            if command or attribute:
                findings.append(Finding("extra_declarations", tok.text + nxt.text, tok.start))
            continue
        if tok.kind != "ident" or i in allowed:
            continue
        name = normalize_name(tok.text)
        reason = _word_reason(name, policy)
        if name == "open":
            if _scoped_open(code, i):
                allowed.add(i + 1)
            else:
                reason = "extra_declarations"
        if name == "set_option" and not _allowed_option(code, i, policy):
            reason = "forbidden_construct:set_option"
        if reason is not None:
            findings.append(Finding(reason, tok.text, tok.start))
    return findings


def _word_reason(name: str, policy: Policy) -> str | None:
    if name in COMMAND_WORDS:
        return "extra_declarations"
    for part in name.split("."):
        if part in SORRY_WORDS:
            return "sorry"
        if part in FORBIDDEN_WORDS:
            return f"forbidden_construct:{part}"
        if part in COMPILER_WORDS and not policy.allow_native_decide:
            return f"forbidden_construct:{COMPILER_WORDS[part]}"
    return None


def _scoped_open(code: list[Token], i: int) -> bool:
    """`open A B in …`, `open A renaming x → y in …` (a tactic or term) rather than the `open` command."""
    for tok in code[i + 1 : i + 40]:
        if tok.text == "in":
            return True
        if tok.kind != "ident" and tok.text not in ("(", ")", "→", "->", ","):
            return False
    return False


_HEARTBEAT_OPTIONS = frozenset({"maxHeartbeats", "synthInstance.maxHeartbeats"})


def _allowed_option(code: list[Token], i: int, policy: Policy) -> bool:
    """`set_option NAME VALUE in …` with NAME allowed by the policy, and a heartbeat VALUE within its cap."""
    if i + 3 >= len(code) or code[i + 1].kind != "ident" or code[i + 3].text != "in":
        return False
    name, value = normalize_name(code[i + 1].text), code[i + 2].text
    if name.startswith("debug.") or not any(
        name == pattern or (pattern.endswith(".*") and name.startswith(pattern[:-1]))
        for pattern in policy.allowed_options
    ):
        return False
    if name in _HEARTBEAT_OPTIONS:
        cap = policy.max_heartbeats
        return value.isdigit() and int(value) > 0 and (cap == 0 or int(value) <= cap)
    return True


def reasons_of(findings: list[Finding]) -> tuple[str, ...]:
    """The distinct reason codes, in order of first appearance."""
    return tuple(dict.fromkeys(f.reason for f in findings))


def describe(findings: list[Finding], body: str) -> str:
    """A short human-readable account: what, and on which line of the body."""
    parts = []
    for f in findings[:5]:
        line = body.count("\n", 0, f.offset) + 1
        parts.append(f"`{f.text}` ({f.reason}, line {line})")
    more = f" and {len(findings) - 5} more" if len(findings) > 5 else ""
    return "the proof uses " + ", ".join(parts) + more
