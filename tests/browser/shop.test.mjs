// The storefront and the operator dashboard, in Debian's Chromium: what a
// shopper and an operator see, against an edge host and a private host
// serving the repository's spin.toml on the demo bundles.
//
// Run by scripts/test-browser (part of scripts/test). Screenshots and the
// measurements (page weight, time to each shelf) go to target/browser/.

import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { chromium } from "playwright-core";

import { chromiumPath, missing, otherOrigin, out, post, startEdge, startPrivate } from "./harness.mjs";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const report = {};
let browser, edge, privateHost, allowed, refused;

before(async () => {
  const absent = missing();
  if (absent) {
    if (process.env.CI) throw new Error(absent);
    console.log(`skipped: ${absent}`);
    return;
  }
  [allowed, refused] = await Promise.all([otherOrigin(), otherOrigin()]);
  edge = await startEdge(allowed.origin);
  privateHost = await startPrivate();
  browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
  // A new product, listed through the cold-start route: the "new arrivals" shelf shows it.
  for (const host of [edge, privateHost]) {
    const added = await post(`${host.url}/api/items/cold-start`, { items: [{ item_id: "NEW-TEAPOT-1", title: "RED RETROSPOT TEAPOT", category: "kitchen" }] });
    assert.equal(added.status, 200, JSON.stringify(added.json));
  }
});

after(async () => {
  await browser?.close();
  edge?.stop();
  privateHost?.stop();
  allowed?.close();
  refused?.close();
  writeFileSync(join(out, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  if (Object.keys(report).length) console.log(`measured: ${JSON.stringify(report)}`);
});

/** A test that needs the hosts and the browser (skipped, with the reason, when they are absent). */
function check(name, body) {
  test(name, async (t) => {
    if (!browser) return t.skip(missing() ?? "the hosts did not start");
    await body();
  });
}

/** A fresh page that records every response: its URL and bytes on the wire. */
async function openPage(url, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, ...options });
  const page = await context.newPage();
  const responses = [];
  page.on("requestfinished", async (request) => {
    const sizes = await request.sizes().catch(() => null);
    responses.push({ url: request.url(), bytes: sizes ? sizes.responseBodySize + sizes.responseHeadersSize : 0 });
  });
  await page.goto(url);
  return { page, context, responses };
}

const shelfIds = (page, section) => page.$$eval(`#${section} .shelf li`, (items) => items.map((li) => li.dataset.itemId));

check("the storefront loads its shelves under 100 KB, from its own host only", async () => {
  const { page, context, responses } = await openPage(`${edge.url}/`);
  await page.waitForSelector("body[data-ready]");
  await page.waitForLoadState("networkidle");
  assert.ok((await shelfIds(page, "recommended")).length > 0, "a new visitor sees the popular products");
  assert.deepEqual(await shelfIds(page, "arrivals"), ["NEW-TEAPOT-1"], "the product listed through cold-start");
  assert.ok(await page.isVisible("#sponsored .ad button"), "the sponsored slot shows the chosen copy");
  const foreign = responses.filter((r) => !r.url.startsWith(edge.url));
  assert.deepEqual(foreign, [], "no request to any other host");
  const bytes = responses.reduce((sum, r) => sum + r.bytes, 0);
  assert.ok(bytes < 100 * 1024, `first load ${bytes} bytes`);
  report.first_load = { bytes, requests: responses.length, shelves_drawn_ms: await page.evaluate(() => window.edgerecTimings) };
  await context.close();
});

check("a search shows results, and a click changes the recommendations", async () => {
  const { page, context } = await openPage(`${edge.url}/`);
  await page.waitForSelector("body[data-ready]");
  const before = await shelfIds(page, "recommended");
  await page.fill("#query", "red heart mug");
  await page.click("#search button");
  await page.waitForSelector("#results .shelf li");
  assert.match(await page.textContent("#results-title"), /Results for "red heart mug"/);
  const first = await page.$eval("#results .shelf li", (li) => li.dataset.itemId);
  await page.click("#results .shelf li button");
  await page.waitForFunction((old) => {
    const ids = [...document.querySelectorAll("#recommended .shelf li")].map((li) => li.dataset.itemId);
    return ids.length > 0 && ids.join() !== old;
  }, before.join());
  assert.deepEqual((await shelfIds(page, "viewed"))[0], first, "the click joined the history kept in the browser");
  assert.deepEqual(JSON.parse(await page.evaluate(() => localStorage.getItem("edgerec.history"))), [first]);
  await page.screenshot({ path: join(out, "storefront.png"), fullPage: true });
  await context.close();
});

