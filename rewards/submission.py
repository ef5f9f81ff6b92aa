"""From a submitted text to the proof body the verifier will check, or a reason to refuse it.

Provers emit two forms, and both are read here:

* a proof **body** that continues the problem's `formal_statement` (`  omega`, `by simp`);
* a **whole file** (often inside a Markdown fence) that restates the header and the theorem.

Only the body is ever taken from a submission. For a whole file, everything before the body
must be the trusted header and statement, compared as Lean tokens (so whitespace, line
endings and comments do not matter, but every identifier, number and symbol does); the
file Lean checks is then rebuilt from the trusted text and the body (`assembly.py`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from leangym.lean_project.source import (
    COMMAND_WORDS,
    DECLARATION_KEYWORDS,
    HEADER_COMMANDS,
    Token,
    code_only,
    code_tokens,
    normalize_name,
    tokenize,
)
from leangym.rewards.policy import Policy
from leangym.rewards.problem import Problem


@dataclass(frozen=True)
class Rejection:
    """A submission refused before Lean sees it: stable reason codes and a sentence saying why."""

    reasons: tuple[str, ...]
    detail: str


@dataclass(frozen=True)
class Statement:
    """A problem's trusted `formal_statement`, parsed once."""

    text: str  # the statement, trailing whitespace removed
    head: str  # the statement up to and including its final `:=`
    head_tokens: tuple[str, ...]  # the code tokens of `head`, for comparing a restated theorem
    name: str | None  # the declared name (None for `example`)


@functools.lru_cache(maxsize=4096)  # a problem's statement is parsed once, not once per proof
def parse_statement(formal_statement: str) -> Statement:
    """Split a statement at its final `:=`. Raises ValueError unless it ends in `:=` or `:= by`."""
    text = formal_statement.rstrip()
    code = code_tokens(text)
    assign = _last_assign(code)
    rest = code[assign + 2 :] if assign is not None else []
    if assign is None or [t.text for t in rest] not in ([], ["by"]):
        raise ValueError("a formal_statement must end with `:=` or `:= by`")
    head_end = code[assign + 1].end
    head_tokens = tuple(t.text for t in code[: assign + 2])
    return Statement(text, text[:head_end], head_tokens, _declared_name(code))


def _last_assign(code: list[Token]) -> int | None:
    """Index of the `:` of the last `:=` (the lexer yields one-character symbols)."""
    for i in range(len(code) - 2, -1, -1):
        a, b = code[i], code[i + 1]
        if a.text == ":" and b.text == "=" and a.end == b.start:
            return i
    return None


def _declared_name(code: list[Token]) -> str | None:
    for i, tok in enumerate(code[:-1]):
        if tok.kind == "ident" and tok.text in ("theorem", "lemma"):
            return code[i + 1].text if code[i + 1].kind == "ident" else None
        if tok.text == "example":
            return None
    return None


@dataclass(frozen=True)
class Submission:
    """The proof body taken from a submission, and where it sits in the submitted text."""

    body: str
    form: Literal["body", "file"]
    line: int  # 1-based line of the submitted text where `body` starts
    column: int  # column (code points) where `body` starts
    tokens: tuple[Token, ...]  # the body's, lexed once for the screen and the verifier

    @property
    def code(self) -> list[Token]:
        """The body's tokens that are code (comments and strings left out)."""
        return code_only(self.tokens)


