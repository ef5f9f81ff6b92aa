"""Lean source text, in one place: its tokens, a source's imports, where its header ends, the
line that puts a command under a heartbeat limit. (How Lean says a declaration uses `sorry` is
`types.Message.uses_sorry`.)

The tokens come from a small Lean 4 lexer, enough to tell code from comments and strings.
Batching (which sources may share a Lean run) and the verifier (which constructs a proof
body may use) both ask questions like "does this text *use* `instance`?". Grepping gets
that wrong both ways: a keyword inside a comment or string is not used, and a nested
comment or an interpolated string can hide or reveal code. The lexer follows Lean's
rules for those cases:

* line comments `--`, block comments `/- … -/` (nested, including doc comments);
* string literals with escapes, raw strings `r#"…"#`, and interpolated strings
  (`s!"…{code}…"`, `m!`, `f!`), whose `{…}` parts are lexed as code;
* character literals `'a'` (but `h'` is an identifier);
* identifiers with dots, `«escaped parts»` and trailing `!`/`?`, plus numbers and symbols.

It never raises: text it cannot classify becomes a one-character symbol, and an
unterminated comment or string is reported through `Token.unterminated`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

TokenKind = Literal["ident", "number", "string", "char", "comment", "symbol"]


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    start: int  # offset into the source (code points)
    end: int
    unterminated: bool = False

    @property
    def name(self) -> str:
        """An identifier's name with `«»` escapes removed (e.g. `«sorry»Ax` -> `sorryAx`)."""
        return self.text.replace("«", "").replace("»", "")


# Words that start (or modify) a command. None of them can occur inside a proof term or
# tactic block, so in a body each one means the body tries to leave its declaration.
COMMAND_WORDS = frozenset({
    "theorem", "lemma", "def", "abbrev", "instance", "axiom", "example", "structure", "class",
    "inductive", "coinductive", "opaque", "mutual", "namespace", "section", "end", "universe", "variable",
    "notation", "notation3", "infix", "infixl", "infixr", "prefix", "postfix", "macro", "macro_rules",
    "syntax", "declare_syntax_cat", "elab_rules", "attribute", "export", "import", "initialize",
    "builtin_initialize", "deriving", "omit", "include", "private", "protected", "noncomputable",
    "partial", "nonrec", "local", "scoped", "public", "meta", "module", "prelude", "alias",
    "irreducible_def", "add_decl_doc", "register_simp_attr", "register_option", "simproc", "dsimproc",
    "grind_pattern", "unif_hint", "library_note", "assert_not_exists",
})  # fmt: skip

# Commands that set up a file and declare nothing. `open` and `set_option` are not command
# words: a proof may hold `open X in` and `set_option … in`.
SETUP_COMMANDS = frozenset({"import", "open", "set_option", "universe"})
# What a problem's header may hold: the setup commands and those that open or close a scope.
HEADER_COMMANDS = SETUP_COMMANDS | frozenset({"variable", "section", "namespace", "end", "noncomputable"})
# The commands that state a theorem.
DECLARATION_KEYWORDS = frozenset({"theorem", "lemma", "example"})


def starts_command(line: str) -> bool:
    """Does `line` (at column 0) begin a new command: a command word, an attribute, `#…` or a comment?"""
    tokens = tokenize(line)
    if not tokens:
        return False
    first, second = tokens[0], tokens[1].text if len(tokens) > 1 else ""
    attribute = first.text == "@" and second == "["  # `@[simp] theorem …`, not `@Nat.le_trans …`
    return first.kind == "comment" or first.text == "#" or attribute or first.name in COMMAND_WORDS | SETUP_COMMANDS


# Characters that may start (and continue) an identifier, following Lean's `isLetterLike`.
_GREEK_EXCLUDED = {"λ", "Π", "Σ"}


def _is_letter_like(c: str) -> bool:
    o = ord(c)
    return (
        (c.isalpha() and (not (0x370 <= o <= 0x3FF) or c not in _GREEK_EXCLUDED))  # Greek except λΠΣ
        or 0x3CA <= o <= 0x3FB  # Coptic
        or 0x1F00 <= o <= 0x1FFE  # polytonic Greek
        or 0x2100 <= o <= 0x214F  # letter-like block (ℕ is excluded by Lean; harmless here)
        or 0x1D49C <= o <= 0x1D59F  # script, double-struck, fraktur letters
    )


def _is_sub_script(c: str) -> bool:
    o = ord(c)
    return 0x2080 <= o <= 0x208C or 0x1D62 <= o <= 0x1D6A or o == 0x2C7C