check("a function's error shows as a message a shopper can read", async () => {
  const { page, context } = await openPage(`${edge.url}/`);
  await page.waitForSelector("body[data-ready]");
  await page.fill("#query", "   ");
  await page.click("#search button");
  await page.waitForSelector("#status.error");
  const message = await page.textContent("#status");
  assert.match(message, /^Search failed: .*empty.* \(HTTP 400\)$/, message);
  await context.close();
});

check("another origin is allowed or refused as the host is configured", async () => {
  for (const [server, expected] of [[allowed, /^allowed 1$/], [refused, /^refused$/]]) {
    const { page, context } = await openPage(`${server.origin}/?target=${encodeURIComponent(edge.url)}`);
    await page.waitForFunction(() => document.title !== "waiting");
    assert.match(await page.title(), expected, server.origin);
    await context.close();
  }
});

check("signed in to the private host, a click is recorded with the model that showed it", async () => {
  const shopper = "browser-shopper-1";
  const token = privateHost.tokens.shopper;
  const { page, context } = await openPage(`${privateHost.url}/`);
  await page.waitForSelector("body[data-ready]");
  await page.click("#account summary");
  await page.fill("#user-id", shopper);
  await page.fill("#token", token);
  await page.click("#signin button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#mode").textContent.includes("signed in"));
  const clicked = await page.$eval("#recommended .shelf li", (li) => li.dataset.itemId);
  const recorded = page.waitForResponse((r) => r.url().endsWith("/api/feedback") && r.request().postData().includes('"click"'));
  await page.click("#recommended .shelf li button");
  assert.equal((await recorded).status(), 200);
  const reader = privateHost.tokens.reader;
  const history = await (await fetch(`${privateHost.url}/api/users/${shopper}/history`, { headers: { authorization: `Bearer ${reader}` } })).json();
  const click = history.events.find((e) => e.type === "click");
  assert.equal(click?.item_id, clicked, JSON.stringify(history));
  assert.equal(click.model?.name, "online-retail", JSON.stringify(click));
  assert.ok(history.events.some((e) => e.type === "impression"), "the shelves' impressions were recorded too");
  await context.close();
});

check("the operator dashboard draws traffic, click-through and the model versions", async () => {
  const { page, context } = await openPage(`${privateHost.url}/dashboard.html`);
  await page.fill("#token", privateHost.tokens.operator);
  await page.click("#signin button");
  await page.waitForSelector("#rate svg", { timeout: 20_000 });
  await page.waitForSelector("#ctr svg");
  await page.waitForSelector("#models table");
  assert.match(await page.getAttribute("#ctr svg", "aria-label"), /online-retail 2/);
  assert.match(await page.textContent("#models"), /online-retail: serving version 2/);
  assert.ok((await page.$$("#models svg")).length >= 2, "offline metrics by version and the training curve");
  // Some shoppers meanwhile, so the traffic charts have lines to draw.
  for (let poll = 0; poll < 4; poll++) {
    await Promise.all(Array.from({ length: 5 * (poll + 1) }, (_, i) => post(`${privateHost.url}/api/recommend`, { history: ["85099B"], k: 3 + i })));
    await page.waitForTimeout(2100);
  }
  assert.match(await page.getAttribute("#rate svg", "aria-label"), /\/api\/recommend [1-9]/);
  await page.screenshot({ path: join(out, "dashboard.png"), fullPage: true });
  const { page: refusedPage, context: refusedContext } = await openPage(`${privateHost.url}/dashboard.html`);
  await refusedPage.fill("#token", privateHost.tokens.writer);
  await refusedPage.click("#signin button");
  await refusedPage.waitForSelector("#status.error");
  assert.match(await refusedPage.textContent("#status"), /metrics:read.*HTTP 403/);
  await Promise.all([context.close(), refusedContext.close()]);
});

check("both pages pass axe-core with no serious or critical violation", async () => {
  for (const path of ["/", "/dashboard.html"]) {
    // axe is injected as a script: this context only lets it past the pages' content security policy.
    const { page, context } = await openPage(`${privateHost.url}${path}`, { bypassCSP: true });
    if (path === "/") await page.waitForSelector("body[data-ready]");
    else {
      await page.fill("#token", privateHost.tokens.operator);
      await page.click("#signin button");
      await page.waitForSelector("#models table");
    }
    await page.addScriptTag({ content: axeSource });
    const results = await page.evaluate(() => window.axe.run());
    const serious = results.violations.filter((v) => ["serious", "critical"].includes(v.impact));
    assert.deepEqual(serious.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target).join(" ")})`), [], path);
    report[`axe ${path}`] = { passes: results.passes.length, violations: results.violations.map((v) => `${v.id} (${v.impact})`) };
    await context.close();
  }
});
