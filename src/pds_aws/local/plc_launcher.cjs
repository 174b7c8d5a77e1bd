// The local PLC directory: @did-plc/server with its in-memory database, on loopback only.
//
// plc.directory keeps every DID forever; an in-memory directory would forget them when the
// local task is stopped or crashes. So each accepted operation is appended to a journal
// (one JSON line, written before the HTTP response) and replayed at start: identities
// survive restarts the way they do on the real directory.
"use strict";
const fs = require("node:fs");
const { PlcServer, Database } = require("@did-plc/server");

const main = async () => {
  const port = Number(process.argv[2]);
  const journalPath = process.argv[3];
  if (!Number.isInteger(port) || port <= 0 || !journalPath) {
    throw new Error("usage: plc_launcher.cjs PORT JOURNAL_FILE");
  }
  const db = Database.mock();

  let replayed = 0;
  if (fs.existsSync(journalPath)) {
    for (const line of fs.readFileSync(journalPath, "utf8").split("\n")) {
      if (!line.trim()) continue;
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        continue; // a line cut short by a crash was never acknowledged
      }
      await db.validateAndAddOp(entry.did, entry.op);
      replayed += 1;
    }
  }

  const addOp = db.validateAndAddOp.bind(db);
  db.validateAndAddOp = async (did, op) => {
    await addOp(did, op);
    fs.appendFileSync(journalPath, JSON.stringify({ did, op }) + "\n");
  };

  const server = PlcServer.create({ db, port });
  const http = server.app.listen(port, "127.0.0.1");
  await new Promise((resolve, reject) => {
    http.once("listening", resolve);
    http.once("error", reject);
  });
  console.log(`plc directory listening on 127.0.0.1:${port} (${replayed} operations replayed)`);

  const stop = () => http.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
};

main().catch((err) => {
  console.error("plc directory failed to start:", err);
  process.exit(1);
});