def _is_id_first(c: str) -> bool:
    return c == "_" or _is_letter_like(c)


def _is_id_rest(c: str) -> bool:
    return _is_id_first(c) or c.isdigit() or c in "'!?" or _is_sub_script(c)


_INTERPOLATION_PREFIXES = ("s!", "m!", "f!")


def tokenize(src: str) -> list[Token]:
    """Every token of `src` except whitespace, in order."""
    return list(_scan(src, 0, len(src)))


def code_only(tokens: Iterable[Token]) -> list[Token]:
    """The tokens that are code: comments, strings and characters left out."""
    return [t for t in tokens if t.kind in ("ident", "number", "symbol")]


def code_tokens(src: str) -> list[Token]:
    """The tokens of `src` that are code (`code_only`)."""
    return code_only(tokenize(src))


def _scan(src: str, i: int, stop: int) -> Iterator[Token]:
    """Scan `src[i:stop]`."""
    while i < stop:
        c = src[i]
        if c.isspace():
            i += 1
            continue
        if src.startswith("--", i):
            j = src.find("\n", i)
            j = stop if j == -1 or j > stop else j
            yield Token("comment", src[i:j], i, j)
            i = j
            continue
        if src.startswith("/-", i):
            j, ok = _block_comment_end(src, i, stop)
            yield Token("comment", src[i:j], i, j, unterminated=not ok)
            i = j
            continue
        if c == '"' or (c == "r" and _raw_string_start(src, i)):
            j, ok = _string_end(src, i, stop)
            yield Token("string", src[i:j], i, j, unterminated=not ok)
            i = j
            continue
        if any(src.startswith(p + '"', i) for p in _INTERPOLATION_PREFIXES):
            tokens, i = _interpolated(src, i, stop)
            yield from tokens
            continue
        if c == "'" and (tok := _char_literal(src, i, stop)) is not None:
            yield tok
            i = tok.end
            continue
        if _is_id_first(c) or c == "«":
            j = _ident_end(src, i, stop)
            text = src[i:j]
            yield Token("ident", text, i, j, unterminated=text.count("«") > text.count("»"))
            i = j
            continue
        if c.isdigit():
            j = i + 1
            while j < stop and (src[j].isalnum() or src[j] in "._"):
                j += 1
            yield Token("number", src[i:j], i, j)
            i = j
            continue
        yield Token("symbol", c, i, i + 1)
        i += 1


