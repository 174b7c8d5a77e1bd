// Preloaded into the local PDS by benchmarks/task_size.py --better-sqlite3 DIR (NODE_OPTIONS).
//
// Why: better-sqlite3 12.x (what @atproto/pds 0.5.35 resolves) compiled against Node 24.19
// headers aborts the process when V8 garbage-collects a Statement (`Assertion failed: (env) !=
// nullptr` in node::RemoveEnvironmentCleanupHook; nodejs/node#65446). Under sustained load the
// local PDS dies within minutes. better-sqlite3 13 (N-API) does not; this hook resolves the PDS's
// `better-sqlite3` import to the copy in PDS_BENCH_BETTER_SQLITE3 so a load run can finish.
"use strict";
const { registerHooks } = require("node:module");
const { pathToFileURL } = require("node:url");
const path = require("node:path");

const dir = process.env.PDS_BENCH_BETTER_SQLITE3;
if (dir) {
  const entry = pathToFileURL(path.join(dir, "lib", "index.js")).href;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      return nextResolve(specifier === "better-sqlite3" ? entry : specifier, context);
    },
  });
}
