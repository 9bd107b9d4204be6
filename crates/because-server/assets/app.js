// The because dashboard: a small hand-written app over the server's own
// JSON API (the same one every client uses, described at /openapi.json).
// Pages are addressed by the URL's hash: #/user/ID, #/item/ID, #/model,
// #/live. Charts are SVG drawn here from the API's numbers, so the page and
// the API never disagree. Nothing is loaded from anywhere else.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const K = 10;
// Contribution bars shown per card before "the rest".
const SHOWN = 6;

// ---------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "onclick" || k === "onsubmit" || k === "onchange" || k === "oninput") e[k] = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c);
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c);
  return e;
}

function svgTitle(text) {
  return svg("title", {}, text);
}

function fmt(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return Number(x).toFixed(digits);
}

function pct(x) {
  return `${(100 * x).toFixed(1)}%`;
}

function when(ms) {
  if (ms === undefined || ms === null) return "";
  return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
}

function itemLink(ref) {
  return el("a", { href: `#/item/${encodeURIComponent(ref.id)}` }, ref.title || ref.id);
}

function showAlert(message) {
  const a = $("alert");
  a.textContent = message;
  a.hidden = false;
}

function clearAlert() {
  $("alert").hidden = true;
  $("alert").textContent = "";
}

function apiKey() {
  return sessionStorage.getItem("because-key") || "";
}

// Every request goes to this server's own API. An error becomes an Error
// whose message is the API's own readable message.
async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  // The key goes with every request once given: writes need it, and so do
  // reads on a server started with --protect-reads.
  if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
  let res;
  try {
    res = await fetch(path, {
      method: options.method || (options.body !== undefined ? "POST" : "GET"),
      headers,
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
    });
  } catch (e) {
    throw new Error("The server could not be reached. Is `because serve` still running?");
  }
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = null;
  }
  if (!res.ok) {
    const msg = body && body.error ? body.error.message : `${res.status} ${res.statusText}`;
    throw new Error(msg);
  }
  return body;
}

function panel(title, ...children) {
  return el("section", { class: "panel" }, el("h2", {}, title), ...children);
}

function loading(text) {
  return el("p", { class: "muted", "aria-busy": "true" }, text);
}

// ------------------------------------------------------------------ model

let info = null;
// The explanation method the cards use (null: the model's default).
let explainMethod = null;

// A picker of the model's explanation methods, when it offers several.
function methodPicker(onchange) {
  const methods = (info && info.explanation_methods) || [];
  if (methods.length < 2) return null;
  const select = el("select", {
    id: "explain-method",
    "aria-label": "Explanation method",
    onchange: () => { explainMethod = select.value || null; onchange(); },
  },
  methods.map((m, i) => el("option", { value: i === 0 ? "" : m, selected: (explainMethod || methods[0]) === m }, i === 0 ? `${m} (default)` : m)));
  return el("label", { class: "method-picker" }, "Explained by ", select);
}

async function loadInfo() {
  try {
    info = await api("/v1/model");
    $("model").textContent = `${info.kind} · ${info.n_users.toLocaleString()} users · ${info.n_items.toLocaleString()} items`;
  } catch (e) {
    $("model").textContent = "the model is not available";
    showAlert(`The model could not be loaded: ${e.message}`);
  }
}

// ------------------------------------------------------------ explanation

const KIND_LABEL = {
  history: "your history",
  session: "this session",
  intent: "what you did",
  item_feature: "shared genre",
  exemplar: "people like you",
  user_feature: "people like you",
  trend: "trending",
  popularity: "popular",
  counterfactual: "what it rests on",
  features: "features",
};

function evidenceOf(r) {
  const list = (refs) => el("ul", {}, refs.map((x) => el("li", {}, itemLink(x.item || x),
    x.weight !== undefined ? ` (${fmt(x.weight)})` : "",
    x.count !== undefined ? ` (${x.count}×, ${x.this_week} this week)` : "")));
  switch (r.kind) {
    case "history": return list(r.items);
    case "session": return list(r.items);
    case "intent": return el("div", {}, `Stage reached: ${r.event}.`, list(r.items));
    case "item_feature": return el("div", {}, `Shared: ${r.level}.`, list(r.items));
    case "exemplar": return el("p", {}, `${r.people} of ${r.of} people who have ${r.items.map((x) => x.title).join(" and ")} chose it (counted over everyone; nobody is named).`);
    case "user_feature": return el("p", {}, `${r.feature} = ${r.level}: ${r.people} of ${r.of} people, ${fmt(r.lift, 1)}× the usual rate.`);
    case "trend": return el("p", {}, `${r.recent} events in the last ${fmt(r.window_days, 0)} days, ${fmt(r.lift, 1)}× its usual rate.`);
    case "popularity": return el("p", {}, `${r.interactions} interactions: #${r.rank} of ${r.of} items.`);
    case "features": return el("ul", {}, [...r.item_features.map((s) => el("li", {}, `item: ${s.input} (${fmt(s.share)})`)),
      ...r.user_features.map((s) => el("li", {}, `you: ${s.input} (${fmt(s.share)})`))]);
    default: return el("p", {}, "");
  }
}

// The deletion test of each explanation method a model offers (sequential
// models: occlusion, attention, rollout, gradient × input), so that people
// can see which one is faithful for this model.
function methodsTable(s) {
  const methods = s.methods || [];
  if (methods.length < 2) return "";
  return el("div", {},
    el("h3", {}, "Deletion test by explanation method"),
    el("table", { class: "methods" },
      el("thead", {}, el("tr", {}, el("th", {}, "method"), el("th", {}, "rank lost, named items"), el("th", {}, "random items"), el("th", {}, "named ÷ random"))),
      el("tbody", {}, methods.map((m) => el("tr", {},
        el("td", {}, m.method.replace(/_/g, " ")),
        el("td", {}, `${fmt(m.deletion_rank_drop_named.mean, 1)} [${fmt(m.deletion_rank_drop_named.ci95[0], 1)}, ${fmt(m.deletion_rank_drop_named.ci95[1], 1)}]`),
        el("td", {}, fmt(m.deletion_rank_drop_random.mean, 1)),
        el("td", {}, m.named_over_random === null || m.named_over_random === undefined ? "–" : `${fmt(m.named_over_random, 1)}×`))))));
}

