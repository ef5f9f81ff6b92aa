#!/usr/bin/env python3
"""RECORDED-TRANSCRIPT DOUBLE of the Lean REPL: it replays answers real Lean gave, and never invents one.

It stands in for the `repl` binary (leanprover-community/repl) where no native Lean exists,
so that the client, the worker pool and the runtime can be tested on real Lean output:

    python tests/repl_replay.py --transcripts tests/data/repl-transcripts [fault flags]

The answers come from the REPL's own test suite (`X.in`: requests, `X.expected.out`: what the
REPL answered, recorded from real Lean runs). The double speaks the REPL's protocol on
stdin/stdout (requests and answers separated by blank lines) and answers each request with
the answer recorded for *the same request in the same context*:

* the context of an environment or proof state is the chain of requests that made it (a
  command's text and options, the environment it ran in, the proof state a tactic ran in,
  what was pickled to a path), so requests may come in any order and interleaving, and a
  header elaborated once may serve many later commands, as with the real REPL;
* environment and proof state ids are session counters: the double numbers them in order,
  as the REPL does, and renumbers the recorded answer to this session's ids (an answer that
  made new ids gets fresh ones; one that names an existing id gets that id here);
* a request with no recorded answer in its context is NOT answered: the double prints why on
  stderr and exits with status 3, which a client sees as a crashed REPL, never as a verdict.

Fault injection for pool tests (TEXT matches anywhere in the raw request line):

    --crash-on TEXT          print half of the answer, then die (exit 134, a panic on stderr)
    --crash-once FILE        with --crash-on: crash only if FILE does not exist yet (creates it)
    --hang-on TEXT           never answer (the process stays alive)
    --slow-on TEXT=SECONDS   answer after a delay
    --bloat-on TEXT=MIB      allocate and touch MIB of memory first (then answer, or hang, …)
    --garbage-on TEXT        answer with text that is not JSON
    --log FILE               append every request (one JSON line each) to FILE
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

Key = tuple  # a hashable description of how an environment / proof state / request came to be
_ID_FIELDS = ("env", "proofState")
# The REPL's test suite with real Lean's answers (recorded on leanprover/lean4:v4.33.0-rc2; see tests/data/README.md).
TRANSCRIPTS = Path(
    os.environ.get("LEANGYM_REPL_TRANSCRIPTS", Path(__file__).resolve().parent / "data/repl-transcripts")
)


def argv(*flags: str) -> tuple[str, ...]:
    """The command line that starts this double (for `ReplProcess` / `ReplCommand`), with fault flags."""
    return (sys.executable, "-S", str(Path(__file__).resolve()), "--transcripts", str(TRANSCRIPTS), *flags)


# -- recorded transcripts --------------------------------------------------------------------


def requests_of(stream: Iterable[str]) -> Iterator[str]:
    """Blocks as the REPL reads requests: lines up to a blank one (or the end), joined; comments skipped."""
    lines: list[str] = []
    for line in itertools.chain(stream, [""]):  # the end of input closes the last block
        if line.strip():
            lines.append(line.rstrip())
            continue
        if lines and not lines[0].startswith(("#", "--")):
            yield "".join(lines)
        lines = []


def transcripts(roots: list[Path]) -> list[tuple[Path, list[tuple[dict, dict]]]]:
    """Every `X.in` with its `X.expected.out` under `roots`: (path, [(request, answer), …])."""
    out = []
    for root in roots:
        for inp in sorted(root.rglob("*.in")):
            expected = inp.with_name(inp.name[: -len(".in")] + ".expected.out")
            if not expected.exists():
                continue
            with inp.open(encoding="utf-8") as f:
                requests = [json.loads(b) for b in requests_of(f)]
            with expected.open(encoding="utf-8") as f:
                answers = [json.loads(b) for b in requests_of(f)]
            if len(requests) == len(answers):
                out.append((inp, list(zip(requests, answers, strict=True))))
    return out


def _ids(answer: dict) -> tuple[list[int], list[int]]:
    """Environment ids and proof state ids an answer names, in a fixed order."""
    envs = [answer["env"]] if isinstance(answer.get("env"), int) else []
    states = [answer["proofState"]] if isinstance(answer.get("proofState"), int) else []
    for item in answer.get("sorries", []) + answer.get("tactics", []):
        if isinstance(item.get("proofState"), int):
            states.append(item["proofState"])
    return envs, states


class Session:
    """The REPL's id bookkeeping, and the context key of each id and request."""

    def __init__(self) -> None:
        self.envs: dict[int, Key] = {}
        self.states: dict[int, Key] = {}
        self.pickled: dict[str, Key] = {}

    def request_key(self, request: dict) -> Key:
        fields = json.dumps({k: v for k, v in request.items() if k not in _ID_FIELDS}, sort_keys=True)
        parents: list[Key] = []
        if "env" in request:
            parents.append(("env", self.envs.get(request["env"], ("unknown",))))
        if "proofState" in request:
            parents.append(("state", self.states.get(request["proofState"], ("unknown",))))
        for name in ("unpickleEnvFrom", "unpickleProofStateFrom"):
            if name in request:
                parents.append(("pickled", self.pickled.get(request[name], ("unknown",))))
        return (fields, tuple(parents))

    def record(self, request: dict, key: Key, new_envs: list[int], new_states: list[int]) -> None:
        """Give the ids an answer created their context; remember what a pickle saved."""
        for i, env in enumerate(sorted(new_envs)):
            self.envs[env] = (key, "env", i)
        for i, state in enumerate(sorted(new_states)):
            self.states[state] = (key, "state", i)
        if "pickleTo" in request:
            source = self.envs if "env" in request else self.states
            self.pickled[request["pickleTo"]] = source.get(request.get("env", request.get("proofState")), ("unknown",))


