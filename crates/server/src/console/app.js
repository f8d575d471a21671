// logbook console: a single page over the public /api/v1. Every piece of
// data is inserted with textContent (through el() below), never as markup:
// event payloads are untrusted.
"use strict";

const view = document.getElementById("view");
const errorBox = document.getElementById("error");
const tokenInput = document.getElementById("token");
tokenInput.value = localStorage.getItem("logbook-token") || "";
tokenInput.addEventListener("change", () => {
  localStorage.setItem("logbook-token", tokenInput.value);
  route();
});

let cleanup = [];

// Builds an element; string children become text nodes, never markup.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "onclick") node.addEventListener("click", value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function headers() {
  const token = tokenInput.value;
  return token ? { Authorization: "Bearer " + token } : {};
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ headers: headers() }, options || {}));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error((body.error || response.status) + ": " + (body.message || response.statusText));
  }
  return body;
}

function pretty(value) {
  return el("pre", {}, JSON.stringify(value, null, 2));
}

function fmtTime(text) {
  return text ? new Date(text).toLocaleString() : "";
}

function table(headings, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, ...headings.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...rows));
}

// Dashboard: store, head, streams, events per second (live chart).
async function dashboard() {
  const cards = el("div", { class: "cards" });
  const canvas = el("canvas", { id: "rate", width: "600", height: "160" });
  view.replaceChildren(el("h2", {}, "Dashboard"), cards,
    el("h3", {}, "Events per second"), canvas);
  const samples = [];
  let last = null;
  async function tick() {
    const info = await api("/api/v1/info");
    const now = performance.now();
    const head = info.head || 0;
    if (last) samples.push(Math.max(0, (head - last.head) / ((now - last.at) / 1000)));
    while (samples.length > 60) samples.shift();
    last = { head, at: now };
    cards.replaceChildren(
      card("store", info.store), card("head position", head),
      card("streams", info.streams),
      card("events/s", samples.length ? samples[samples.length - 1].toFixed(1) : "-"));
    draw(canvas, samples);
  }
  await tick();
  const timer = setInterval(() => tick().catch((e) => showError(e.message)), 1000);
  cleanup.push(() => clearInterval(timer));
}

function card(label, value) {
  return el("div", { class: "card" }, el("div", {}, label), el("div", { class: "value" }, String(value)));
}

