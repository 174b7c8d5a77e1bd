// Test-only stand-in for a broken PDS release (tests/integration/test_upgrade.py): the real PDS
// from our launcher (src/pds_aws/local/pds_launcher.cjs, the package PDS_LOCAL_PACKAGE names),
// with two differences a bad release could bring:
// - `migrate`: once started, it applies one more migration to account.sqlite, as a release's
//   migration would (a table, and its row in Kysely's kysely_migration table). The older
//   version then refuses the database ("corrupted migrations": a migration it does not know);
// - always: com.atproto.server.describeServer answers 500, so `pds-aws smoke` fails.
"use strict";
const path = require("node:path");

const EXTRA_MIGRATION = "999_upgrade_test_extra";

const failDescribeServer = (pds) => {
  const handle = pds.app.handle.bind(pds.app);
  pds.app.handle = (req, res, next) => {
    if (req.url.startsWith("/xrpc/com.atproto.server.describeServer")) {
      res.statusCode = 500;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ error: "InternalServerError", message: "broken release (test)" }));
      return;
    }
    return handle(req, res, next);
  };
};

const applyExtraMigration = () => {
  const Database = require("better-sqlite3");
  const file = path.join(process.env.PDS_DATA_DIRECTORY, "account.sqlite");
  const db = new Database(file, { timeout: 10000 });
  db.exec("CREATE TABLE IF NOT EXISTS upgrade_test_extra (id INTEGER PRIMARY KEY)");
  db.prepare("INSERT OR IGNORE INTO kysely_migration (name, timestamp) VALUES (?, ?)").run(
    EXTRA_MIGRATION,
    new Date().toISOString(),
  );
  db.close();
};

module.exports = ({ migrate }) => {
  const { run } = require(path.join(__dirname, "../../src/pds_aws/local/pds_launcher.cjs"));
  run({
    beforeStart: failDescribeServer,
    started: async () => {
      if (migrate) applyExtraMigration();
    },
  });
};