def decode(raw: str | bytes, policy: Policy) -> str | Rejection:
    """The submission as text with `\\n` line endings, or why it cannot be read at all."""
    if isinstance(raw, bytes):
        size = len(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            return Rejection(("bad_encoding",), f"not valid UTF-8: {e.reason} at byte {e.start}")
    else:
        text = raw
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as e:
            return Rejection(("bad_encoding",), f"not encodable as UTF-8: {e.reason} at character {e.start}")
    if size > policy.max_bytes:
        return Rejection(("too_large",), f"{size} bytes, more than the policy's max_bytes={policy.max_bytes}")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    for i, c in enumerate(text):
        if unicodedata.category(c) in ("Cc", "Cf") and c not in "\n\t":  # control, zero-width, bidi
            line = text.count("\n", 0, i) + 1
            return Rejection(("bad_encoding",), f"control or invisible character U+{ord(c):04X} on line {line}")
    return text


_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([\w+-]*)[^\n]*$", re.MULTILINE)
_LEAN_LANGS = {"", "lean", "lean4"}


def strip_fence(text: str) -> tuple[str, int]:
    """The content of the last Lean code fence (or the text itself) and its offset in `text`.

    An opening fence with no closing one (a generation cut off at its token limit) counts:
    its content runs to the end.
    """
    blocks: list[tuple[int, int]] = []
    opening: re.Match[str] | None = None
    for m in _FENCE.finditer(text):
        if opening is None:
            opening = m
        elif m.group(1)[0] == opening.group(1)[0] and len(m.group(1)) >= len(opening.group(1)) and not m.group(2):
            if opening.group(2).lower() in _LEAN_LANGS:
                blocks.append((opening.end() + 1, m.start()))
            opening = None
    if opening is not None and opening.group(2).lower() in _LEAN_LANGS:
        blocks.append((min(opening.end() + 1, len(text)), len(text)))
    if not blocks:
        return text, 0
    start, end = blocks[-1]
    return text[start:end], start


def read_submission(problem: Problem, statement: Statement, text: str) -> Submission | Rejection:
    """Take the proof body out of `text` (see the module docstring)."""
    content, offset = strip_fence(text)
    tokens = tokenize(content)
    code = code_only(tokens)
    if not _restates(code, statement):
        return _located(text, content, offset, "body", tokens)
    texts = [t.text for t in code]
    found = _find(texts, statement.head_tokens)
    if found is None:
        return Rejection(("statement_modified",), _first_difference(code, statement.head_tokens))
    before, header = texts[:found], [t.text for t in code_tokens(problem.header)]
    if before and before != header:
        starts_with_header = before[: len(header)] == header
        extra = before[len(header) :] if starts_with_header else before
        # A file that differs from the header only in header commands modifies the header; any
        # other command before the theorem adds declarations.
        adds = any(normalize_name(w) in COMMAND_WORDS - HEADER_COMMANDS or w in ("@", "#") for w in extra)
        what = "adds commands to" if adds else "differs from"
        return Rejection(
            ("extra_declarations" if adds else "header_modified",),
            f"the text before the theorem {what} the problem's header",
        )
    end = code[found + len(statement.head_tokens) - 1].end
    return _located(text, content[end:], offset + end, "file", tokenize(content[end:]))


def _restates(code: list[Token], statement: Statement) -> bool:
    """Does this text restate the theorem (a whole file) rather than continue it (a body)?

    A declaration of the problem's name counts, even under a lookalike spelling of it: the
    file is then compared with the statement, and a lookalike differs.
    """
    if code and code[0].text == "import":
        return True
    target = normalize_name(statement.name) if statement.name else None
    for i, tok in enumerate(code):
        if normalize_name(tok.text) in DECLARATION_KEYWORDS:
            following = normalize_name(code[i + 1].text) if i + 1 < len(code) else None
            if target is None or following == target:
                return True
    return False


def _find(texts: list[str], target: tuple[str, ...]) -> int | None:
    n = len(target)
    for i in range(len(texts) - n + 1):
        if tuple(texts[i : i + n]) == target:
            return i
    return None


def _first_difference(code: list[Token], target: tuple[str, ...]) -> str:
    """Say where a restated theorem first departs from the trusted statement."""
    starts = [i for i, t in enumerate(code) if t.text == target[0]]
    if not starts:
        return "the file does not restate the problem's theorem"
    best = max(starts, key=lambda i: _common_prefix(code[i:], target))
    k = _common_prefix(code[best:], target)
    found = code[best + k] if best + k < len(code) else None
    where = f"`{found.text}`" if found else "the end of the text"
    return f"the restated theorem differs from the problem's: expected `{target[k]}`, found {where}"


def _common_prefix(code: list[Token], target: tuple[str, ...]) -> int:
    k = 0
    while k < len(target) and k < len(code) and code[k].text == target[k]:
        k += 1
    return k


def _located(text: str, body: str, offset: int, form: Literal["body", "file"], tokens: list[Token]) -> Submission:
    """`body` (lexed as `tokens`), at `offset` of the submitted `text`, with that place as line and column."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1)
    return Submission(body, form, line, column, tuple(tokens))
