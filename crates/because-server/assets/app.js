// The dashboard's start: the model served, and a user's recommendations
// with their explanations, from the same JSON API every client uses.
"use strict";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

async function getJson(url) {
  const res = await fetch(url);
  const body = await res.json();
  if (!res.ok) throw new Error(body.error ? body.error.message : res.statusText);
  return body;
}

async function showModel() {
  try {
    const m = await getJson("/v1/model");
    $("model").textContent = `${m.spec}: ${m.n_users} users, ${m.n_items} items`;
  } catch (e) {
    $("model").textContent = `the model is not available: ${e.message}`;
  }
}

function contributionBars(explanation) {
  const shown = explanation.contributions.slice(0, 5);
  const largest = Math.max(...shown.map((c) => Math.abs(c.weight)), 1e-9);
  const list = el("ul", { class: "bars" });
  for (const c of shown) {
    const width = Math.round((100 * Math.abs(c.weight)) / largest);
    const bar = el("span", { class: c.weight < 0 ? "bar negative" : "bar", style: `width:${width}px` });
    list.append(el("li", {}, bar, `${c.item.title} (${c.weight.toFixed(3)})`));
  }
  return list;
}

async function recommend(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const user = encodeURIComponent(form.get("user"));
  const k = Number(form.get("k")) || 10;
  const list = $("recommendations");
  list.replaceChildren();
  $("status").textContent = "";
  try {
    const r = await getJson(`/v1/users/${user}/recommendations?k=${k}&explain=true`);
    if (r.fallback) $("status").textContent = `Not personalized: ${r.fallback.reason} (${r.fallback.strategy}).`;
    if (r.explanations_unsupported) $("status").textContent = r.explanations_unsupported;
    for (const item of r.items) {
      const li = el("li", {},
        el("span", { class: "title" }, item.title || item.item),
        el("span", { class: "score" }, `score ${item.score.toFixed(3)}`));
      if (item.explanation) {
        li.append(el("p", { class: "narrative" }, item.explanation.narrative));
        if (item.explanation.contributions.length) li.append(contributionBars(item.explanation));
      }
      list.append(li);
    }
  } catch (e) {
    $("status").textContent = e.message;
  }
}

showModel();
$("ask").addEventListener("submit", recommend);