// The method's label, with its measured deletion test when the model
// folder holds one ("attention: 4.0× random").
function methodLabel(x) {
  const label = methodText(x);
  // The deletion test removes history items: nothing to say without any.
  if (x.fidelity === undefined || x.fidelity === null || x.exact || !x.contributions.length) return label;
  return `${label} Deletion test on this model: the items it names matter ${x.fidelity.toFixed(1)}× as much as random ones.`;
}

function methodText(x) {
  if (x.exact && x.contributions.length) {
    return "Exact decomposition: the bars below add up to the model's score.";
  }
  if (x.reasons.some((r) => r.kind === "popularity")) {
    return "Popularity: the score is how often the item was chosen.";
  }
  if (x.method === "occlusion" && x.contributions.length) {
    return "Measured effects: each bar is how much the score falls when that item is left out (re-scored); the baseline is what no single item accounts for.";
  }
  if (x.method === "gradient_input" && x.contributions.length) {
    return "Gradient × input: a first-order estimate of each item's effect on the score (approximate).";
  }
  if ((x.method === "attention" || x.method === "attention_rollout") && x.contributions.length) {
    return "Attention weights: where the model looked (shares, not parts of the score; approximate).";
  }
  if (x.method === "integrated_gradients" && x.contributions.length) {
    return "Integrated gradients: each bar is the item's share of the score; the baseline holds the features' shares and the score of no input, and everything adds up to the score.";
  }
  if (x.method === "fused" && x.parts && x.parts.length) {
    return `Two models: ${x.parts.map((p) => `${p.name} ${fmt(p.share)}`).join(" + ")} = the score; each bar is an item's share across both parts.`;
  }
  return "Reasons from the data; this model's score does not decompose exactly.";
}

function contributionBars(x) {
  // The strongest few, then everything else in one bar: they still add up.
  const shown = x.contributions.slice(0, SHOWN);
  const hidden = x.contributions.slice(SHOWN);
  const rows = shown.map((c) => ({ label: itemLink(c.item), weight: c.weight, cls: "contrib", id: c.item.id }));
  const rest = hidden.reduce((s, c) => s + c.weight, x.other_contributions);
  if (hidden.length || Math.abs(x.other_contributions) > 0) {
    rows.push({ label: "the rest of the history", weight: rest, cls: "rest" });
  }
  if (Math.abs(x.bias) > 0) rows.push({ label: "baseline", weight: x.bias, cls: "bias" });
  const largest = Math.max(...rows.map((r) => Math.abs(r.weight)), 1e-12);
  const total = rows.reduce((s, r) => s + r.weight, 0);
  const list = el("ul", { class: "bars", "aria-label": "What the score is made of" });
  for (const r of rows) {
    const bar = el("span", { class: `bar${r.weight < 0 ? " neg" : ""}${r.cls === "contrib" ? "" : " rest"}` });
    bar.style.width = `${(100 * Math.abs(r.weight)) / largest}%`;
    list.append(el("li", { class: r.cls, "data-weight": String(r.weight), "data-item": r.id },
      el("span", { class: "label" }, r.label),
      el("span", { class: "track", "aria-hidden": "true" }, bar),
      el("span", { class: "value" }, fmt(r.weight))));
  }
  list.append(el("li", { class: "total", "data-total": String(total) },
    el("span", { class: "label" }, "= score"), el("span", {}), el("span", { class: "value" }, fmt(total))));
  return list;
}

function counterfactualLine(r) {
  const names = r.removed.map((x) => x.title).join(" and ");
  if (r.verified) {
    return el("p", { class: "counterfactual" },
      `Without ${names}, this would drop from #${r.rank_before} to #${r.rank_after}`,
      r.rank_after > r.n ? `, out of the top ${r.n}.` : ".",
      el("span", { class: "muted" }, " (checked by re-ranking)"));
  }
  return el("p", { class: "counterfactual unverified" }, r.sentence);
}

// Where an attention model's attention went when it scored this subject:
// opened on demand (one /v1/explain call), a table of layers and heads
// against the latest history items, each cell shaded by its weight.
function attentionView(rec, subjectOf) {
  const d = el("details", { class: "attention" }, el("summary", {}, "Where the attention went"));
  let drawn = false;
  d.addEventListener("toggle", async () => {
    if (!d.open || drawn) return;
    drawn = true;
    d.append(loading("reading the attention…"));
    try {
      const r = await api("/v1/explain", { body: { ...subjectOf(), item: rec.item } });
      const a = r.attention;
      d.lastChild.remove();
      if (!a) {
        d.append(el("p", { class: "note" }, "No attention for this subject."));
        return;
      }
      const keep = Math.min(a.items.length, 12);
      const start = a.items.length - keep;
      const head = el("tr", {}, el("th", {}, ""), a.items.slice(start).map((it) => el("th", { scope: "col", title: it.title }, it.title.length > 14 ? `${it.title.slice(0, 13)}…` : it.title)));
      const rows = a.weights.map((w, k) => el("tr", { class: "attention-row", "data-sum": String(w.reduce((x, y) => x + y, 0)) },
        el("th", { scope: "row" }, `layer ${Math.floor(k / a.heads) + 1} head ${(k % a.heads) + 1}`),
        w.slice(start).map((v) => {
          const td = el("td", { class: "attention-cell", title: v.toFixed(3) }, v.toFixed(2));
          // Through the CSSOM: the page's policy refuses style attributes.
          td.style.backgroundColor = `rgba(36, 86, 199, ${Math.min(1, v).toFixed(3)})`;
          return td;
        })));
      d.append(el("table", { class: "attention-map" }, el("thead", {}, head), el("tbody", {}, rows)),
        el("p", { class: "note" }, "Attention is what the model looked at, not always why it scored: the deletion test above says how faithful it measured."));
    } catch (e) {
      d.lastChild.remove();
      d.append(el("p", { class: "note" }, `No attention: ${e.message}`));
    }
  });
  return d;
}

