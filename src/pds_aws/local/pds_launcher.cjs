// The local runtime's stand-in for the official image's CMD (service/index.js): it starts
// @atproto/pds from node_modules the same way (readEnv, envToCfg, envToSecrets, PDS.create,
// start) with the environment the task definition gives the `pds` container.
//
// It also adds what that file adds to the PDS: GET /tls-check?domain=HOST, which the
// official installer's Caddy asks (on the PDS's own port) before it issues an on-demand
// certificate: 200 for the PDS hostname or an existing handle under a handle domain, 400 for
// a missing domain or one this PDS serves no handles under, 404 for an unknown handle.
//
// A local difference, on purpose: the HTTP socket binds 127.0.0.1:PDS_LOCAL_LISTEN_PORT.
// PDS_PORT stays the edge proxy's port, so the PDS's public URL (http://localhost:PDS_PORT,
// written into every DID document) names the edge, as https://<domain> names the ALB on AWS.
//
// PDS_LOCAL_PACKAGE names the package to start (default @atproto/pds): the local runtime sets
// it from the image tag's @atproto/pds version (an upgrade's target is installed beside the
// default through an npm alias, see src/pds_aws/versions.py).
//
// Run directly, it starts the PDS. Required, it exports `run(hooks)` for a wrapper launcher:
// `hooks.beforeStart(pds, pkg)` runs before the PDS listens, `hooks.started(pds, pkg)` once it
// serves (the upgrade tests use them to stand in for a broken release).
"use strict";
const packageName = process.env.PDS_LOCAL_PACKAGE || "@atproto/pds";
const { PDS, envToCfg, envToSecrets, readEnv, httpLogger } = require(packageName);
const pkg = require(`${packageName}/package.json`);

const main = async (hooks = {}) => {
  const env = readEnv();
  env.version ||= pkg.version;
  const cfg = envToCfg(env);
  const secrets = envToSecrets(env);
  const pds = await PDS.create(cfg, secrets);
  allowLocalPlc(pds);
  if (hooks.beforeStart) hooks.beforeStart(pds, pkg);

  const listenPort = Number(process.env.PDS_LOCAL_LISTEN_PORT);
  if (!Number.isInteger(listenPort) || listenPort <= 0) {
    throw new Error("PDS_LOCAL_LISTEN_PORT must be set to a free TCP port");
  }
  const listen = pds.app.listen.bind(pds.app);
  pds.app.listen = (_port, ...rest) => listen(listenPort, "127.0.0.1", ...rest);

  await pds.start();
  httpLogger.info({ listenPort, version: pkg.version }, "pds has started");
  pds.app.get("/tls-check", (req, res) => tlsCheck(pds, req, res));
  if (hooks.started) await hooks.started(pds, pkg);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    httpLogger.info("pds is stopping");
    await pds.destroy();
    httpLogger.info("pds is stopped");
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
};

// The second local difference: the local PLC directory is plain http on loopback, and
// @atproto/identity's default fetch refuses http: ("Forbidden protocol"), so the PDS could not
// resolve its own accounts' DIDs. Only the did:plc resolver gets the platform fetch, and only
// when the PLC URL is a loopback http URL; on AWS the PLC directory is https://plc.directory.
const allowLocalPlc = (pds) => {
  const plcUrl = new URL(pds.ctx.cfg.identity.plcUrl);
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(plcUrl.hostname);
  const plcResolver = pds.ctx.idResolver.did.methods?.get("plc");
  if (plcUrl.protocol === "http:" && loopback && plcResolver) {
    plcResolver.fetch = globalThis.fetch;
  }
};

const tlsCheck = async (pds, req, res) => {
  const { domain } = req.query;
  try {
    if (typeof domain !== "string" || domain === "") {
      return res.status(400).json({
        error: "InvalidRequest",
        message: "bad or missing domain query param",
      });
    }
    const { cfg, accountManager } = pds.ctx;
    if (domain === cfg.service.hostname) {
      return res.json({ success: true });
    }
    const underHandleDomain = cfg.identity.serviceHandleDomains.some((suffix) =>
      domain.endsWith(suffix),
    );
    if (!underHandleDomain) {
      return res.status(400).json({
        error: "InvalidRequest",
        message: "handles are not provided on this domain",
      });
    }
    if (!(await accountManager.getAccount(domain))) {
      return res.status(404).json({
        error: "NotFound",
        message: "handle not found for this domain",
      });
    }
    return res.json({ success: true });
  } catch (err) {
    httpLogger.error({ err }, "check handle failed");
    return res.status(500).json({
      error: "InternalServerError",
      message: "Internal Server Error",
    });
  }
};

const run = (hooks) =>
  main(hooks).catch((err) => {
    console.error("pds failed to start:", err);
    process.exit(1);
  });

if (require.main === module) {
  run({});
} else {
  module.exports = { run };
}
