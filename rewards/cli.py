"""`leangym verify INPUT.jsonl --out OUTPUT.jsonl [--runtime embedded|native]`: a batch of proofs, one verdict each.

Input line: `name`, `formal_statement`, optional `header`, and exactly one of `proof` (a body
that continues the statement) or `code` (a whole file); other fields are carried through.
Output line, in input order: `name`, `verdict`, `reward`, `reasons`, `messages`, `seconds`
(and `detail` when there is one), then the carried fields. A line that cannot be read gets
verdict `error` with reason `bad_input`; nothing is dropped.

Exit status: 0 when the batch ran, whatever the verdicts; 2 when it could not run (input
unreadable, runtime not installed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from leangym.cli import CommandError

if TYPE_CHECKING:
    from leangym.rewards.verifier import BaseVerifier

_KNOWN = ("name", "formal_statement", "header", "proof", "code")
_OUTPUT_KEYS = ("name", "verdict", "reward", "reasons", "messages", "seconds", "detail")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="verify a JSONL batch of proofs; one verdict per line",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", type=Path, help="JSONL input ('-' for stdin)")
    p.add_argument("--out", required=True, help="JSONL output ('-' for stdout)")
    p.add_argument("--runtime", default="embedded", choices=["embedded", "native"])
    p.add_argument("--timeout", type=float, default=60.0, help="wall-clock seconds per proof (default 60)")
    p.add_argument("--heartbeats", type=int, default=400_000, help="maxHeartbeats per proof, 0 = none")
    p.add_argument("--allow-native-decide", action="store_true", help="accept proofs that trust the compiler")
    p.add_argument("--no-audit", action="store_true", help="no judge (a bare REPL pool): skip the kernel audit")
    p.add_argument("--chunk", type=int, default=256, help="submissions per Lean batch (default 256)")
    add_server_flag(p)
    p.add_argument(
        "--ray", nargs="?", const="local", metavar="ADDRESS", help="verify on a Ray cluster (default address: local)"
    )
    p.set_defaults(func=_verify)


def add_server_flag(p: argparse.ArgumentParser) -> None:
    """`--server URL|auto`: a `leangym serve` server answers instead of a Lean in this process."""
    p.add_argument(
        "--server",
        metavar="URL|auto",
        help="ask a leangym server (auto: the one `leangym serve --background` started; default: $LEANGYM_SERVER)",
    )


def _verify(args: argparse.Namespace) -> int:
    from leangym.rewards import Policy
    from leangym.rewards.distributed import make_verifier

    rows = _read_rows(args.input)
    policy = Policy(
        max_heartbeats=args.heartbeats,
        timeout=args.timeout,
        allow_native_decide=args.allow_native_decide,
        audit=not args.no_audit,
    )
    verifier = make_verifier(args.ray, args.runtime, policy, server=args.server, progress=True)
    answered_by = verifier.describe()  # fails now (no Lean, no server: said by `leangym`), not on every line
    started = time.monotonic()
    counts: Counter[str] = Counter()
    try:
        with _open_out(args.out) as out:
            for line in verify_rows(rows, verifier, chunk=max(1, args.chunk)):
                counts[line["verdict"]] += 1
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                out.flush()
    except OSError as e:
        raise CommandError(f"cannot write {args.out}: {e}") from e
    summary = ", ".join(f"{counts[k]} {k}" for k in ("proved", "rejected", "error"))
    elapsed = time.monotonic() - started
    print(f"{len(rows)} submissions: {summary} ({elapsed:.1f} s; {answered_by})", file=sys.stderr)
    return 0


def verify_rows(rows: list[Any], verifier: BaseVerifier, *, chunk: int = 256) -> Iterator[dict[str, Any]]:
    """Output lines for input rows (parsed JSON, or the error that kept a line from parsing), in order."""
    from tqdm import tqdm

    with tqdm(total=len(rows), unit="proof", file=sys.stderr, disable=len(rows) < 2, desc="verify") as bar:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            parsed = [_pair(row) for row in part]
            pairs = [p for p in parsed if not isinstance(p, str)]
            verdicts = iter(verifier.verify_batch(pairs) if pairs else [])
            for row, item in zip(part, parsed, strict=True):
                if isinstance(item, str):
                    line = {"verdict": "error", "reward": 0.0, "reasons": ["bad_input"], "messages": [],
                            "seconds": 0.0, "detail": item}  # fmt: skip
                else:
                    line = next(verdicts).to_json()
                yield _output(row, line)
            bar.update(len(part))


def _pair(row: Any) -> tuple[Any, str] | str:
    """(Problem, submission) for a row, or why the row cannot be verified."""
    from leangym.rewards import Problem

    if isinstance(row, Exception):
        return f"not a JSON object: {row}"
    if not isinstance(row, dict):
        return "not a JSON object"
    if not isinstance(row.get("name"), str) or not isinstance(row.get("formal_statement"), str):
        return "needs string fields `name` and `formal_statement`"
    given = [k for k in ("proof", "code") if row.get(k) is not None]
    if len(given) != 1:
        return "needs exactly one of `proof` (a body after the statement) or `code` (a whole file)"
    submission = row[given[0]]
    if not isinstance(submission, str) or not isinstance(row.get("header") or "", str):
        return f"`{given[0]}` and `header` must be strings"
    return Problem.from_json(row), submission


def _output(row: Any, line: dict[str, Any]) -> dict[str, Any]:
    name = row.get("name") if isinstance(row, dict) else None
    extra = {k: v for k, v in row.items() if k not in _KNOWN and k not in _OUTPUT_KEYS} if isinstance(row, dict) else {}
    return {"name": name, **line, **extra}


def _read_rows(path: Path) -> list[Any]:
    """Each line parsed as JSON; a line that does not parse is kept as its exception (reported per line)."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as e:
        raise CommandError(f"cannot read {path}: {e}") from e
    rows: list[Any] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            rows.append(e)
    return rows


def _open_out(out: str) -> contextlib.AbstractContextManager[IO[str]]:
    """The output file (invalid UTF-8 carried through from the input is written back as it came)."""
    if out == "-":
        return contextlib.nullcontext(sys.stdout)
    return open(out, "w", encoding="utf-8", errors="surrogateescape")
