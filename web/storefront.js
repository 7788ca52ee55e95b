// The storefront: every shelf is one fetch to a function route of the same
// host (search, recommend, ads/score, items/cold-start). On the edge the
// shopper's history lives only in this browser; signed in to the private
// host (a user id and a token), the host reads the stored history and the
// page reports impressions and clicks to /api/feedback.

const HISTORY_KEY = "edgerec.history";
const USER_KEY = "edgerec.user";
const TOKEN_KEY = "edgerec.token";
const MAX_HISTORY = 50;
const SHELF = 8;

const $ = (selector) => document.querySelector(selector);
const started = performance.now();
// When each shelf was drawn (ms after the script started), for the browser test.
window.edgerecTimings = {};

const session = {
  history: JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]"),
  user: localStorage.getItem(USER_KEY) || "",
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  query: "",
  get signedIn() { return Boolean(this.user && this.token); },
};

/** POSTs (or GETs, without a body) a function route; throws an Error whose message a shopper can read. */
async function call(what, path, body) {
  const headers = { "content-type": "application/json" };
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  let response;
  try {
    response = await fetch(path, body === undefined ? { headers } : { method: "POST", headers, body: JSON.stringify(body) });
  } catch (e) {
    throw new Error(`${what} failed: the shop's server could not be reached (${e.message})`);
  }
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* reported below */ }
  if (!response.ok) {
    const message = json?.error?.message || text.slice(0, 200) || response.statusText;
    throw new Error(`${what} failed: ${message} (HTTP ${response.status})`);
  }
  if (json === null) throw new Error(`${what} failed: the answer was not JSON`);
  return json;
}