// For a model that reads features: the score split over every input
// (integrated gradients), which with the baseline adds up to the score.
function inputShares(x) {
  const a = x.inputs;
  const rows = [
    ...a.user_inputs.map((s) => [`you: ${s.input}`, s.share]),
    ...a.item_inputs.map((s) => [`item: ${s.input}`, s.share]),
    ["baseline (no inputs)", a.baseline],
  ];
  const total = rows.reduce((t, r) => t + r[1], 0);
  return el("table", { class: "input-shares", "data-total": String(total) },
    el("caption", {}, "The score split over the inputs (integrated gradients)"),
    el("tbody", {}, rows.map(([n, v]) => el("tr", {}, el("td", {}, n), el("td", { class: "num" }, fmt(v)))),
      el("tr", {}, el("th", {}, "= score"), el("th", { class: "num" }, fmt(total)))));
}

function card(rec, previous, subjectOf) {
  const x = rec.explanation;
  const li = el("li", { class: "card", "data-item": rec.item, "data-score": String(rec.score) });
  // Against the list before the what-if: new, moved, or rescored.
  let moved = "";
  if (previous) {
    const before = previous.get(rec.item);
    if (before === undefined) moved = "new here";
    else {
      const parts = [];
      if (before.rank !== rec.rank) parts.push(`was #${before.rank}`);
      const delta = rec.score - before.score;
      if (Math.abs(delta) > 1e-6 * (1 + Math.abs(before.score))) parts.push(`score ${delta > 0 ? "+" : ""}${fmt(delta)}`);
      moved = parts.join(", ");
    }
    if (moved) li.classList.add("changed");
  }
  li.append(el("header", {},
    el("span", { class: "rank" }, `#${rec.rank}`),
    el("a", { class: "title", href: `#/item/${encodeURIComponent(rec.item)}` }, rec.title || rec.item),
    moved ? el("span", { class: "chip" }, moved) : null,
    el("span", { class: "score" }, `score ${fmt(rec.score)}`)));
  if (!x) return li;
  li.append(el("p", { class: "narrative" }, x.narrative));
  li.append(el("p", { class: "kind" }, methodLabel(x)));
  if (x.contributions.length) li.append(contributionBars(x));
  const chips = el("div", { class: "reasons" });
  for (const r of x.reasons) {
    if (r.kind === "counterfactual") continue;
    chips.append(el("details", { class: `reason reason-${r.kind}` },
      el("summary", {}, KIND_LABEL[r.kind] || r.kind, " ",
        el("span", { class: "basis" }, r.basis === "model" ? "(model)" : "(data)")),
      el("p", {}, r.sentence),
      evidenceOf(r)));
  }
  li.append(chips);
  const cf = x.reasons.find((r) => r.kind === "counterfactual");
  if (cf) li.append(counterfactualLine(cf));
  if (x.inputs) li.append(inputShares(x));
  if (subjectOf && info && (info.explanation_methods || []).includes("attention")) li.append(attentionView(rec, subjectOf));
  return li;
}

// ------------------------------------------------------------ heat maps

function heatmap(map, which) {
  const rows = map.history.length;
  const cols = map.recommended.length;
  const cell = 26;
  const left = 190;
  const top = 150;
  const values = which === "contributions" ? map.contributions : map.similarity;
  const flat = values.flat();
  const largest = Math.max(...flat.map(Math.abs), 1e-12);
  const s = svg("svg", {
    viewBox: `0 0 ${left + cols * cell + 10} ${top + rows * cell + 10}`,
    width: left + cols * cell + 10,
    role: "img",
    "aria-label": which === "contributions"
      ? "How much each history item adds to each recommendation's score"
      : `How similar each history item is to each recommendation (${map.similarity_basis})`,
    class: `heatmap heatmap-${which}`,
  });
  map.recommended.forEach((r, c) => {
    const x = left + c * cell + cell / 2;
    s.append(svg("text", { x, y: top - 6, transform: `rotate(-55 ${x} ${top - 6})` },
      (r.title || r.item).slice(0, 24)));
  });
  map.history.forEach((h, r) => {
    s.append(svg("text", { x: left - 6, y: top + r * cell + cell * 0.65, "text-anchor": "end" },
      h.title.slice(0, 28)));
    values[r].forEach((v, c) => {
      const strength = Math.min(1, Math.abs(v) / largest);
      const hue = v < 0 ? "179,64,42" : "36,86,199";
      s.append(svg("rect", {
        x: left + c * cell, y: top + r * cell, width: cell - 2, height: cell - 2,
        fill: `rgba(${hue},${(0.08 + 0.92 * strength).toFixed(3)})`,
      }, svgTitle(`${h.title} → ${map.recommended[c].title || map.recommended[c].item}: ${fmt(v)}`)));
    });
  });
  return s;
}

// ----------------------------------------------------------------- users

let live = null;

// Bumped at every navigation: a page drawn by an older navigation's
// requests, when they come back late, is not shown.
let generation = 0;

function stopLive() {
  if (live) clearInterval(live);
  live = null;
}

