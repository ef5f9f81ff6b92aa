"""Many sources in one Lean run, none able to change how another elaborates.

Starting Lean costs seconds (about 20 s for the embedded runtime), checking a small proof
milliseconds, so sources are checked many to a file. Each source is placed in a scope of
its own:

    import …                        -- the group's imports (sources are grouped by imports)
    #print "lg:<nonce>:ready"
    namespace LG<nonce>.S0          -- names cannot collide (a GRPO group repeats one theorem)
    section                         -- `open`, `set_option`, `local notation`, `variable` end here
    <source 0, its import lines blanked so line numbers stay the same>
    end
    end LG<nonce>.S0
    #print "lg:<nonce>:done:0"      -- marker: Lean finished source 0
    …

Scopes cannot undo everything: a global `instance`, a `@[simp]` attribute, a `notation`,
a macro, `#exit`, unbalanced `end`s or an unterminated comment reach past their source.
`solo_reason` finds those with the lexer, and such a source runs alone. The nonce is
random per batch, so a source cannot forge a marker or name a neighbour's namespace.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from leangym.lean.lexer import Token, tokenize
from leangym.lean.types import Message, Position

# Commands whose effect is global unless preceded by `local` or `scoped`.
_GLOBAL_UNLESS_LOCAL = {
    "instance", "notation", "infix", "infixl", "infixr", "prefix", "postfix", "macro",
    "macro_rules", "syntax", "elab", "elab_rules", "binder_predicate", "simproc", "dsimproc",
}  # fmt: skip
# Commands that are global (or can run arbitrary code at elaboration) whatever their prefix.
_ALWAYS_GLOBAL = {
    "declare_syntax_cat", "initialize", "builtin_initialize", "export", "deriving",
    "register_simp_attr", "register_option", "unif_hint", "run_cmd", "run_tac", "run_elab",
    "run_meta", "by_elab", "module", "prelude", "grind_pattern", "register_tactic_tag",
}  # fmt: skip
_SCOPE_OPENERS = {"section", "namespace", "mutual"}
_DECL_KEYWORDS = {
    "theorem", "lemma", "def", "abbrev", "structure", "class", "inductive", "axiom",
    "opaque", "instance", "example",
}  # fmt: skip


@dataclass(frozen=True)
class Prepared:
    """One source, analysed for batching."""

    index: int  # position in the caller's list
    body: str  # the source with its import lines blanked (line numbers unchanged)
    imports: tuple[str, ...]
    solo_reason: str | None  # why it must run alone, or None
    original: str


def prepare(index: int, source: str) -> Prepared:
    tokens = tokenize(source)
    imports, header_end = _imports(tokens)
    rest = [t for t in tokens if t.start >= header_end]
    return Prepared(index, _blank(source, header_end), imports, solo_reason(rest), source)


def _imports(tokens: list[Token]) -> tuple[tuple[str, ...], int]:
    """Module names of the leading `import X` commands and the offset where they end."""
    names: list[str] = []
    end = 0
    code = [t for t in tokens if t.kind != "comment"]
    i = 0
    while i + 1 < len(code) and code[i].kind == "ident" and code[i].text == "import":
        names.append(code[i + 1].name)
        end = code[i + 1].end
        i += 2
    return tuple(names), end


def _blank(source: str, end: int) -> str:
    """Replace `source[:end]` (the import lines) by spaces, keeping newlines."""
    return "".join(c if c == "\n" else " " for c in source[:end]) + source[end:]


def solo_reason(tokens: Sequence[Token]) -> str | None:
    """Why a source must not share a Lean run, or None when scoping contains all it does."""
    code = [t for t in tokens if t.kind != "comment"]
    if any(t.unterminated for t in tokens):
        return "unterminated comment, string or name"
    depth = 0
    for i, tok in enumerate(code):
        prev = code[i - 1].text if i else ""
        word = tok.text if tok.kind == "ident" else ""
        if word in _ALWAYS_GLOBAL:
            return f"uses `{word}`"
        if word in _GLOBAL_UNLESS_LOCAL and prev not in ("local", "scoped"):
            return f"global `{word}`"
        opens_attributes = word == "attribute" or (tok.text == "[" and prev == "@")
        if opens_attributes and not _attributes_are_local(code, i):
            return "global attribute"
        if tok.text == "#" and i + 1 < len(code) and code[i + 1].text in ("exit", "eval"):
            return f"uses `#{code[i + 1].text}`"
        if word in _DECL_KEYWORDS and i + 1 < len(code) and "." in code[i + 1].text:
            return "declares a dotted name"
        if word in _SCOPE_OPENERS:
            depth += 1
        elif word == "end":
            depth -= 1
            if depth < 0:
                return "closes a scope it did not open"
    return "leaves a scope open" if depth else None


def _attributes_are_local(code: list[Token], i: int) -> bool:
    """For `attribute [...]` or `@[...]` at `i`: is every attribute in the brackets local/scoped?"""
    j = i + 1 if code[i].text == "attribute" else i
    if j >= len(code) or code[j].text != "[":
        return False
    items: list[list[str]] = [[]]
    depth = 0
    for tok in code[j + 1 :]:
        if tok.text in "[(" and depth >= 0:
            depth += 1
        elif tok.text in "])":
            if depth == 0:
                break
            depth -= 1
        elif tok.text == "," and depth == 0:
            items.append([])
            continue
        items[-1].append(tok.text)
    return all(item and item[0] in ("local", "scoped") for item in items)


def plan(prepared: Iterable[Prepared], max_batch: int) -> list[list[Prepared]]:
    """Group sources by imports; solo sources alone; at most `max_batch` sources per run."""
    groups: dict[tuple[str, ...], list[Prepared]] = {}
    batches: list[list[Prepared]] = []
    for p in prepared:
        if p.solo_reason:
            batches.append([p])
        else:
            groups.setdefault(p.imports, []).append(p)
    for members in groups.values():
        for k in range(0, len(members), max_batch):
            batches.append(members[k : k + max_batch])
    return sorted(batches, key=lambda b: b[0].index)


@dataclass
class Span:
    """Where one source sits in an assembled file (1-based lines of the file)."""

    index: int
    first_line: int  # the file line that holds the source's line 1
    n_lines: int  # lines of the source itself
    marker_line: int  # the file line of its done-marker; lines up to here belong to it
    namespace: str  # prefix Lean prints in names declared by the source ("" for solo runs)


@dataclass
class Assembled:
    text: str
    nonce: str
    spans: list[Span]
    ready_line: int  # 0 for a solo run (nothing is placed before the source)
    header_lines: int  # lines holding the shared imports

    def marker(self, span_or_ready: Span | None) -> str:
        return f"lg:{self.nonce}:" + ("ready" if span_or_ready is None else f"done:{span_or_ready.index}")


def assemble(batch: Sequence[Prepared]) -> Assembled:
    """The file that checks `batch` in one Lean run (see the module docstring)."""
    nonce = secrets.token_hex(4)
    if len(batch) == 1 and batch[0].solo_reason:
        return _assemble_solo(batch[0], nonce)
    lines = [f"import {m}" for m in batch[0].imports]
    header_lines = len(lines)
    out = Assembled("", nonce, [], ready_line=0, header_lines=header_lines)
    lines.append(f'#print "{out.marker(None)}"')
    out.ready_line = len(lines)
    for p in batch:
        ns = f"LG{nonce}.S{p.index}"
        lines += [f"namespace {ns}", "section"]
        first = len(lines) + 1
        body = p.body.split("\n")
        lines += [*body, "end", f"end {ns}"]
        span = Span(p.index, first, len(body), len(lines) + 1, ns)
        lines.append(f'#print "{out.marker(span)}"')
        out.spans.append(span)
    out.text = "\n".join(lines) + "\n"
    return out


def _assemble_solo(p: Prepared, nonce: str) -> Assembled:
    """A source that must run alone runs exactly as written, with a marker after it."""
    lines = p.original.split("\n")
    out = Assembled("", nonce, [], ready_line=0, header_lines=0)
    span = Span(p.index, 1, len(lines), len(lines) + 1, "")
    out.spans.append(span)
    out.text = "\n".join([*lines, f'#print "{out.marker(span)}"']) + "\n"
    return out


@dataclass
class Attribution:
    """Lean's output for an assembled file, sorted by source."""

    messages: dict[int, list[Message]] = field(default_factory=dict)
    done: list[int] = field(default_factory=list)  # sources whose marker was seen, in order
    ready: bool = False
    shared: list[Message] = field(default_factory=list)  # messages on the shared header lines


