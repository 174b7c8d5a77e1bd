// The local runtime's stand-in for the official image's CMD (service/index.js): it starts
// @atproto/pds from node_modules the same way (readEnv, envToCfg, envToSecrets, PDS.create,
// start) with the environment the task definition gives the `pds` container.
//
// One local difference, on purpose: the HTTP socket binds 127.0.0.1:PDS_LOCAL_LISTEN_PORT.
// PDS_PORT stays the edge proxy's port, so the PDS's public URL (http://localhost:PDS_PORT,
// written into every DID document) names the edge, as https://<domain> names the ALB on AWS.
"use strict";
const { PDS, envToCfg, envToSecrets, readEnv, httpLogger } = require("@atproto/pds");
const pkg = require("@atproto/pds/package.json");

const main = async () => {
  const env = readEnv();
  env.version ||= pkg.version;
  const cfg = envToCfg(env);
  const secrets = envToSecrets(env);
  const pds = await PDS.create(cfg, secrets);

  const listenPort = Number(process.env.PDS_LOCAL_LISTEN_PORT);
  if (!Number.isInteger(listenPort) || listenPort <= 0) {
    throw new Error("PDS_LOCAL_LISTEN_PORT must be set to a free TCP port");
  }
  const listen = pds.app.listen.bind(pds.app);
  pds.app.listen = (_port, ...rest) => listen(listenPort, "127.0.0.1", ...rest);

  await pds.start();
  httpLogger.info({ listenPort }, "pds has started");

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

main().catch((err) => {
  console.error("pds failed to start:", err);
  process.exit(1);
});