async function userPage(user) {
  const view = $("view");
  const state = {
    user,
    history: null,
    removed: new Set(),
    added: [],
    baseline: null,
    feedback: [],
    titles: new Map(),
  };
  const historyPanel = panel("History", loading("loading the history…"));
  const addPanel = panel("What if…");
  const feedbackPanel = panel("Record feedback");
  const recsPanel = panel("Recommendations", loading("loading recommendations…"));
  const mapPanel = panel("How the history drives them");
  view.replaceChildren(
    el("h2", {}, `User ${user}`),
    el("div", { class: "columns" },
      el("div", {}, historyPanel, addPanel, feedbackPanel),
      el("div", {}, recsPanel, mapPanel)));

  const whatIf = () => state.removed.size > 0 || state.added.length > 0;

  // The profile the model scores the user from, less what is left out
  // (unless `whole`).
  function profileSequence(whole = false) {
    return state.history.profile
      .filter((p) => whole || !state.removed.has(p.item.id))
      .map((p) => ({ item: p.item.id, value: p.value }));
  }

  function subject() {
    if (!whatIf()) return { user };
    const seq = profileSequence();
    for (const a of state.added) seq.push({ item: a.id, value: 1 });
    return { sequence: seq };
  }

  let latest = 0;

  async function refresh() {
    const token = ++latest;
    const mine = generation;
    const current = () => token === latest && mine === generation;
    clearAlert();
    const cards = el("ol", { class: "cards", "aria-live": "polite" });
    const head = el("div", { class: "whatif-bar" });
    recsPanel.replaceChildren(el("h2", {}, "Recommendations"), head, loading("scoring…"));
    let r;
    try {
      if (whatIf() && !state.baseline) {
        // What-ifs are compared with the same profile scored with nothing
        // changed (as served, the list also folds in stored feedback).
        const base = await api("/v1/recommend", { body: { sequence: profileSequence(true), k: K } });
        state.baseline = new Map(base.items.map((x) => [x.item, { rank: x.rank, score: x.score }]));
      }
      const method = explainMethod ? { method: explainMethod } : {};
      r = whatIf()
        ? await api("/v1/recommend", { body: { ...subject(), k: K, explain: true, counterfactuals: true, ...method } })
        : await api(`/v1/users/${encodeURIComponent(user)}/recommendations?k=${K}&explain=true&counterfactuals=true${explainMethod ? `&method=${encodeURIComponent(explainMethod)}` : ""}`);
      if (!current()) return;
    } catch (e) {
      if (!current()) return;
      recsPanel.replaceChildren(el("h2", {}, "Recommendations"), el("p", { class: "note" }, `No recommendations: ${e.message}`));
      showAlert(e.message);
      return;
    }
    if (whatIf()) {
      const parts = [];
      if (state.removed.size) parts.push(`without ${[...state.removed].map(titleOf).join(", ")}`);
      if (state.added.length) parts.push(`with ${state.added.map((a) => a.title).join(", ")}`);
      head.append(el("strong", { class: "mode" }, `What if: ${parts.join("; ")}`),
        el("button", { class: "plain", type: "button", onclick: () => { state.removed.clear(); state.added = []; drawHistory(); refresh(); } }, "Back to the real history"));
    } else {
      head.append(el("span", { class: "mode muted" }, "As served"));
      if (r.events_used) head.append(el("span", { class: "chip events-used" }, `${r.events_used} feedback event${r.events_used > 1 ? "s" : ""} folded in`));
    }
    const picker = methodPicker(refresh);
    if (picker) head.append(picker);
    if (r.fallback) head.append(el("p", { class: "note" }, `Not personal: ${r.fallback.reason}; showing ${r.fallback.strategy}.`));
    if (r.explanations_unsupported) head.append(el("p", { class: "note" }, r.explanations_unsupported));
    for (const x of r.items) cards.append(card(x, whatIf() ? state.baseline : null, subject));
    recsPanel.replaceChildren(el("h2", {}, "Recommendations"), head, cards);
    drawMap();
  }

  function titleOf(id) {
    const p = state.history.profile.find((x) => x.item.id === id) || state.titles.get(id);
    return p ? p.item.title : id;
  }

  // Feedback stored for the user since training: listing a person's raw
  // events needs the API key, so only with one.
  async function loadFeedback() {
    state.feedback = [];
    if (!apiKey()) return;
    try {
      state.feedback = (await api(`/v1/users/${encodeURIComponent(user)}/events`, { key: true })).events;
    } catch (e) {
      state.feedback = [];
    }
  }

  async function drawMap() {
    mapPanel.replaceChildren(el("h2", {}, "How the history drives them"), loading("mapping…"));
    const mine = generation;
    try {
      const m = await api("/v1/explain/map", { body: { ...subject(), k: K, rows: 10 } });
      if (mine !== generation) return;
      const holder = el("div", {}, heatmap(m, "contributions"));
      const pick = (which) => () => holder.replaceChildren(heatmap(m, which));
      mapPanel.replaceChildren(el("h2", {}, "How the history drives them"),
        el("div", { class: "whatif-bar", role: "group", "aria-label": "Show" },
          el("button", { type: "button", class: "plain", onclick: pick("contributions") }, "Contributions"),
          el("button", { type: "button", class: "plain", onclick: pick("similarity") }, `Similarity (${m.similarity_basis})`)),
        holder,
        el("p", { class: "muted" }, "Rows: the history items that drive these recommendations most. Columns: the recommendations. Darker is more."));
    } catch (e) {
      mapPanel.replaceChildren(el("h2", {}, "How the history drives them"), el("p", { class: "muted" }, `No map: ${e.message}`));
    }
  }

  function drawHistory() {
    const h = state.history;
    const list = el("ul", { class: "history" });
    for (const e of h.entries) {
      const gone = state.removed.has(e.item.id);
      list.append(el("li", { "data-item": e.item.id, class: gone ? "left-out" : null },
        itemLink(e.item),
        el("button", {
          type: "button", class: "plain leave-out", "aria-pressed": gone ? "true" : "false",
          "aria-label": `${gone ? "Put back" : "Leave out"} ${e.item.title}`,
          onclick: () => { gone ? state.removed.delete(e.item.id) : state.removed.add(e.item.id); drawHistory(); refresh(); },
        }, gone ? "put back" : "leave out"),
        el("span", { class: "meta" },
          e.event ? el("span", { class: `chip event-${e.event}` }, e.event) : el("span", { class: "chip" }, `value ${fmt(e.value, 1)}`),
          e.time ? el("span", { class: "when" }, when(e.time)) : null)));
    }
    const src = h.source === "event_log" ? "events from the log the server was given, newest first" : "the model's training data, strongest first";
    const feedback = state.feedback.length
      ? el("div", { class: "stored" }, el("h3", {}, "Feedback since training"),
        el("ul", { class: "history" }, state.feedback.slice().reverse().map((e) => el("li", {},
          itemLink({ id: e.item, title: titleOf(e.item) }),
          el("span", { class: "meta" }, el("span", { class: `chip event-${e.event}` }, e.event || "event"), el("span", { class: "when" }, when(e.time)))))))
      : null;
    historyPanel.replaceChildren(...[el("h2", {}, "History"), feedback].filter(Boolean),
      el("p", { class: "muted" }, `${h.total} ${h.source === "event_log" ? "events" : "items"}: ${src}.`),
      h.known ? list : el("p", { class: "note" }, "The model does not know this user: they get the popular items until they have feedback."));
  }

  function drawAdd() {
    const results = el("ul", { class: "results" });
    const input = el("input", { type: "search", placeholder: "search by title", "aria-label": "Add an item to the history" });
    let timer = null;
    input.oninput = () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const q = input.value.trim();
        if (!q) return results.replaceChildren();
        try {
          const found = await api(`/v1/items?q=${encodeURIComponent(q)}&limit=6`);
          results.replaceChildren(...found.items.map((hit) => el("li", {},
            el("button", { type: "button", class: "plain add-item", onclick: () => { state.added.push(hit.item); input.value = ""; results.replaceChildren(); refresh(); } }, `add ${hit.item.title}`))));
        } catch (e) {
          results.replaceChildren(el("li", { class: "muted" }, e.message));
        }
      }, 200);
    };
    addPanel.replaceChildren(el("h2", {}, "What if…"),
      el("p", { class: "muted" }, "Leave items out of the history, or add one, and see the recommendations and their reasons change: scored on the spot, no retraining."),
      input, results);
  }

  function drawFeedback() {
    const types = info && info.event_types.length ? info.event_types : ["view"];
    const select = el("select", { "aria-label": "Event type" }, types.map((t) => el("option", { value: t }, t)));
    const input = el("input", { placeholder: "item ID or title", "aria-label": "Item", autocomplete: "off", class: "feedback-item" });
    const status = el("p", { class: "muted", role: "status" });
    const send = async (ev) => {
      ev.preventDefault();
      if (!apiKey()) {
        status.textContent = "Give the API key (at the bottom of the page) to record feedback.";
        return;
      }
      status.textContent = "recording…";
      try {
        const q = input.value.trim();
        const found = await api(`/v1/items?q=${encodeURIComponent(q)}&limit=1`);
        if (!found.items.length) throw new Error(`no item matches “${q}”`);
        const item = found.items[0].item;
        const key = (crypto.randomUUID && crypto.randomUUID()) || `${Date.now()}-${Math.random()}`;
        const r = await api("/v1/events", {
          key: true,
          body: { events: [{ user, item: item.id, event: select.value, idempotency_key: key }] },
        });
        status.textContent = `Stored ${select.value} of ${item.title} (${r.stored} new). The list now folds it in.`;
        state.titles.set(item.id, { item });
        state.removed.clear();
        state.added = [];
        await loadFeedback();
        drawHistory();
        refresh();
      } catch (e) {
        status.textContent = `Not recorded: ${e.message}`;
      }
    };
    feedbackPanel.replaceChildren(el("h2", {}, "Record feedback"),
      el("form", { class: "feedback", onsubmit: send }, select, input, el("button", {}, "Record")),
      status);
  }

  try {
    state.history = await api(`/v1/users/${encodeURIComponent(user)}/history?limit=200`);
  } catch (e) {
    historyPanel.replaceChildren(el("h2", {}, "History"), el("p", { class: "note" }, e.message));
    state.history = { user, known: false, source: "training", total: 0, entries: [], profile: [] };
  }
  await loadFeedback();
  drawHistory();
  drawAdd();
  drawFeedback();
  await refresh();
}