function draw(canvas, samples) {
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, canvas.width, canvas.height);
  const max = Math.max(1, ...samples);
  g.strokeStyle = "#2d6cdf";
  g.beginPath();
  samples.forEach((v, i) => {
    const x = (i / 59) * (canvas.width - 10) + 5;
    const y = canvas.height - 5 - (v / max) * (canvas.height - 20);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
  g.fillStyle = "#1d2430";
  g.fillText("max " + max.toFixed(1) + "/s", 8, 12);
}

// Stream browser: prefix search, paging.
async function streams(params) {
  const prefix = params.get("prefix") || "";
  const after = params.get("after") || "";
  const input = el("input", { id: "prefix", placeholder: "prefix, e.g. CargoShip-", value: prefix });
  const search = () => { location.hash = "#/streams?prefix=" + encodeURIComponent(input.value); };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") search(); });
  const query = new URLSearchParams({ limit: "50" });
  if (prefix) query.set("prefix", prefix);
  if (after) query.set("after", after);
  const page = await api("/api/v1/streams?" + query);
  const rows = page.streams.map((s) => el("tr", { class: "stream-row" },
    el("td", {}, el("a", { href: "#/stream/" + encodeURIComponent(s.stream) }, s.stream)),
    el("td", {}, String(s.events)), el("td", {}, String(s.version)),
    el("td", {}, String(s.last_position)), el("td", {}, fmtTime(s.last_recorded_at))));
  const next = page.next_after
    ? el("a", { href: "#/streams?prefix=" + encodeURIComponent(prefix) + "&after=" + encodeURIComponent(page.next_after) }, "next page")
    : null;
  view.replaceChildren(el("h2", {}, "Streams"),
    el("div", { class: "toolbar" }, input, el("button", { onclick: search }, "Search"),
      el("span", {}, page.total + " streams")),
    table(["stream", "events", "version", "last position", "last activity"], rows), next);
}

// One stream: its events with pretty payload and metadata, and the
// aggregate's state at any version when its category is registered.
async function streamPage(stream, params) {
  const from = params.get("from") || "1";
  const page = await api("/api/v1/streams/" + encodeURIComponent(stream) + "?limit=50&from=" + encodeURIComponent(from));
  const rows = page.events.map((e) => el("tr", { class: "event-row" },
    el("td", {}, String(e.version)), el("td", {}, String(e.position)), el("td", {}, e.type),
    el("td", {}, fmtTime(e.recorded_at)), el("td", {}, pretty(e.payload)), el("td", {}, pretty(e.metadata))));
  const next = page.links.next
    ? el("a", { href: "#/stream/" + encodeURIComponent(stream) + "?from=" + (page.events[page.events.length - 1].version + 1) }, "next page")
    : null;
  const parts = [el("h2", {}, stream), el("p", {}, "version " + page.version)];
  const info = await api("/api/v1/info");
  const dash = stream.indexOf("-");
  const category = dash > 0 ? stream.slice(0, dash) : null;
  if (category && info.aggregates.includes(category)) {
    const version = el("input", { type: "number", min: "1", value: String(page.version), id: "at-version" });
    const out = el("div", { id: "aggregate-state" });
    const load = async () => {
      try {
        const state = await api("/api/v1/aggregates/" + encodeURIComponent(category) + "/" +
          encodeURIComponent(stream.slice(dash + 1)) + "?version=" + encodeURIComponent(version.value));
        out.replaceChildren(el("p", {}, category + " at version " + state.version), pretty(state.state));
      } catch (e) { out.replaceChildren(el("p", { class: "error" }, e.message)); }
    };
    parts.push(el("div", { class: "toolbar" }, "State at version", version,
      el("button", { onclick: load }, "Show")), out);
    load();
  }
  parts.push(table(["version", "position", "type", "recorded", "payload", "metadata"], rows), next);
  view.replaceChildren(...parts);
}

// Live tail of the global log over server-sent events.
async function tail() {
  const info = await api("/api/v1/info");
  const list = el("ul", { id: "tail-list" });
  const status = el("span", { id: "tail-status" }, "connecting");
  view.replaceChildren(el("h2", {}, "Live tail"), el("div", { class: "toolbar" }, status), list);
  const from = Math.max(1, (info.head || 0) - 19);
  const query = new URLSearchParams({ from: String(from) });
  if (tokenInput.value) query.set("token", tokenInput.value);
  const source = new EventSource("/api/v1/log/subscribe?" + query);
  source.onopen = () => { status.textContent = "live"; };
  source.onerror = () => { status.textContent = "reconnecting"; };
  source.onmessage = (message) => {
    const e = JSON.parse(message.data);
    list.prepend(el("li", { class: "tail-event" },
      "#" + e.position + "  " + e.stream + " v" + e.version + "  " + e.type + "  " + JSON.stringify(e.payload)));
    while (list.children.length > 500) list.lastChild.remove();
  };
  for (const kind of ["dropped", "shutdown", "error"]) {
    source.addEventListener(kind, (m) => { status.textContent = kind + ": " + JSON.parse(m.data).reason; });
  }
  cleanup.push(() => source.close());
}

// Projections: checkpoint, lag, parked; rebuild, verify and retry.
async function projections() {
  const list = await api("/api/v1/projections");
  const out = el("div", { id: "projection-detail" });
  const act = (name, action) => async () => {
    try {
      const result = await api("/api/v1/projections/" + encodeURIComponent(name) + "/" + action, { method: "POST" });
      out.replaceChildren(el("h3", {}, name + " " + action), pretty(result));
    } catch (e) { showError(e.message); }
  };
  const show = (name) => async () => {
    try {
      const shown = await api("/api/v1/projections/" + encodeURIComponent(name));
      const parked = shown.parked.map((p) => el("tr", {}, el("td", {}, String(p.position)),
        el("td", {}, p.stream), el("td", {}, p.event_type), el("td", {}, p.error)));
      out.replaceChildren(el("h3", {}, name), el("h4", {}, "Parked"),
        table(["position", "stream", "type", "error"], parked), el("h4", {}, "Model"), pretty(shown.model));
    } catch (e) { showError(e.message); }
  };
  const rows = list.projections.map((p) => el("tr", {},
    el("td", {}, p.name), el("td", {}, String(p.checkpoint ?? "-")), el("td", {}, String(p.head ?? "-")),
    el("td", {}, String(p.lag)), el("td", {}, String(p.parked)),
    el("td", {}, el("button", { onclick: show(p.name) }, "show"), " ",
      el("button", { onclick: act(p.name, "retry") }, "retry parked"), " ",
      el("button", { onclick: act(p.name, "rebuild") }, "rebuild"), " ",
      el("button", { onclick: act(p.name, "verify") }, "verify"))));
  view.replaceChildren(el("h2", {}, "Projections"),
    table(["name", "checkpoint", "head", "lag", "parked", ""], rows), out);
}

async function route() {
  for (const done of cleanup) done();
  cleanup = [];
  showError("");
  const hash = location.hash.slice(1) || "/";
  const [path, search] = hash.split("?");
  const params = new URLSearchParams(search || "");
  try {
    if (path === "/streams") await streams(params);
    else if (path.startsWith("/stream/")) await streamPage(decodeURIComponent(path.slice(8)), params);
    else if (path === "/tail") await tail();
    else if (path === "/projections") await projections();
    else await dashboard();
  } catch (e) {
    showError(e.message);
  }
}

window.addEventListener("hashchange", route);
route();
