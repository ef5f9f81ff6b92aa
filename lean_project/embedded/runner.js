// Starts the embedded Lean before its input exists, so that a batch finds it warm.
//
// Usage: LEAN_JS=<patched lean.js> node runner.js [lean options] /tmp/.../INPUT.lean
//
// Lean spends ~17 s compiling its WebAssembly and initialising before it reads the file
// it was given. This wrapper lets that happen ahead of time: on Node's main thread (which
// serves every file access of the Lean threads) the first touch of INPUT blocks until the
// file exists. The caller writes INPUT atomically (write, then rename) when a batch
// arrives, and Lean goes on at once. Reading stdin instead is not an option: the glue
// reads fd 0 in non-blocking mode and dies on an empty pipe.
//
// While it waits, INPUT.waiting exists (the spare is warm). A spare that is never used
// exits by itself after LEANGYM_SPARE_TTL seconds (default 3600).
"use strict";
const fs = require("fs");
const path = require("path");

const input = path.resolve(process.argv[process.argv.length - 1]);
const ttlMs = 1000 * Number(process.env.LEANGYM_SPARE_TTL || 3600);
const nap = new Int32Array(new SharedArrayBuffer(4));
let arrived = false;

function waitForInput(p) {
  if (arrived || path.resolve(String(p)) !== input) return;
  const deadline = Date.now() + ttlMs;
  if (!fs.existsSync(input)) fs.writeFileSync(input + ".waiting", ""); // tells the caller: warm
  while (!fs.existsSync(input)) {
    if (Date.now() > deadline) process.exit(3);
    Atomics.wait(nap, 0, 0, 10); // sleep 10 ms without spinning
  }
  arrived = true;
}

for (const name of ["lstatSync", "statSync", "openSync", "readFileSync"]) {
  const original = fs[name];
  fs[name] = function (p, ...rest) {
    waitForInput(p);
    return original.call(this, p, ...rest);
  };
}

require(process.env.LEAN_JS);
