#!/usr/bin/env node
// m2m-ssh's npm launcher. npm installed, beside this package, the one
// optional dependency that fits this machine (@m2m-ssh/linux-x64 and so
// on); this runs its binary with our arguments and stdio, forwards the
// signals we get, and exits as it exits. Nothing is downloaded.
"use strict";
const { spawn } = require("child_process");
const path = require("path");

const pkg = `@m2m-ssh/${process.platform}-${process.arch}`;
const exe = process.platform === "win32" ? "m2m-ssh.exe" : "m2m-ssh";

let bin;
try {
  bin = path.join(path.dirname(require.resolve(`${pkg}/package.json`)), "bin", exe);
} catch {
  process.stderr.write(
    `m2m-ssh: error: ${pkg}, which holds the binary for this machine, is not installed\n` +
      `m2m-ssh: hint: install m2m-ssh without --omit=optional (or --no-optional); binaries exist for linux, darwin and win32 on x64 and arm64\n`,
  );
  process.exit(1);
}

// Run by npx, we live in npx's cache: 'm2m-ssh config' should then print
// the npx command rather than a path in that cache.
const env = { ...process.env };
if (!env.M2M_SSH_INSTALLER && __dirname.split(path.sep).includes("_npx")) {
  env.M2M_SSH_INSTALLER = "npx";
}

const child = spawn(bin, process.argv.slice(2), { stdio: "inherit", env, windowsHide: true });
const signals = ["SIGINT", "SIGTERM", "SIGHUP"];
for (const sig of signals) {
  process.on(sig, () => child.kill(sig));
}
child.on("error", (err) => {
  process.stderr.write(`m2m-ssh: error: cannot start ${bin}: ${err.message}\n`);
  process.exit(1);
});
child.on("exit", (code, signal) => {
  if (signal) {
    // Die of the same signal, so that our parent sees what happened.
    for (const sig of signals) process.removeAllListeners(sig);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code);
});