// ----------------------------------------------------------------- items

function barChart(values, labels, opts = {}) {
  const w = opts.width || 560;
  const h = opts.height || 120;
  const n = values.length;
  const largest = Math.max(...values, 1e-12);
  const bw = w / Math.max(n, 1);
  const s = svg("svg", { viewBox: `0 0 ${w} ${h + 18}`, width: w, role: "img", "aria-label": opts.label || "bar chart" });
  values.forEach((v, i) => {
    const bh = (h * v) / largest;
    s.append(svg("rect", { x: i * bw + 1, y: h - bh, width: Math.max(bw - 2, 1), height: bh, fill: "#2456c7" },
      svgTitle(`${labels[i]}: ${v}`)));
  });
  if (n) {
    s.append(svg("text", { x: 0, y: h + 14 }, labels[0]));
    s.append(svg("text", { x: w, y: h + 14, "text-anchor": "end" }, labels[n - 1]));
  }
  return s;
}

async function itemPage(id) {
  const view = $("view");
  const mine = generation;
  view.replaceChildren(loading("loading the item…"));
  let item;
  try {
    item = await api(`/v1/items/${encodeURIComponent(id)}`);
    if (mine !== generation) return;
  } catch (e) {
    if (mine !== generation) return;
    view.replaceChildren(el("p", { class: "note" }, `No such item: ${e.message}`));
    showAlert(e.message);
    return;
  }
  const genres = (x) => new Set(x.features.flatMap((f) => (f.name === "year" ? [] : f.values)));
  const ownGenres = genres(item);
  const stats = el("div", { class: "stats" },
    el("div", {}, el("div", { class: "stat" }, item.popularity.toLocaleString()), el("div", { class: "muted" }, `users have it (#${item.popularity_rank} of ${item.n_items})`)),
    el("div", { class: "reach" }, el("div", { class: "stat" }, item.reach.users.toLocaleString()), el("div", { class: "muted" }, `users have it in their top ${item.reach.k} (${pct(item.reach.share)})`)));
  if (item.trend) {
    stats.append(el("div", {}, el("div", { class: "stat" }, `${fmt(item.trend.lift, 1)}×`),
      el("div", { class: "muted" }, `its usual rate in the last ${fmt(item.trend.window_days, 0)} days (${item.trend.recent_events} events)`)));
  }
  const about = panel(item.item.title, el("p", {}, ...item.features.map((f) => el("span", { class: "chip" }, `${f.name}: ${f.values.join(", ")}`)), " "), stats);
  if (item.activity.length) {
    about.append(el("h3", {}, "Events over time"),
      barChart(item.activity.map((b) => b.events), item.activity.map((b) => when(b.start).slice(0, 10)), { label: "Events on this item over the log's span" }));
  }
  const similarPanel = panel("Similar items", loading("finding similar items…"));
  view.replaceChildren(about, similarPanel);
  try {
    const sim = await api(`/v1/items/${encodeURIComponent(id)}/similar?k=10`);
    const infos = await Promise.all(sim.items.map((s) => api(`/v1/items/${encodeURIComponent(s.item)}`).catch(() => null)));
    if (mine !== generation) return;
    const basis = info && info.capabilities.item_embeddings ? "cosine of the model's item vectors" : "the model's item-to-item score";
    const rows = sim.items.map((s, k) => {
      const other = infos[k];
      const shared = other ? [...genres(other)].filter((g) => ownGenres.has(g)) : [];
      return el("tr", {},
        el("td", { class: "num" }, String(s.rank)),
        el("td", {}, el("a", { href: `#/item/${encodeURIComponent(s.item)}` }, s.title || s.item)),
        el("td", { class: "num" }, fmt(s.score)),
        el("td", {}, shared.length ? `both ${shared.join(", ")}` : "no shared genre: chosen by the same people"));
    });
    similarPanel.replaceChildren(el("h2", {}, "Similar items"),
      el("p", { class: "muted" }, `Similarity: ${basis}.`),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", { class: "num" }, "#"), el("th", {}, "item"), el("th", { class: "num" }, "similarity"), el("th", {}, "why"))), el("tbody", {}, rows)));
  } catch (e) {
    similarPanel.replaceChildren(el("h2", {}, "Similar items"), el("p", { class: "muted" }, e.message));
  }
}

// ----------------------------------------------------------------- model

function intervalChart(rows, label) {
  // rows: [{name, mean, ci95:[lo,hi]}], drawn on a shared 0..max scale.
  const w = 560;
  const rowH = 24;
  const left = 150;
  const largest = Math.max(...rows.map((r) => (r.ci95 ? r.ci95[1] : r.mean)), 1e-12);
  const scale = (v) => left + ((w - left - 50) * v) / largest;
  const s = svg("svg", { viewBox: `0 0 ${w} ${rows.length * rowH + 8}`, width: w, role: "img", "aria-label": label });
  rows.forEach((r, i) => {
    const y = i * rowH + 4;
    s.append(svg("text", { x: left - 8, y: y + 14, "text-anchor": "end" }, r.name));
    s.append(svg("rect", { x: left, y: y + 4, width: Math.max(scale(r.mean) - left, 1), height: 12, fill: "#2456c7", opacity: "0.75" },
      svgTitle(`${r.name}: ${fmt(r.mean)}${r.ci95 ? ` (95% interval ${fmt(r.ci95[0])} to ${fmt(r.ci95[1])})` : ""}`)));
    if (r.ci95) {
      s.append(svg("line", { x1: scale(r.ci95[0]), x2: scale(r.ci95[1]), y1: y + 10, y2: y + 10, stroke: "#1d2330", "stroke-width": 2 }));
    }
    s.append(svg("text", { x: w - 4, y: y + 14, "text-anchor": "end" }, fmt(r.mean)));
  });
  return s;
}

const PALETTE = ["#2456c7", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d5a97", "#e07a5f", "#3d405b", "#81b29a", "#f2cc8f", "#6d597a", "#b56576"];

function scatter(points) {
  const w = 640;
  const h = 420;
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (v) => 20 + ((w - 40) * (v - x0)) / (x1 - x0 || 1);
  const sy = (v) => h - 20 - ((h - 40) * (v - y0)) / (y1 - y0 || 1);
  const groups = [...new Set(points.map((p) => p.group || "other"))];
  const color = (g) => PALETTE[groups.indexOf(g || "other") % PALETTE.length];
  const maxPop = Math.max(...points.map((p) => p.popularity), 1);
  const s = svg("svg", { viewBox: `0 0 ${w} ${h}`, width: w, role: "img", "aria-label": "The most popular items in the model's embedding space (first two principal components)", class: "embedding-map" });
  for (const p of points) {
    const a = svg("a", { href: `#/item/${encodeURIComponent(p.item.id)}` },
      svg("circle", { cx: sx(p.x), cy: sy(p.y), r: 2 + 5 * Math.sqrt(p.popularity / maxPop), fill: color(p.group), opacity: "0.75" },
        svgTitle(`${p.item.title}${p.group ? ` (${p.group})` : ""}: ${p.popularity} users`)));
    s.append(a);
  }
  const legend = el("div", { class: "legend" }, groups.slice(0, PALETTE.length).map((g) => {
    const sw = el("span", { class: "swatch" });
    sw.style.background = color(g);
    return el("span", {}, sw, g);
  }));
  return el("div", {}, s, legend);
}

function metricTable(rows) {
  return el("table", { class: "metrics" },
    el("thead", {}, el("tr", {}, el("th", {}, "metric"), el("th", { class: "num" }, "mean"), el("th", { class: "num" }, "95% interval"))),
    el("tbody", {}, rows.map(([name, v]) => el("tr", {}, el("td", {}, name), el("td", { class: "num" }, fmt(v.mean, 4)),
      el("td", { class: "num" }, v.ci95 ? `${fmt(v.ci95[0], 4)} – ${fmt(v.ci95[1], 4)}` : "–")))));
}

async function modelPage() {
  const view = $("view");
  if (!info) await loadInfo();
  if (!info) {
    view.replaceChildren(el("p", { class: "note" }, "The model is not available."));
    return;
  }
  const params = Object.entries(info.params).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, JSON.stringify(v))));
  const caps = Object.entries(info.capabilities).filter(([, v]) => v).map(([k]) => el("span", { class: "chip" }, k.replaceAll("_", " ")));
  const about = panel(`${info.kind}`,
    el("p", { class: "muted spec" }, info.spec),
    el("p", {}, `${info.n_users.toLocaleString()} users, ${info.n_items.toLocaleString()} items. Training data fingerprint `, el("code", {}, info.data_fingerprint), "."),
    el("p", {}, "Can: ", ...caps),
    el("table", { class: "params" }, el("tbody", {}, params)));
  const metrics = panel("Evaluation");
  const test = info.metrics && info.metrics.test && info.metrics.test.metrics;
  if (test) {
    const k = (info.metrics.test.ks || []).includes(10) ? 10 : (info.metrics.test.ks || [])[0];
    const per = ["precision", "recall", "ndcg", "map", "mrr", "hitrate"]
      .map((m) => ({ name: `${m}@${k}`, ...test[`${m}@${k}`] }))
      .filter((r) => r.mean !== undefined);
    metrics.append(
      el("p", { class: "muted" }, `On held-out test data, ${info.metrics.test.users} users${info.metrics.test_protocol ? ` (${info.metrics.test_protocol})` : ", full ranking"}. Lines: 95% bootstrap intervals.`),
      intervalChart(per, "Test metrics with 95% intervals"),
      metricTable(Object.entries(test).filter(([name]) => name.endsWith(`@${k}`))),
      el("details", {}, el("summary", {}, "Every cut-off"), metricTable(Object.entries(test))));
  } else {
    const flat = Object.entries(info.metrics || {}).filter(([, v]) => typeof v !== "object");
    metrics.append(flat.length
      ? el("table", {}, el("tbody", {}, flat.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, String(v))))))
      : el("p", { class: "muted" }, "No evaluation was saved with this model (`because tune`, `run` and `demo` save one)."));
  }
  const fidelity = panel("How faithful the explanations are", loading("measuring on 50 users (the first time takes a moment)…"));
  const globalPanel = panel("What drives the recommendations", loading("waiting for the measurements…"));
  const mapPanel = panel("The catalogue as the model sees it", loading("projecting…"));
  view.replaceChildren(el("div", { class: "grid2" }, about, metrics), fidelity, globalPanel, mapPanel);

  api("/v1/model/map?limit=300").then((m) => {
    mapPanel.replaceChildren(el("h2", {}, "The catalogue as the model sees it"),
      m.points.length ? scatter(m.points) : el("p", { class: "muted" }, m.unavailable || "no embeddings"),
      m.points.length ? el("p", { class: "muted" }, "The 300 most popular items on the first two principal components of the item vectors; size is popularity, colour the first genre. Select a point to open the item.") : "");
  }).catch((e) => mapPanel.replaceChildren(el("h2", {}, "The catalogue as the model sees it"), el("p", { class: "muted" }, e.message)));

  let f;
  try {
    f = await api("/v1/model/fidelity");
  } catch (e) {
    fidelity.replaceChildren(el("h2", {}, "How faithful the explanations are"), el("p", { class: "note" }, e.message));
    globalPanel.remove();
    return;
  }
  if (!f.summary) {
    fidelity.replaceChildren(el("h2", {}, "How faithful the explanations are"), el("p", { class: "note" }, f.unavailable || "not measured"));
    globalPanel.remove();
    return;
  }
  const s = f.summary;
  const est = (name, e) => ({ name, mean: e.mean, ci95: e.ci95 });
  fidelity.replaceChildren(el("h2", {}, "How faithful the explanations are"),
    el("p", { class: "muted" }, `${s.recommendations} recommendations of 50 training users, top ${s.n}. Removing the ${s.k} history items an explanation names must lower an item's rank far more than removing ${s.k} random ones.`),
    el("div", { class: "grid2" },
      el("div", {}, el("h3", {}, "Rank lost when items are removed"),
        intervalChart([est("the named items", s.deletion_rank_drop_named), est("random items", s.deletion_rank_drop_random)], "Deletion test: rank lost, named against random")),
      el("div", {}, el("h3", {}, "Shares"),
        intervalChart([
          est(`leaves the top ${s.n}`, s.named_removal_leaves_top_n),
          est("verified counterfactual", s.counterfactual_validity),
          est("has a supporting item", s.explainability_precision),
          est("has a reason", s.explanation_coverage),
        ], "Shares of explanations"))),
    el("p", {}, `Verified counterfactuals name ${fmt(s.counterfactual_mean_size, 1)} items on average.`,
      s.stability_top3_overlap !== null && s.stability_top3_overlap !== undefined ? ` Top-3 reasons overlap ${pct(s.stability_top3_overlap)} between two trainings.` : ""),
    methodsTable(s));
  const g = s.global;
  if (!g) {
    globalPanel.remove();
    return;
  }
  const drivers = el("ol", {}, g.top_driver_items.map((d) => el("li", {}, el("a", { href: `#/item/${encodeURIComponent(d.item)}` }, d.title), ` — a top reason ${d.count} times`)));
  const genres = g.feature_drivers.slice(0, 12);
  const themes = g.themes ? el("ol", { start: "0" }, g.themes.slice(0, 12).map((t) => el("li", {}, `dimension ${t.dimension}: `,
    t.dominant.length ? el("strong", {}, t.dominant.map(([lvl]) => lvl).slice(0, 2).join(", ") + " — ") : "",
    t.top_items.slice(0, 4).join("; ")))) : el("p", { class: "muted" }, "This model has no latent dimensions.");
  const reach = g.reach.slice(0, 60);
  globalPanel.replaceChildren(el("h2", {}, "What drives the recommendations"),
    el("p", {}, `Popularity bias: the most popular 1% of items get ${pct(g.popularity_bias.top1_share_of_recommendations)} of recommendations, against ${pct(g.popularity_bias.top1_share_of_interactions)} of interactions. ${g.reach.length} items are in someone's top ${s.n}.`),
    el("div", { class: "grid2" },
      el("div", {}, el("h3", {}, "History items most often behind a recommendation"), drivers),
      el("div", {}, el("h3", {}, "Genres of the reasons"),
        genres.length ? barChart(genres.map(([, n]) => n), genres.map(([lvl]) => lvl), { label: "Genres of the items behind recommendations", height: 90 }) : el("p", { class: "muted" }, "No item features were given to the server."),
        el("p", { class: "muted" }, genres.map(([lvl, n]) => `${lvl} ${n}`).join(" · ")))),
    el("h3", {}, "Themes of the latent dimensions"), themes,
    el("h3", {}, "How far the recommendations reach"),
    barChart(reach, reach.map((_, i) => `#${i + 1}`), { label: "Users reached by the most recommended items", height: 80 }),
    el("p", { class: "muted" }, "Users whose top list holds each of the most recommended items, most reached first."));
}