class Recording:
    """One recorded answer: which of its ids were new and which named existing ids."""

    def __init__(self, answer: dict, session: Session, request: dict):
        self.answer = answer
        envs, states = _ids(answer)
        self.new_envs = [e for e in envs if e not in session.envs]
        self.new_states = [s for s in states if s not in session.states]
        self.old_envs = {e: session.envs[e] for e in envs if e in session.envs}
        self.old_states = {s: session.states[s] for s in states if s in session.states}
        self.request_ids = {k: request[k] for k in _ID_FIELDS if k in request}

    def shape(self) -> str:
        """The answer with ids left out, to tell whether two recordings agree."""
        return json.dumps(_renumber(self.answer, lambda _: 0, lambda _: 0), sort_keys=True)


def _renumber(answer: dict, env_map, state_map) -> dict:
    out = dict(answer)
    if isinstance(out.get("env"), int):
        out["env"] = env_map(out["env"])
    if isinstance(out.get("proofState"), int):
        out["proofState"] = state_map(out["proofState"])
    for name in ("sorries", "tactics"):
        if name in out:
            out[name] = [
                {**item, "proofState": state_map(item["proofState"])}
                if isinstance(item.get("proofState"), int)
                else item
                for item in out[name]
            ]
    return out


def load(roots: list[Path]) -> dict[Key, Recording | None]:
    """Every recorded answer by request key (None where two recordings disagree)."""
    table: dict[Key, Recording | None] = {}
    for _, pairs in transcripts(roots):
        session = Session()
        for request, answer in pairs:
            key = session.request_key(request)
            rec = Recording(answer, session, request)
            if key in table and (table[key] is None or table[key].shape() != rec.shape()):
                table[key] = None
            else:
                table.setdefault(key, rec)
            session.record(request, key, rec.new_envs, rec.new_states)
    return table


# -- serving ----------------------------------------------------------------------------------


