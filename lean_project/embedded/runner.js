// Starts the embedded Lean before its requests exist, so that a one-shot batch finds it warm.
//
// Usage: LEAN_JS=<patched lean.js> node runner.js --run Session.lean /tmp/.../REQUESTS
//
// Lean spends ~30 s compiling its WebAssembly, initialising and elaborating the session
// program before that program opens its request file. This wrapper lets that happen ahead
// of time: on Node's main thread (which serves every file access of the Lean threads) the
// first touch of REQUESTS blocks until the file exists. The caller writes REQUESTS
// atomically (write, then rename) when a batch arrives, and Lean goes on at once. (A
// long-lived session reads its requests on stdin instead: `embedded.session_command`.)
//
// While it waits, REQUESTS.waiting exists (the spare is warm). A spare that is never used
// exits by itself after LEANGYM_SPARE_TTL seconds (default 3600). Once Lean has read REQUESTS
// (whole, before any request runs) the file is removed.
"use strict";
const fs = require("fs");
const path = require("path");

const input = path.resolve(process.argv[process.argv.length - 1]);
const ttlMs = 1000 * Number(process.env.LEANGYM_SPARE_TTL || 3600);
const nap = new Int32Array(new SharedArrayBuffer(4));
let arrived = false;
let inputFd = -1; // REQUESTS, while Lean has it open

function waitForInput(p) {
  if (arrived || path.resolve(String(p)) !== input) return;
  const deadline = Date.now() + ttlMs;
  if (!fs.existsSync(input)) fs.writeFileSync(input + ".waiting", ""); // tells the caller: warm
  const since = Date.now();
  while (!fs.existsSync(input)) {
    const now = Date.now();
    if (now > deadline) process.exit(3);
    Atomics.wait(nap, 0, 0, Math.min(50, 1 + ((now - since) >> 4))); // sleep without spinning, longer when idle longer
  }
  arrived = true;
}

for (const name of ["lstatSync", "statSync", "openSync", "readFileSync"]) {
  const original = fs[name];
  fs[name] = function (p, ...rest) {
    waitForInput(p);
    const result = original.call(this, p, ...rest);
    if (name === "openSync" && path.resolve(String(p)) === input) inputFd = result;
    return result;
  };
}

// The session program reads REQUESTS whole before it runs any request. Once it closes the file,
// the file goes: code inside a proof cannot read the other requests (or their ids) from it.
const closeSync = fs.closeSync;
fs.closeSync = function (fd, ...rest) {
  const result = closeSync.call(this, fd, ...rest);
  if (fd === inputFd) {
    inputFd = -1;
    fs.unlinkSync(input);
  }
  return result;
};

require(process.env.LEAN_JS);
