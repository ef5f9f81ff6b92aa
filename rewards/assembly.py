"""The file Lean checks, rebuilt from trusted text and the body, and how Lean's answer is judged.

    <header>                               trusted (imports, options, `open`)
    set_option maxHeartbeats N in          the policy's limit, whatever the header says
    <formal_statement>                     trusted
    <body>                                 the only submitted text
                                           (a blank line)
    example := @<name>                     trusted: the theorem must exist after the body

Lean's messages come back with positions in this file; `Assembled.to_submission` moves them
to the submitted text (the body's own line and column, or the file's when a whole file was
sent), so a prover sees where *its* text went wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from leangym.lean_project.source import heartbeat_limit
from leangym.lean_project.types import Message, Position, SourceResult
from leangym.rewards.policy import Policy
from leangym.rewards.problem import Problem
from leangym.rewards.submission import Statement, Submission
from leangym.rewards.verdict import Verdict


@dataclass(frozen=True)
class Assembled:
    """An assembled source and where the body sits in it."""

    source: str
    body_line: int  # line of the source holding the body's first character
    body_column: int
    body_end_line: int  # last line of the body; later lines are the trusted existence check
    origin_line: int  # where the body starts in the submitted text
    origin_column: int

    def to_submission(self, pos: Position) -> Position:
        """A source position as a position in the submitted text (clamped to the body)."""
        if pos.line < self.body_line or (pos.line == self.body_line and pos.column < self.body_column):
            return Position(self.origin_line, self.origin_column)
        line = min(pos.line, self.body_end_line)
        column = pos.column if line == pos.line else 0
        if line == self.body_line:
            column += self.origin_column - self.body_column
        return Position(self.origin_line + line - self.body_line, column)

    def in_existence_check(self, pos: Position) -> bool:
        return pos.line > self.body_end_line


def assemble(problem: Problem, statement: Statement, sub: Submission, policy: Policy) -> Assembled:
    """The source Lean checks for this submission (see the module docstring)."""
    lines = [problem.header.rstrip("\n")] if problem.header.strip() else []
    prefix = "\n".join(lines) + "\n" if lines else ""
    prefix += heartbeat_limit(policy.max_heartbeats)
    if sub.form == "file":
        # The body followed `:=` in the file: keep its column, so tactic blocks stay aligned.
        lead = statement.head + "\n" + " " * sub.column
    else:
        # A body goes on the line after the statement unless it starts with a line break itself.
        lead = statement.text + ("" if sub.body.startswith("\n") else "\n")
    before = prefix + lead
    body_line = before.count("\n") + 1
    body_column = len(before) - (before.rfind("\n") + 1)
    body_end_line = body_line + sub.body.count("\n")
    check = f"\n\nexample := @{statement.name}\n" if statement.name else "\n"
    return Assembled(before + sub.body + check, body_line, body_column, body_end_line, sub.line, sub.column)


# What Lean failing twice on a source, the second time in a fresh process, says about the source.
_THE_PROOFS_DOING = {"crash": "lean_crash", "out_of_memory": "out_of_memory", "protocol": "protocol_violation"}


def judge(result: SourceResult, assembled: Assembled) -> Verdict:
    """The verdict Lean's result supports: never `proved` unless Lean finished cleanly."""
    if result.status == "timeout":
        return Verdict("rejected", ("timeout",), seconds=result.seconds, detail=str(result.error or ""))
    if result.status == "error":
        kind = result.error.kind if result.error else "crash"
        detail = str(result.error or "the runtime gave no reason")
        if kind in _THE_PROOFS_DOING:
            # The runtime checked it once more in a fresh Lean, where nothing else ran: were this
            # an `error`, a policy could learn to crash Lean to escape a 0.
            detail = f"Lean failed on this proof twice, the second time in a fresh process: {detail}"
            return Verdict("rejected", (_THE_PROOFS_DOING[kind],), seconds=result.seconds, detail=detail)
        reason = "unsupported_import" if kind == "unsupported_import" else f"runtime_error:{kind}"
        return Verdict("error", (reason,), seconds=result.seconds, detail=detail)
    reasons: list[str] = []
    messages: list[Message] = []
    for m in result.messages:
        if m.is_error:
            reasons.append("missing_declaration" if assembled.in_existence_check(m.pos) else "lean_error")
            if m.kind == "runtime.maxHeartbeats" or "maximum number of heartbeats" in m.text:
                reasons.append("heartbeats")
        elif m.uses_sorry:
            reasons.append("sorry")
        end = assembled.to_submission(m.end_pos) if m.end_pos else None
        messages.append(replace(m, pos=assembled.to_submission(m.pos), end_pos=end))
    unique = tuple(dict.fromkeys(reasons))
    detail = next((m.text for m in messages if m.is_error), "")
    return Verdict("rejected" if unique else "proved", unique, tuple(messages), result.seconds, detail)
