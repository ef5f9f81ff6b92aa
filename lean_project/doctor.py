"""`leangym doctor`: which Lean runtimes (and ML back-ends) are usable here, and how to fix the rest."""

from __future__ import annotations

import glob
import importlib.metadata
import importlib.util
import os
import subprocess
from typing import Any

from leangym.lean_project import embedded, native, sandbox, toolchain
from leangym.lean_project.process import default_workers, machine_memory_mb, run_slots
from leangym.lean_project.types import LeanRuntimeError


def embedded_status() -> dict[str, Any]:
    info: dict[str, Any] = {"runtime": "embedded", "install_dir": str(toolchain.install_dir())}
    try:
        launcher = toolchain.locate()
    except LeanRuntimeError as e:
        return {**info, "available": False, "problem": str(e), "fix": toolchain.INSTALL_HINT}
    node = subprocess.run([str(launcher.node), "--version"], capture_output=True, text=True)
    mode = os.environ.get("LEANGYM_EMBEDDED_MODE", "session")
    record = embedded.fallback_record()
    fallback = record.read_text(encoding="utf-8").strip() if record.exists() else ""
    workers, cores = default_workers(embedded.SESSION_MB), os.cpu_count() or 1
    memory_gb = machine_memory_mb() / 1024
    checks_with = (
        "long-lived sessions: Lean starts once, then each proof costs its own elaboration"
        if mode == "session"
        else "one Lean process per batch (LEANGYM_EMBEDDED_MODE=oneshot)"
    )
    failed = toolchain.precompile_failure(launcher)
    if launcher.boot is not None:
        start = f"precompiled session program, self-tested at set-up (first answer ~5 s, ~0.8 GB): {launcher.boot}"
    elif failed is not None:
        start = f"Lean elaborates Session.lean at every start (~20 s, ~2 GB): precompiling failed: {failed}"
    else:
        start = "Lean elaborates Session.lean at every start (~20 s, ~2 GB): LEANGYM_SESSION_LAUNCH=elaborate"
    changed = toolchain.verify_toolchain(launcher)
    return {
        **info,
        "available": changed is None,
        **({"problem": f"the toolchain changed: {changed}", "fix": toolchain.INSTALL_HINT} if changed else {}),
        "lean_version": f"{launcher.version} (commit {toolchain.LEAN_COMMIT[:12]}, wasm32)",
        "node": f"{launcher.node} ({node.stdout.strip()})",
        "glue": str(launcher.glue),
        "library": str(launcher.library),
        "checks_with": checks_with,
        "start": start,
        "verdicts": "a judge (a second Lean, never sent submitted text) replays each accepted proof in the kernel",
        "confinement": (
            "Node permission model (reads: toolchain and own folder; no writes, processes or add-ons), "
            "glue mounts only those folders and drops /dev/std*, /proc/self/fd; minimal environment; "
            "random request ids; toolchain digests checked before every start: ok"
            if changed is None
            else "refused: a toolchain file differs from its install-time digest"
        ),
        "sandbox": sandbox.describe(),
        **({"last_fallback": f"sessions could not start, one-shot batches were used ({fallback})"} if fallback else {}),
        "lean_processes": (
            f"{workers} session(s) by default ({cores} cores, {memory_gb:.0f} GB at up to "
            f"{embedded.SESSION_MB / 1024:.0f} GB each); at most {run_slots().n} Lean processes checking at once"
        ),
        "mathlib": False,
    }


def native_status() -> dict[str, Any]:
    """The native toolchain, the REPL build (tactic mode's proof states) and Mathlib."""
    from leangym.lean_project.repl_runtime import REPL_BUILD_HINT, find_repl

    info: dict[str, Any] = {"runtime": "native", "lake_project": str(native.lake_project() or "")}
    try:
        launcher = native.find_native()
    except LeanRuntimeError as e:
        return {**info, "available": False, "problem": str(e), "fix": native.INSTALL_HINT}
    repl = find_repl(launcher.project)
    mathlib = launcher.can_import("Mathlib")
    mathlib_fix = (
        "enable the Mathlib `require` in lean_project/lakefile.toml, then "
        "`lake update && lake exe cache get && lake build repl` (docs/native.md)"
    )
    return {
        **info,
        "available": True,
        "lean_version": launcher.version,
        "lean": str(launcher.lean),
        "repl": str(repl) if repl else f"not built: {REPL_BUILD_HINT}",
        "checks_with": "sessions of the session program (`lean --run Session.lean`, header reuse)"
        + ("; the REPL keeps tactic mode's proof states" if repl else "; tactic mode re-elaborates (no REPL)"),
        "verdicts": "a judge (a second Lean, never sent submitted text) replays each accepted proof in the kernel",
        "sandbox": sandbox.describe(),
        "mathlib": mathlib,
        **({} if mathlib else {"mathlib_fix": mathlib_fix}),
    }


def python_status() -> dict[str, Any]:
    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    torch_version = version("torch")
    return {
        "torch": torch_version,
        "transformers": version("transformers"),
        "gymnasium": version("gymnasium"),
        "vllm": version("vllm") or "not installed (pip install 'lean-gym[gpu]' on a CUDA machine)",
        "gpu": _gpu(torch_version),
    }


def _gpu(torch_version: str | None) -> str | None:
    """The first GPU torch sees. Torch is asked only where it could see one (importing it takes ~2 s,
    a third of `make demo`'s wait before training): not for a CPU build, nor with no GPU device node."""
    devices = glob.glob("/dev/nvidia[0-9]*") + glob.glob("/dev/kfd")  # NVIDIA, or ROCm (torch.cuda too)
    if torch_version is None or torch_version.endswith("+cpu") or not devices:
        return None
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def report() -> dict[str, Any]:
    return {"runtimes": [embedded_status(), native_status()], "python": python_status()}


def format_report(rep: dict[str, Any]) -> str:
    lines = ["Lean runtimes:"]
    for rt in rep["runtimes"]:
        mark = "ok " if rt["available"] else "-- "
        lines.append(f"  {mark}{rt['runtime']}")
        for key, value in rt.items():
            if key not in ("runtime", "available") and value not in ("", None):
                lines.append(f"       {key:15} {value}")
    lines.append("Python:")
    lines += [f"       {k:15} {v}" for k, v in rep["python"].items()]
    return "\n".join(lines)