// ------------------------------------------------------------------ live

async function livePage() {
  const view = $("view");
  const stats = el("div", { class: "stats" });
  const chart = el("div");
  const table = el("div");
  view.replaceChildren(panel("Live", el("p", { class: "muted" }, "Updated every 3 seconds from the server's own counters."), stats, el("h3", {}, "Feedback events per minute"), chart, el("h3", {}, "Requests since start"), table));
  let last = null;
  const tick = async () => {
    let l;
    try {
      l = await api("/v1/live");
    } catch (e) {
      showAlert(e.message);
      return;
    }
    clearAlert();
    const now = performance.now();
    const rate = (route) => {
      if (!last) return null;
      const before = last.l.routes.find((r) => r.route === route.route);
      return ((route.requests - (before ? before.requests : 0)) * 1000) / (now - last.t);
    };
    const recent = l.events_per_minute.reduce((s, m) => s + m.events, 0);
    stats.replaceChildren(
      el("div", {}, el("div", { class: "stat events-stored" }, l.events_stored.toLocaleString()), el("div", { class: "muted" }, "events stored")),
      el("div", {}, el("div", { class: "stat" }, recent.toLocaleString()), el("div", { class: "muted" }, `in the last ${l.events_per_minute.length} minutes`)),
      el("div", {}, el("div", { class: "stat" }, `${Math.round(l.uptime_seconds)} s`), el("div", { class: "muted" }, "up")));
    chart.replaceChildren(barChart(l.events_per_minute.map((m) => m.events), l.events_per_minute.map((m) => when(m.start).slice(11)), { label: "Feedback events per minute", height: 80 }));
    table.replaceChildren(el("table", { class: "routes" },
      el("thead", {}, el("tr", {}, ...["route", "requests", "per second", "mean ms", "p95 ms", "4xx", "5xx"].map((h, i) => el("th", { class: i ? "num" : "" }, h)))),
      el("tbody", {}, l.routes.map((r) => {
        const rps = rate(r);
        return el("tr", {}, el("td", {}, r.route), el("td", { class: "num" }, String(r.requests)),
          el("td", { class: "num" }, rps === null ? "…" : rps.toFixed(1)),
          el("td", { class: "num" }, fmt(r.mean_ms, 1)),
          el("td", { class: "num" }, r.p95_ms === null ? "> 1000" : `≤ ${r.p95_ms}`),
          el("td", { class: "num" }, String(r.client_errors)), el("td", { class: "num" }, String(r.server_errors)));
      }))));
    last = { l, t: now };
  };
  const mine = generation;
  await tick();
  if (mine === generation) live = setInterval(tick, 3000);
}