function say(message, isError = false) {
  const status = $("#status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

/** Who is asking: the user id on the private host, else the history kept here. */
function shopper() {
  return session.signedIn ? { user_id: session.user, history: session.history.slice(-5) } : { history: session.history };
}

function hue(id) {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

/** A product card: its title, why it is shown, and a click that views it. */
function card(item, onClick, why = "") {
  const li = document.createElement("li");
  li.className = "item";
  li.dataset.itemId = item.item_id;
  const button = document.createElement("button");
  button.type = "button";
  button.style.setProperty("--hue", hue(item.item_id));
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = item.title;
  const reason = document.createElement("span");
  reason.className = "why";
  reason.textContent = why;
  button.append(title, reason);
  button.addEventListener("click", onClick);
  li.append(button);
  return li;
}

/** Draws items on a shelf; a click on one counts as viewing it. */
function draw(sectionId, items, model, reasonFallback = "") {
  const section = document.getElementById(sectionId);
  section.querySelector(".shelf").replaceChildren(...items.map((item) => card(item, () => view(item, model), item.reason || reasonFallback)));
  section.hidden = false;
  window.edgerecTimings[sectionId] ??= Math.round(performance.now() - started);
  if (items.length) feedback(items.map((item) => event(item.item_id, "impression", model)));
}

function event(itemId, type, model, extra = {}) {
  return { user_id: session.user, item_id: itemId, type, model, event_id: crypto.randomUUID(), ...extra };
}

/** Reports events to the private host; the edge has no feedback route, so nothing is sent there. */
async function feedback(events) {
  if (!session.signedIn) return;
  try {
    await call("Recording your visit", "/api/feedback", { events });
  } catch (e) {
    say(e.message, true);
  }
}

async function view(item, model, adId) {
  session.history = session.history.filter((id) => id !== item.item_id).concat(item.item_id).slice(-MAX_HISTORY);
  localStorage.setItem(HISTORY_KEY, JSON.stringify(session.history));
  rememberTitle(item);
  say(`Viewed "${item.title}". The shelves now take it into account.`);
  await feedback([event(item.item_id, "click", model, adId ? { ad_id: adId } : {})]);
  await Promise.all([recommended(), sponsored(), viewed()]);
}

// Titles of viewed items, so "Recently viewed" needs no extra request.
function rememberTitle(item) {
  const titles = JSON.parse(localStorage.getItem("edgerec.titles") || "{}");
  titles[item.item_id] = item.title;
  localStorage.setItem("edgerec.titles", JSON.stringify(titles));
}

/** "Recently viewed": the history kept here, newest first (a click views it again). */
function viewed() {
  const titles = JSON.parse(localStorage.getItem("edgerec.titles") || "{}");
  const items = session.history.slice().reverse().slice(0, SHELF).map((id) => ({ item_id: id, title: titles[id] || id }));
  $("#viewed .shelf").replaceChildren(...items.map((item) => card(item, () => view(item, lastModel))));
  $("#viewed").hidden = !items.length;
}

// The model of the latest recommendations: a click on "Recently viewed" is credited to it.
let lastModel;

async function recommended() {
  const answer = await call("Recommendations", "/api/recommend", { ...shopper(), k: SHELF });
  lastModel = answer.model;
  draw("recommended", answer.items, answer.model);
  $("#model").textContent = `model ${answer.model.name} ${answer.model.version}`;
}

async function arrivals() {
  const answer = await call("New arrivals", "/api/items/cold-start");
  draw("arrivals", answer.items.slice(0, SHELF), answer.model, "new");
}

let adCopies = null;
async function sponsored() {
  adCopies ??= await call("The sponsored slot", "/ads.json");
  if (!adCopies.length) return;
  const context = session.query ? { query: session.query } : {};
  const answer = await call("The sponsored slot", "/api/ads/score", { ads: adCopies.map(({ id, text }) => ({ id, text })), ...shopper(), ...context });
  const best = adCopies.find((ad) => ad.id === answer.ads[0].id);
  const slot = $("#sponsored .ad");
  const link = document.createElement("button");
  link.type = "button";
  link.textContent = best.text;
  link.dataset.adId = best.id;
  link.addEventListener("click", () => view({ item_id: best.item_id, title: best.title || best.text }, answer.model, best.id));
  slot.replaceChildren(link);
  $("#sponsored").hidden = false;
  window.edgerecTimings.sponsored ??= Math.round(performance.now() - started);
  feedback([event(best.item_id, "impression", answer.model, { ad_id: best.id })]);
}

async function search(query) {
  session.query = query;
  const answer = await call("Search", "/api/search", { query, ...shopper(), k: 12 });
  draw("results", answer.items, answer.model);
  $("#results-title").textContent = answer.items.length ? `Results for "${query}"` : `No results for "${query}"`;
  say(answer.truncated ? "Your search was long; only its beginning was used." : "");
  await sponsored();
}

/** Runs a shelf's loader; a failure shows its message and leaves the other shelves alone. */
async function shelf(loader, ...args) {
  try {
    await loader(...args);
  } catch (e) {
    say(e.message, true);
  }
}

$("#search").addEventListener("submit", (e) => {
  e.preventDefault();
  shelf(search, $("#query").value);
});
$("#signin").addEventListener("submit", (e) => {
  e.preventDefault();
  session.user = $("#user-id").value.trim();
  session.token = $("#token").value.trim();
  localStorage.setItem(USER_KEY, session.user);
  sessionStorage.setItem(TOKEN_KEY, session.token);
  showMode();
  $("#account").open = false;
  shelf(recommended);
});
$("#signout").addEventListener("click", () => {
  session.user = session.token = "";
  localStorage.removeItem(USER_KEY);
  sessionStorage.removeItem(TOKEN_KEY);
  showMode();
  shelf(recommended);
});
$("#forget").addEventListener("click", () => {
  session.history = [];
  localStorage.removeItem(HISTORY_KEY);
  localStorage.removeItem("edgerec.titles");
  viewed();
  shelf(recommended);
});

function showMode() {
  $("#mode").textContent = session.signedIn
    ? `private host: signed in as ${session.user}; clicks are recorded`
    : "edge: your history stays in this browser";
  $("#user-id").value = session.user;
}

showMode();
viewed();
Promise.all([shelf(recommended), shelf(arrivals), shelf(sponsored)]).then(() => {
  document.body.dataset.ready = "true";
});