def _block_comment_end(src: str, i: int, stop: int) -> tuple[int, bool]:
    depth, j = 0, i
    while j < stop:
        if src.startswith("/-", j):
            depth, j = depth + 1, j + 2
        elif src.startswith("-/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j, True
        else:
            j += 1
    return stop, False


def _raw_string_start(src: str, i: int) -> bool:
    j = i + 1
    while j < len(src) and src[j] == "#":
        j += 1
    prev_is_ident = i > 0 and _is_id_rest(src[i - 1])
    return j < len(src) and src[j] == '"' and not prev_is_ident


def _string_end(src: str, i: int, stop: int) -> tuple[int, bool]:
    if src[i] == "r":  # raw string: r#"..."# with the same number of hashes
        j = i + 1
        while src[j] == "#":
            j += 1
        closing = '"' + "#" * (j - i - 1)
        k = src.find(closing, j + 1, stop)
        return (k + len(closing), True) if k != -1 else (stop, False)
    j = i + 1
    while j < stop:
        if src[j] == "\\":
            j += 2
        elif src[j] == '"':
            return j + 1, True
        else:
            j += 1
    return stop, False


def _interpolated(src: str, i: int, stop: int) -> tuple[list[Token], int]:
    """Tokens of `s!"…"`: literal parts as strings, `{…}` parts as code; and the end offset."""
    tokens = [Token("symbol", src[i : i + 2], i, i + 2)]
    part = j = i + 2  # `part` starts the literal text not yet emitted
    j += 1  # past the opening quote
    while j < stop:
        if src[j] == "\\":
            j += 2
        elif src[j] == "{":
            tokens.append(Token("string", src[part : j + 1], part, j + 1))
            close = _closing_brace(src, j + 1, stop)
            tokens.extend(_scan(src, j + 1, close))
            part = j = close
        elif src[j] == '"':
            tokens.append(Token("string", src[part : j + 1], part, j + 1))
            return tokens, j + 1
        else:
            j += 1
    tokens.append(Token("string", src[part:stop], part, stop, unterminated=True))
    return tokens, stop


def _closing_brace(src: str, j: int, stop: int) -> int:
    """Offset of the `}` that closes an interpolation whose code starts at `j`."""
    depth = 0
    for tok in _scan(src, j, stop):
        if tok.kind == "symbol" and tok.text == "{":
            depth += 1
        elif tok.kind == "symbol" and tok.text == "}":
            if depth == 0:
                return tok.start
            depth -= 1
    return stop


def _char_literal(src: str, i: int, stop: int) -> Token | None:
    if i > 0 and _is_id_rest(src[i - 1]):
        return None  # `h'` is part of an identifier, handled there
    if i + 2 < stop and src[i + 1] == "\\":
        k = src.find("'", i + 2, min(stop, i + 12))
        return Token("char", src[i : k + 1], i, k + 1) if k != -1 else None
    if i + 2 < stop and src[i + 2] == "'":
        return Token("char", src[i : i + 3], i, i + 3)
    return None


def _ident_end(src: str, i: int, stop: int) -> int:
    j = i
    while j < stop:
        if src[j] == "«":
            k = src.find("»", j + 1, stop)
            j = stop if k == -1 else k + 1
        elif _is_id_first(src[j]):
            j += 1
            while j < stop and _is_id_rest(src[j]):
                j += 1
        else:
            break
        # A dot continues the name only when another name part follows it.
        if j + 1 < stop and src[j] == "." and (_is_id_first(src[j + 1]) or src[j + 1] == "«"):
            j += 1
            continue
        break
    return j


def normalize_name(name: str) -> str:
    """Canonical form of an identifier for comparisons: NFKC, `«»` removed, lookalikes mapped.

    Full-width letters fold under NFKC; Cyrillic and Greek letters that look Latin do not,
    so the common ones are mapped by hand.
    """
    folded = unicodedata.normalize("NFKC", name.replace("«", "").replace("»", ""))
    return folded.translate(_CONFUSABLES)


_CONFUSABLES = str.maketrans(
    {
        # Cyrillic
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s",
        "і": "i", "ј": "j", "һ": "h", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g",
        "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
        "С": "C", "Т": "T", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J",
        # Greek
        "ο": "o", "α": "a", "ν": "v", "ι": "i", "κ": "k", "τ": "t", "ρ": "p",
        "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
        "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
        # Latin lookalikes and invisible characters
        "ı": "i", "ȷ": "j", "\u200b": "", "\u200c": "", "\u200d": "", "\u2060": "", "\ufeff": "",
    }
)  # fmt: skip


# -- a source's header and options ----------------------------------------------------------


@dataclass(frozen=True)
class Split:
    """A source cut into the header its group shares and the body checked on top of it."""

    header: str  # "" when the source is sent whole
    body: str
    line_offset: int  # lines of the source before the body's first line
    imports: tuple[str, ...] = ()


def split_header(source: str) -> Split:
    """Cut `source` after its leading `import`/`open`/`set_option`/`universe` commands (not
    after an `open X in`, which scopes what follows): the header a group of sources shares, and
    the body checked on top of it. Sent whole ("" header) when nothing can be cut cleanly at a
    line end."""
    tokens = tokenize(source)
    code = [t for t in tokens if t.kind != "comment"]
    starts_line = [t.start == 0 or source[t.start - 1] == "\n" for t in code]
    imports: list[str] = []
    header_end, i = 0, 0
    while i < len(code) and starts_line[i] and code[i].kind == "ident" and code[i].text in SETUP_COMMANDS:
        j = i + 1
        while j < len(code) and not starts_line[j]:  # a command runs until a token at column 0
            j += 1
        command = code[i:j]
        if any(t.kind == "ident" and t.text == "in" for t in command):  # `open X in …` scopes what follows
            break
        if command[0].text == "import":
            imports += [t.name for t in command[1:] if t.kind == "ident" and t.text != "import"]
        header_end, i = command[-1].end, j
    whole = Split("", source, 0, tuple(imports))
    cut = source.find("\n", header_end)
    if header_end == 0 or cut == -1 or any(t.unterminated for t in tokens) or _straddles(tokens, cut):
        return whole
    return Split(source[:cut], source[cut + 1 :], source.count("\n", 0, cut + 1), tuple(imports))


def _straddles(tokens: list[Token], offset: int) -> bool:
    return any(t.start < offset < t.end for t in tokens)


def imports_of(source: str) -> tuple[str, ...]:
    """Module names of the `import` commands of the source's header (`split_header`; comments skipped)."""
    return split_header(source).imports


def heartbeat_limit(max_heartbeats: int | None) -> str:
    """The line that puts the next command under `max_heartbeats` ("" for None: Lean's own limit)."""
    return "" if max_heartbeats is None else f"set_option maxHeartbeats {int(max_heartbeats)} in\n"
