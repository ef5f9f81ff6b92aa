"""Lean source text, in one place: a source's imports, where its header ends, the line that
puts a command under a heartbeat limit. (How Lean says a declaration uses `sorry` is
`types.Message.uses_sorry`.)"""

from __future__ import annotations

from dataclasses import dataclass

from leangym.lean_project.lexer import SETUP_COMMANDS, Token, tokenize


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
            imports += [t.name for t in command[1:] if t.kind == "ident"]
        header_end, i = command[-1].end, j
    whole = Split("", source, 0, tuple(imports))
    cut = source.find("\n", header_end)
    if header_end == 0 or cut == -1 or any(t.unterminated for t in tokens) or _straddles(tokens, cut):
        return whole
    return Split(source[:cut], source[cut + 1 :], source.count("\n", 0, cut + 1), tuple(imports))


def _straddles(tokens: list[Token], offset: int) -> bool:
    return any(t.start < offset < t.end for t in tokens)


def imports_of(source: str) -> tuple[str, ...]:
    """Module names of the leading `import X` commands (comments skipped)."""
    code = [t for t in tokenize(source) if t.kind != "comment"]
    names: list[str] = []
    i = 0
    while i + 1 < len(code) and code[i].kind == "ident" and code[i].text == "import":
        names.append(code[i + 1].name)
        i += 2
    return tuple(names)


def heartbeat_limit(max_heartbeats: int | None) -> str:
    """The line that puts the next command under `max_heartbeats` ("" for None: Lean's own limit)."""
    return "" if max_heartbeats is None else f"set_option maxHeartbeats {int(max_heartbeats)} in\n"