def parse_line(line: str) -> dict | None:
    """One `--json` message, or None for a line that is not one (Lean's own debug output)."""
    if not line.startswith("{"):
        return None
    try:
        msg = json.loads(line)
    except json.JSONDecodeError:
        return None
    return msg if isinstance(msg, dict) and "severity" in msg and "pos" in msg else None


def attribute(raw: Iterable[dict], asm: Assembled, into: Attribution | None = None) -> Attribution:
    """Sort raw `--json` messages into their sources, turning markers into progress."""
    out = into or Attribution()
    markers = {asm.marker(s): s for s in asm.spans}
    for msg in raw:
        line = msg["pos"]["line"]
        text = msg.get("data", "")
        if msg["severity"] == "information" and text == asm.marker(None) and line == asm.ready_line:
            out.ready = True
            continue
        span = markers.get(text)
        if msg["severity"] == "information" and span is not None and line == span.marker_line:
            out.done.append(span.index)
            continue
        if line <= asm.ready_line:
            out.shared.append(_message(msg, None))
            continue
        owner = next((s for s in asm.spans if line <= s.marker_line), asm.spans[-1])
        out.messages.setdefault(owner.index, []).append(_message(msg, owner))
    return out


def _message(msg: dict, span: Span | None) -> Message:
    """A `Message` with positions relative to its source (clamped to the source's lines)."""

    def pos(p: dict | None) -> Position | None:
        if p is None:
            return None
        if span is None:
            return Position(p["line"], p["column"])
        line = p["line"] - span.first_line + 1
        return Position(min(max(1, line), span.n_lines), p["column"])

    text = msg.get("data", "")
    if span is not None and span.namespace:
        text = text.replace(span.namespace + ".", "")
    kind = msg.get("kind", "")
    return Message(
        severity=msg["severity"],
        text=text,
        pos=pos(msg["pos"]),  # type: ignore[arg-type]
        end_pos=pos(msg.get("endPos")),
        kind="" if kind == "[anonymous]" else kind,
    )
