"""Many sources in one Lean run, none able to see another.

Starting Lean costs seconds (about 30 s for the embedded runtime's session program), checking
a small proof milliseconds, so a one-shot run checks many sources. It does not put them in one
Lean file: a file's declarations are visible to everything after them, a failed theorem
included (Lean keeps it, with `sorry` inside, and `exact?` finds it). Instead the run is the
session program (`session/Session.lean`) reading a file of requests: first the batch's imports
(all sources of a run share them), then one per source, whole:

    {"cmd": "import Std\n"}
                                            (a blank line ends each request)
    {"cmd": "<source 0>"}

    {"cmd": "<source 1>"}

Each source is elaborated from its imports' environment, a value that no other source's
elaboration changes, so a verdict rests on nothing but the source and the library. The
program answers each request in order (`{"env": n, "messages": [...]}` and a blank line), so
the answers read so far say how far the run got (`Answers`): the first, to the imports, says
that Lean is up; a run that dies after it died on the source it had not yet answered.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from leangym.lean_project.repl import message_from_repl
from leangym.lean_project.source import imports_of
from leangym.lean_project.types import Message


@dataclass(frozen=True)
class Prepared:
    """One source, with the modules it imports."""

    index: int  # position in the caller's list
    source: str
    imports: tuple[str, ...]


def prepare(index: int, source: str) -> Prepared:
    return Prepared(index, source, imports_of(source))


def plan(prepared: Iterable[Prepared], max_batch: int) -> list[list[Prepared]]:
    """At most `max_batch` sources per run, sources of one import set together (one import each)."""
    groups: dict[tuple[str, ...], list[Prepared]] = {}
    for p in prepared:
        groups.setdefault(p.imports, []).append(p)
    batches = [members[k : k + max_batch] for members in groups.values() for k in range(0, len(members), max_batch)]
    return sorted(batches, key=lambda b: b[0].index)


def requests(batch: Sequence[Prepared], ids: Sequence[str], *, export: bool = False) -> str:
    """The request file of a run: the imports, then each source, whole, as a fresh command, each
    request with its id (`ids`: one for the imports, then one per source)."""
    header = "".join(f"import {m}\n" for m in batch[0].imports)
    lines = [{"cmd": header, "id": ids[0]}]
    lines += [
        {"cmd": p.source, "id": i, **({"export": True} if export else {})} for p, i in zip(batch, ids[1:], strict=True)
    ]
    return "".join(json.dumps(line, ensure_ascii=False) + "\n\n" for line in lines)


@dataclass
class Answers:
    """The session program's answers, read as they arrive: the imports', then source k's.

    Each answer must carry the id of the request it answers, in order: output a proof's code
    printed (the run's standard output is a file Lean holds open) cannot pass for an answer
    without knowing the ids, which are random per run.
    """

    sources: int
    ready: bool = False  # the imports were answered: Lean is up
    messages: list[list[Message]] = field(default_factory=list)  # one list per answered source
    constants: list[dict | None] = field(default_factory=list)  # the export of each answered source
    unreadable: str = ""  # output that is not an answer (the run cannot be trusted past it)
    ids: list[str] = field(init=False)
    _pending: str = ""

    def __post_init__(self) -> None:
        self.ids = [secrets.token_hex(12) for _ in range(self.sources + 1)]

    def feed(self, text: str) -> None:
        """Take more output; complete answers (a JSON object and a blank line) are parsed."""
        *complete, self._pending = (self._pending + text).split("\n\n")
        for chunk in complete:
            if not chunk.strip() or self.unreadable:
                continue
            try:
                answer = json.loads(chunk)
                expected = self.ids[len(self.messages) + 1 if self.ready else 0]
                if answer.get("id") != expected:
                    raise ValueError("not the answer to the next request")
                messages = [message_from_repl(m) for m in answer["messages"]]
                constants = answer.get("constants")
                if constants is not None and not isinstance(constants, dict):
                    raise TypeError("constants is not an object")
                if self.ready:
                    self.messages.append(messages)
                    self.constants.append(constants)
                self.ready = True
            except (ValueError, KeyError, TypeError, IndexError, AttributeError):
                self.unreadable = chunk.strip()[:500]
