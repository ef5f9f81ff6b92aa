"""The `leangym serve` command: flags, the foreground server, and `--background` (a detached one, recorded).

The server itself is `leangym.server` (imported only when the command runs: it needs the
`[serve]` extra, and other commands should not pay for FastAPI's import).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from leangym.cli import CommandError

SERVE_HINT = "pip install 'lean-gym[serve]'"


def start_background(argv: list[str], wait: float = 600.0) -> dict[str, Any]:
    """Start `leangym serve ARGV --record` detached; return its record once it is warm.

    A server already recorded and healthy is returned as it is (nothing started).
    """
    from leangym.client import read_record, record_path, running_server

    running = running_server()
    if running is not None:
        return {**running, "already": True}
    log = record_path().with_name("server.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "leangym", "serve", *argv, "--record"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,  # outlives this command and its terminal
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"the server exited with status {child.returncode}; see {log}")
        record = read_record()
        if record is not None and record.get("pid") == child.pid:
            return {**record, "log": str(log)}
        time.sleep(0.25)
    child.terminate()
    raise RuntimeError(f"the server did not become ready in {wait:.0f} s; see {log}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="serve verdicts, Lean checks and tactic sessions over HTTP (a warm Lean for many processes)",
        description="Serve verdicts (POST /verify), Lean checks (POST /check) and tactic sessions (/sessions) "
        "from one warm Lean, for many processes and any language. API schema: /docs. See docs/serve.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback; see docs/serve.md for TLS)")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    p.add_argument("--runtime", default="embedded", choices=["embedded", "native"])
    p.add_argument("--api-key-file", type=Path, help="a file holding the key clients must send")
    p.add_argument("--max-queue", type=int, default=64, help="requests waiting for Lean before 429 (default 64)")
    p.add_argument("--max-body-mb", type=float, default=16.0, help="largest request body (default 16 MB)")
    p.add_argument("--session-ttl", type=float, default=600.0, help="seconds an unused tactic session lives")
    p.add_argument("--workers", type=int, help="Lean processes (default: one per two cores, as memory allows)")
    p.add_argument("--max-timeout", type=float, default=120.0, help="largest policy.timeout a client may ask (s)")
    p.add_argument("--background", action="store_true", help="start detached, print the address, return when warm")
    p.add_argument("--idle-exit", type=float, metavar="SECONDS", help="stop after this long without a request")
    p.add_argument("--record", action="store_true", help=argparse.SUPPRESS)  # set by --background
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        from leangym.server import ServeConfig, serve
    except ImportError as e:
        raise CommandError(f"the server needs FastAPI, uvicorn and prometheus-client ({SERVE_HINT}): {e}") from e
    if args.background:
        try:
            record = start_background(_argv(args))
        except RuntimeError as e:
            raise CommandError(str(e)) from e
        state = "already running" if record.get("already") else "started"
        print(f"leangym server {state}: {record['url']} ({record['runtime']} Lean, pid {record['pid']})")
        return 0
    config = ServeConfig(
        host=args.host,
        port=args.port,
        runtime=args.runtime,
        api_key=_api_key(args.api_key_file),
        api_key_file=str(args.api_key_file.resolve()) if args.api_key_file else None,
        max_queue=args.max_queue,
        max_body_mb=args.max_body_mb,
        session_ttl=args.session_ttl,
        max_timeout=args.max_timeout,
        idle_exit=args.idle_exit,
        record=args.record,
        runtime_options={"workers": args.workers} if args.workers else {},
    )
    try:
        serve(config)
    except OSError as e:
        raise CommandError(f"cannot serve on {args.host}:{args.port}: {e}") from e
    return 0


def _argv(args: argparse.Namespace) -> list[str]:
    """The flags of this command again, for the detached server (without `--background`)."""
    argv = ["--host", args.host, "--port", str(args.port), "--runtime", args.runtime]
    argv += ["--max-queue", str(args.max_queue), "--max-body-mb", str(args.max_body_mb)]
    argv += ["--session-ttl", str(args.session_ttl), "--max-timeout", str(args.max_timeout)]
    if args.api_key_file:
        argv += ["--api-key-file", str(args.api_key_file.resolve())]
    if args.workers:
        argv += ["--workers", str(args.workers)]
    if args.idle_exit is not None:
        argv += ["--idle-exit", str(args.idle_exit)]
    return argv


def _api_key(path: Path | None) -> str | None:
    """The API key in `path` (None without a file); a `CommandError` says what is wrong with the file."""
    if path is None:
        return None
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise CommandError(f"cannot read the API key: {e}") from e
    if not key:
        raise CommandError(f"{path} is empty")
    return key