// ------------------------------------------------------------------ home

function homePage() {
  $("view").replaceChildren(panel("Why does it recommend that?",
    el("p", {}, "Give a user ID above to see their history and their recommendations, each with the reasons behind it: the history items that add up to its score, what people like them chose, and what it would take for the item to drop out of their list."),
    el("p", {}, "Try taking items out of the history to see the list change, or open the ", el("a", { href: "#/model" }, "model page"), " for how faithful the explanations are and what drives them overall.")),
    ...[newUserPanel()].filter(Boolean));
}

// A new user known only by features, for models that read them: their
// recommendations, each explained over those features.
function newUserPanel() {
  const cols = (info && info.user_feature_columns) || [];
  if (!cols.length) return null;
  const out = el("ol", { class: "cards", "aria-live": "polite" });
  const form = el("form", {
    id: "new-user",
    onsubmit: async (e) => {
      e.preventDefault();
      const data = new FormData(form);
      const features = {};
      for (const c of cols) {
        const v = String(data.get(c) || "").trim();
        if (v) features[c] = v;
      }
      out.replaceChildren(loading("scoring…"));
      try {
        const r = await api("/v1/recommend", { body: { history: [], user_features: features, k: 10, explain: true } });
        out.replaceChildren(...r.items.map((x) => card(x, null, null)));
      } catch (err) {
        out.replaceChildren();
        showAlert(err.message);
      }
    },
  }, cols.map((c) => el("label", { class: "feature" }, `${c} `, el("input", { name: c, type: "text" }))),
  el("button", { type: "submit" }, "Recommend"));
  return panel("A new user, described by features",
    el("p", {}, "No history, no ID: the model scores from the features alone, and each recommendation's score is split over them."),
    form, out);
}

