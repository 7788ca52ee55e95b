// What the browser tests drive: the edgerec host serving the repository's
// spin.toml (storefront, functions, the demo bundles of scripts/setup) as an
// edge and as a private host, each with its own state in a temporary
// directory, and Debian's Chromium through playwright-core.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repo = resolve(import.meta.dirname, "../..");
export const edgerec = join(process.env.CARGO_TARGET_DIR || join(repo, "target"), "release/edgerec");
export const chromiumPath = process.env.EDGEREC_CHROMIUM || "/usr/bin/chromium";
/** Where screenshots and the measurements go. */
export const out = process.env.EDGEREC_BROWSER_OUT || join(repo, "target/browser");
mkdirSync(out, { recursive: true });

/** What the tests need that scripts/setup and scripts/test-browser provide; the first one missing, or null. */
export function missing() {
  const needs = [
    [edgerec, "the edgerec binary (scripts/setup)"],
    [join(repo, "target/wasm32-wasip2/release/storefront.wasm"), "the components (scripts/build-components)"],
    [join(repo, "models/online-retail/2/manifest.json"), "the demo bundle (scripts/setup)"],
    [chromiumPath, "Debian's chromium (scripts/test-browser installs it)"],
  ];
  const absent = needs.find(([path]) => !existsSync(path));
  return absent ? `${absent[1]} is missing: ${absent[0]}` : null;
}

export async function freePort() {
  const server = http.createServer();
  await new Promise((done) => server.listen(0, "127.0.0.1", done));
  const { port } = server.address();
  await new Promise((done) => server.close(done));
  return port;
}

/**
 * Starts `edgerec serve` on spin.toml with the settings `config(dir)`
 * returns (dir: the host's own temporary directory), after `prepare(dir,
 * configFile)`; resolves once /api/health answers.
 */
export async function startHost(name, config, prepare = () => ({})) {
  const dir = mkdtempSync(join(tmpdir(), `edgerec-browser-${name}-`));
  const configFile = join(dir, "host.toml");
  writeFileSync(configFile, config(dir));
  const prepared = prepare(dir, configFile);
  const port = await freePort();
  const child = spawn(edgerec, ["serve", "--manifest", join(repo, "spin.toml"), "--listen", `127.0.0.1:${port}`, "--config", configFile], {
    cwd: repo,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, EDGEREC_LOG: "warn" },
  });
  let log = "";
  child.stderr.on("data", (chunk) => { log += chunk; });
  const url = `http://127.0.0.1:${port}`;
  // The first start pre-initializes the functions (a minute on two cores); later starts read the cache.
  const deadline = Date.now() + 600_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the ${name} host exited: ${log}`);
    try {
      if ((await fetch(`${url}/api/health`)).ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`the ${name} host did not come up: ${log}`);
    await new Promise((done) => setTimeout(done, 200));
  }
  return {
    ...prepared,
    url,
    dir,
    stop() {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An edge host whose functions allow the origin `allowedOrigin` only. */
export function startEdge(allowedOrigin) {
  return startHost("edge", (dir) => `zone = "edge"\ncors_origin = "${allowedOrigin}"\nkv_dir = "${join(dir, "kv")}"\n`);
}

/** A private host with a fresh user store and data key, and a token for each role of the tests. */
export function startPrivate() {
  const config = (dir) =>
    [
      `zone = "private"`,
      `store = "sqlite:${join(dir, "users.sqlite")}"`,
      `key_file = "${join(dir, "data.key")}"`,
      `tokens_file = "${join(dir, "tokens.json")}"`,
      `kv_dir = "${join(dir, "kv")}"`,
      "",
    ].join("\n");
  // Made before the host starts: it reads the tokens file at most once a second.
  const tokens = (dir, configFile) => {
    execFileSync(edgerec, ["keys", "new", "--out", join(dir, "data.key")], { stdio: "ignore" });
    const token = (...scopes) =>
      execFileSync(edgerec, ["tokens", "create", "--config", configFile, "--scopes", scopes.join(",")], { stdio: ["ignore", "pipe", "ignore"] })
        .toString()
        .trim();
    return {
      tokens: {
        shopper: token("users:personalize", "feedback:write"),
        reader: token("users:read"),
        operator: token("metrics:read"),
        writer: token("feedback:write"),
      },
    };
  };
  return startHost("private", config, tokens);
}

/** A server on another origin whose page calls `?target=URL`'s /api/recommend; the page's title says what happened. */
export async function otherOrigin() {
  const page = `<!doctype html><html lang="en"><title>waiting</title><body><script>
    const target = new URLSearchParams(location.search).get("target");
    fetch(target + "/api/recommend", {method: "POST", headers: {"content-type": "application/json"}, body: '{"k": 1}'})
      .then((r) => r.json()).then((j) => { document.title = "allowed " + j.items.length; })
      .catch(() => { document.title = "refused"; });
  </script></body></html>`;
  const server = http.createServer((_, res) => res.writeHead(200, { "content-type": "text/html" }).end(page));
  const port = await freePort();
  await new Promise((done) => server.listen(port, "127.0.0.1", done));
  return { origin: `http://127.0.0.1:${port}`, close: () => server.close() };
}

/** POSTs JSON, as a shop's back office would. */
export async function post(url, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  return { status: response.status, json: await response.json() };
}