class Replayer:
    """Answers live requests from the table, with this session's own ids."""

    def __init__(self, table: dict[Key, Recording | None]):
        self.table = table
        self.session = Session()
        self.next_env = 0
        self.next_state = 0

    def answer(self, request: dict) -> dict:
        key = self.session.request_key(request)
        if key not in self.table:
            raise LookupError("no recorded answer for this request in this context")
        rec = self.table[key]
        if rec is None:
            raise LookupError("the recordings disagree about this request")
        env_ids = {old: self.next_env + i for i, old in enumerate(sorted(rec.new_envs))}
        state_ids = {old: self.next_state + i for i, old in enumerate(sorted(rec.new_states))}
        env_ids.update(self._existing(rec.old_envs, self.session.envs, rec.request_ids.get("env"), request.get("env")))
        state_ids.update(
            self._existing(
                rec.old_states, self.session.states, rec.request_ids.get("proofState"), request.get("proofState")
            )
        )
        self.next_env += len(rec.new_envs)
        self.next_state += len(rec.new_states)
        self.session.record(request, key, [env_ids[e] for e in rec.new_envs], [state_ids[s] for s in rec.new_states])
        return _renumber(rec.answer, env_ids.__getitem__, state_ids.__getitem__)

    @staticmethod
    def _existing(old: dict[int, Key], live: dict[int, Key], recorded_req: Any, live_req: Any) -> dict[int, int]:
        """Live ids for the existing ids an answer names (the request's own id first)."""
        out = {}
        for rec_id, key in old.items():
            if rec_id == recorded_req and live_req is not None:
                out[rec_id] = live_req
            else:
                matches = [i for i, k in live.items() if k == key]
                if not matches:
                    raise LookupError(f"the answer names an id ({rec_id}) this session does not have")
                out[rec_id] = matches[-1]
        return out


def _pairs(values: list[str]) -> list[tuple[str, float]]:
    out = []
    for value in values:
        text, _, number = value.rpartition("=")
        out.append((text, float(number)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--transcripts", type=Path, action="append", help="folders of X.in / X.expected.out (searched recursively)"
    )
    parser.add_argument("--crash-on", action="append", default=[])
    parser.add_argument("--crash-once", type=Path)
    parser.add_argument("--hang-on", action="append", default=[])
    parser.add_argument("--slow-on", action="append", default=[])
    parser.add_argument("--bloat-on", action="append", default=[])
    parser.add_argument("--garbage-on", action="append", default=[])
    parser.add_argument("--log", type=Path)
    args = parser.parse_args(argv)
    roots = args.transcripts or [TRANSCRIPTS]
    replayer = Replayer(load(roots))
    ballast: list[bytearray] = []

    def emit(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    for raw in requests_of(sys.stdin):
        if args.log:
            with args.log.open("a", encoding="utf-8") as log:
                log.write(raw + "\n")
        for text, mib in _pairs(args.bloat_on):
            if text in raw:
                block = bytearray(int(mib * 2**20))
                block[::4096] = b"x" * len(block[::4096])  # touch every page
                ballast.append(block)
        for text, seconds in _pairs(args.slow_on):
            if text in raw:
                time.sleep(seconds)
        if any(t in raw for t in args.hang_on):
            while True:
                time.sleep(3600)
        if any(t in raw for t in args.garbage_on):
            emit("this is not JSON\n\n")
            continue
        try:
            request = json.loads(raw)
        except json.JSONDecodeError as e:
            print(f'uncaught exception: {{"message": "Could not parse JSON:\\n{e}"}}', file=sys.stderr)
            return 1
        try:
            answer = json.dumps(replayer.answer(request), ensure_ascii=False, indent=1)
        except LookupError as e:
            print(f"repl_replay (recorded-transcript double): {e}: {raw[:500]}", file=sys.stderr)
            return 3
        crash_now = any(t in raw for t in args.crash_on)
        if crash_now and args.crash_once:
            crash_now = not args.crash_once.exists()
            args.crash_once.touch()
        if crash_now:
            emit(answer[: len(answer) // 2])
            print("INTERNAL PANIC: the recorded-transcript double crashes here on purpose", file=sys.stderr)
            sys.stderr.flush()
            os._exit(134)
        emit(answer + "\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