// ---------------------------------------------------------------- router

async function route() {
  // In-page anchors (the skip link) are not pages.
  if (location.hash && !location.hash.startsWith("#/")) return;
  generation += 1;
  stopLive();
  clearAlert();
  const [, page, arg] = (location.hash || "#/").split("/");
  const id = arg ? decodeURIComponent(arg) : "";
  for (const a of document.querySelectorAll("nav a")) {
    const current = a.dataset.page === (page === "user" || !page ? "home" : page);
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  try {
    if (page === "user" && id) await userPage(id);
    else if (page === "item" && id) await itemPage(id);
    else if (page === "model") await modelPage();
    else if (page === "live") await livePage();
    else homePage();
  } catch (e) {
    showAlert(`Something went wrong: ${e.message}`);
  }
}

$("find").addEventListener("submit", (e) => {
  e.preventDefault();
  const user = new FormData(e.target).get("user").trim();
  if (user) location.hash = `#/user/${encodeURIComponent(user)}`;
});

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("because-key", $("key").value);
  $("key").value = "";
  $("key-state").textContent = apiKey() ? "kept for this tab" : "cleared";
});

document.querySelector(".skip").addEventListener("click", (e) => {
  e.preventDefault();
  $("view").focus();
});

window.addEventListener("hashchange", route);
loadInfo().then(route);
