// Supercheck dashboard: the little JavaScript the server-rendered pages use.
// Writes go to /function/dashboard/api/<API path> (the API itself, for the session's key) with the CSRF header;
// errors come back in the API's shape {error: {code, message, field}} and are shown next to their field.
"use strict";
document.documentElement.classList.add("js");

const BASE = document.querySelector('meta[name="base-path"]').content;
const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

async function api(method, path, body) {
  const init = { method, headers: { "X-CSRF-Token": CSRF, Accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`${BASE}/api${path}`, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: { message: text } }; }
  return { ok: response.ok, status: response.status, data };
}
window.supercheck = { api };

function toast(message) {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.textContent = ""; }, 5000);
}

// Times in the browser's own time zone.
const LOCAL_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
function localiseTimes(root) {
  for (const el of root.querySelectorAll("time[data-local]")) {
    const moment = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) el.textContent = LOCAL_TIME.format(moment);
  }
}

// The mobile menu.
function wireMenu() {
  const toggle = document.querySelector(".menu-toggle");
  const menu = document.getElementById("main-nav");
  if (!toggle || !menu) return;
  toggle.addEventListener("click", () => {
    const open = menu.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  });
}

// Forms that write through the API: <form data-api-form data-method="POST" data-path="/monitors"
// data-redirect="/monitors/{id}">. A field's name is its dotted path in the JSON body (config.url); data-kind
// says how to read it: number, boolean (checkbox), json, list (comma separated), lines (one per line).
function readField(field) {
  const kind = field.dataset.kind || "text";
  if (kind === "boolean") return field.checked;
  const raw = field.value;
  if (kind === "number") return raw.trim() === "" ? undefined : Number(raw);
  if (kind === "json") {
    if (raw.trim() === "") return undefined;
    try { return JSON.parse(raw); } catch (error) { throw { field: field.name, message: `${field.name}: not valid JSON (${error.message})` }; }
  }
  if (kind === "list") return raw.split(",").map((s) => s.trim()).filter(Boolean);
  if (kind === "lines") return raw.split("\n").map((s) => s.trim()).filter(Boolean);
  if (kind === "optional" && raw.trim() === "") return undefined;
  return raw;
}

function setPath(target, dotted, value) {
  const parts = dotted.split(".");
  let node = target;
  for (const part of parts.slice(0, -1)) node = node[part] = node[part] && typeof node[part] === "object" ? node[part] : {};
  node[parts[parts.length - 1]] = value;
}

function formBody(form) {
  const body = {};
  for (const field of form.querySelectorAll("[name]")) {
    if (field.disabled || field.closest("[hidden]") || field.dataset.ignore !== undefined) continue;
    if (field.type === "radio" && !field.checked) continue;
    if (field.type === "checkbox" && field.dataset.kind !== "boolean") {
      if (!field.checked) continue;
      const list = field.name.split(".").reduce((node, part) => (node || {})[part], body);
      setPath(body, field.name, [...(Array.isArray(list) ? list : []), field.value]);
      continue;
    }
    const value = readField(field);
    if (value !== undefined) setPath(body, field.name, value);
  }
  return body;
}

function clearErrors(form) {
  for (const el of form.querySelectorAll("[data-error-for]")) { el.textContent = ""; el.hidden = true; }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

// The API names a field with its dotted path (config.assertions.0.value); show the message at the closest
// element that asked for it, else at the form's own error slot.
function showError(form, error) {
  const field = error.field || "";
  const parts = field.split(".");
  let slot = null;
  for (let n = parts.length; n > 0 && !slot; n--) {
    slot = form.querySelector(`[data-error-for="${CSS.escape(parts.slice(0, n).join("."))}"]`);
  }
  slot = slot || form.querySelector('[data-error-for=""]');
  if (slot) {
    slot.textContent = error.message || "Something went wrong";
    slot.hidden = false;
    const input = form.querySelector(`[name="${CSS.escape(slot.dataset.errorFor)}"]`);
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  } else {
    toast(error.message || "Something went wrong");
  }
}

function fillTemplate(template, data) {
  return template.replace(/\{(\w+)\}/g, (_, key) => encodeURIComponent((data || {})[key] ?? ""));
}

function wireApiForms(root) {
  for (const form of root.querySelectorAll("form[data-api-form]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const submitter = event.submitter;
      const path = (submitter && submitter.dataset.path) || form.dataset.path;
      const method = (submitter && submitter.dataset.method) || form.dataset.method || "POST";
      clearErrors(form);
      let body;
      try { body = formBody(form); } catch (invalid) { showError(form, invalid); return; }
      if (submitter) submitter.disabled = true;
      try {
        const reply = await api(method, path, body);
        if (!reply.ok) { showError(form, (reply.data && reply.data.error) || { message: `HTTP ${reply.status}` }); return; }
        form.dispatchEvent(new CustomEvent("api:done", { detail: { reply, submitter }, bubbles: true }));
        const redirect = (submitter && submitter.dataset.redirect) || form.dataset.redirect;
        if (redirect) window.location.assign(BASE + fillTemplate(redirect, reply.data));
      } finally {
        if (submitter) submitter.disabled = false;
      }
    });
  }
}

// Buttons that call the API once: <button data-api-action data-method="POST" data-path="/monitors/1/pause"
// data-confirm="Delete it?" data-redirect="/">; without a redirect the page reloads to show the change.
function wireApiActions(root) {
  for (const button of root.querySelectorAll("button[data-api-action]")) {
    button.addEventListener("click", async () => {
      if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
      button.disabled = true;
      try {
        const reply = await api(button.dataset.method || "POST", button.dataset.path);
        if (!reply.ok) { toast((reply.data && reply.data.error && reply.data.error.message) || `HTTP ${reply.status}`); return; }
        if (button.dataset.done) toast(button.dataset.done);
        if (button.dataset.redirect) window.location.assign(BASE + fillTemplate(button.dataset.redirect, reply.data));
        else if (button.dataset.stay === undefined) window.location.reload();
        button.dispatchEvent(new CustomEvent("api:done", { detail: { reply }, bubbles: true }));
      } finally {
        button.disabled = false;
      }
    });
  }
}

// The monitor list: filters narrow it from the server as you type, and live events keep it current.
function wireMonitorList() {
  const region = document.querySelector("[data-live-list]");
  const form = document.querySelector("form[data-live-filters]");
  if (!region || !form) return;
  let pending = null;
  let inFlight = null;

  async function refresh() {
    const params = new URLSearchParams(new FormData(form));
    for (const [key, value] of [...params]) if (!value) params.delete(key);
    const current = new URLSearchParams(window.location.search);
    if (current.get("page") && refresh.keepPage) params.set("page", current.get("page"));
    const query = params.toString();
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    try {
      const response = await fetch(`${BASE}/?${query}${query ? "&" : ""}fragment=rows`, {
        headers: { "X-Requested-With": "fetch" }, credentials: "same-origin", signal: inFlight.signal,
      });
      if (response.status === 401) { window.location.assign(`${BASE}/login`); return; }
      if (!response.ok) return;
      const html = await response.text();
      const focused = document.activeElement && region.contains(document.activeElement)
        ? { row: document.activeElement.closest("[data-monitor-id]"), className: document.activeElement.className } : null;
      region.innerHTML = html;
      localiseTimes(region);
      if (focused && focused.row) {
        const again = region.querySelector(`[data-monitor-id="${focused.row.dataset.monitorId}"] .${(focused.className || "").split(" ")[0]}`);
        if (again) again.focus();
      }
      history.replaceState(null, "", `${BASE}/${query ? "?" + query : ""}`);
      region.dispatchEvent(new CustomEvent("list:refreshed", { bubbles: true }));
    } catch (error) {
      if (error.name !== "AbortError") throw error;
    }
  }

  function soon(delay, keepPage) {
    clearTimeout(pending);
    refresh.keepPage = keepPage;
    pending = setTimeout(() => { pending = null; refresh(); }, delay);
  }

  form.addEventListener("submit", (event) => { event.preventDefault(); soon(0, false); });
  form.addEventListener("input", (event) => { if (event.target.matches("input")) soon(250, false); });
  form.addEventListener("change", (event) => { if (event.target.matches("select")) soon(0, false); });

  // Live: a status change is applied to its row at once; anything else refreshes the page of rows, at most
  // every few seconds, so a busy project costs one small request per interval rather than one per event.
  const events = new EventSource(`${BASE}/api/events`);
  let lastRefresh = 0;
  function throttled() {
    const wait = Math.max(0, lastRefresh + 3000 - Date.now());
    if (pending) return;
    pending = setTimeout(() => { pending = null; lastRefresh = Date.now(); refresh.keepPage = true; refresh(); }, wait);
  }
  events.addEventListener("status_change", (message) => {
    const event = JSON.parse(message.data);
    const status = region.querySelector(`[data-monitor-id="${event.monitorId}"] [data-status]`);
    if (status && status.dataset.status !== "paused") {
      status.dataset.status = event.to;
      status.className = `status status-${event.to}`;
      status.querySelector(".status-word").textContent = event.to;
    }
    throttled();
  });
  events.addEventListener("result", throttled);
  window.addEventListener("pagehide", () => events.close());
}

// ------------------------------------------------------------------------------------ the monitor detail page
// (templates/detail/): the results table filters and pages in place (?fragment=results), its day filter is the
// browser's own day (timezoneOffset), and live events keep the status and each location's card current.
function setStatusBadge(badge, status) {
  if (!badge) return;
  badge.dataset.status = status;
  badge.className = `status status-${status}`;
  const word = badge.querySelector(".status-word");
  if (word) word.textContent = status;
}

function wireMonitorDetail() {
  const root = document.querySelector("[data-monitor-detail]");
  if (!root) return;
  const monitorId = root.dataset.monitorId;
  const pagePath = `${BASE}/monitors/${monitorId}`;
  const region = root.querySelector("[data-results]");
  const form = root.querySelector("form[data-results-filters]");
  const offsetField = form && form.querySelector("[data-timezone-offset]");
  const dayField = form && form.querySelector('input[name="date"]');

  // The offset of the chosen day's local midnight, so a day across a daylight-saving change is still whole.
  function setOffset() {
    if (!offsetField) return;
    const day = dayField && /^\d{4}-\d{2}-\d{2}$/.test(dayField.value) ? dayField.value.split("-").map(Number) : null;
    const moment = day ? new Date(day[0], day[1] - 1, day[2]) : new Date();
    offsetField.value = String(moment.getTimezoneOffset());
  }
  setOffset();

  let inFlight = null;
  async function loadResults(query, { remember = true } = {}) {
    if (!region) return;
    const params = new URLSearchParams(query);
    for (const [key, value] of [...params]) if (!value) params.delete(key);
    params.delete("fragment");
    const bare = params.toString();
    params.set("fragment", "results");
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    try {
      const response = await fetch(`${pagePath}?${params}`, {
        headers: { "X-Requested-With": "fetch" }, credentials: "same-origin", signal: inFlight.signal,
      });
      if (response.status === 401) { window.location.assign(`${BASE}/login`); return; }
      if (!response.ok) { toast(`The results could not be loaded (HTTP ${response.status})`); return; }
      region.innerHTML = await response.text();
      localiseTimes(region);
      if (remember) history.replaceState(null, "", `${pagePath}${bare ? "?" + bare : ""}${window.location.hash}`);
      region.dispatchEvent(new CustomEvent("results:refreshed", { bubbles: true }));
    } catch (error) {
      if (error.name !== "AbortError") throw error;
    }
  }

  // The page's other lists (alerts, incidents) and the range keep their place in the query.
  function queryWith(formData) {
    const current = new URLSearchParams(window.location.search);
    const params = new URLSearchParams();
    for (const [key, value] of current) if (!["location", "date", "timezoneOffset", "page", "fragment"].includes(key)) params.set(key, value);
    for (const [key, value] of formData) if (value) params.set(key, value);
    return params;
  }

  if (form) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      setOffset();
      const data = new FormData(form);
      if (!data.get("date")) data.delete("timezoneOffset");
      loadResults(queryWith(data));
    });
    form.addEventListener("change", () => form.requestSubmit());
  }
  if (region) {
    region.addEventListener("click", (event) => {
      const link = event.target.closest(".pager a");
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey) return;
      event.preventDefault();
      loadResults(new URL(link.href).searchParams).then(() => {
        const heading = document.getElementById("results-heading");
        if (heading) heading.scrollIntoView({ block: "start" });
        const again = region.querySelector(`.pager a[rel="${link.rel}"]`) || region.querySelector(".pager a");
        if (again) again.focus();
      });
    });
  }

  // Live: each result updates its location's card at once; the table follows, at most every few seconds.
  const header = root.querySelector("[data-monitor-status] [data-status]");
  const lastCheck = root.querySelector("[data-last-check]");
  let pending = null;
  let lastRefresh = 0;
  function refreshSoon() {
    if (pending) return;
    const wait = Math.max(0, lastRefresh + 3000 - Date.now());
    pending = setTimeout(() => {
      pending = null;
      lastRefresh = Date.now();
      loadResults(new URLSearchParams(window.location.search), { remember: false });
    }, wait);
  }
  function timeElement(iso) {
    const time = document.createElement("time");
    time.setAttribute("data-local", "");
    time.setAttribute("datetime", iso);
    time.textContent = iso;
    return time;
  }

  const events = new EventSource(`${BASE}/api/events?monitorId=${encodeURIComponent(monitorId)}`);
  events.addEventListener("result", (message) => {
    const event = JSON.parse(message.data);
    if (String(event.monitorId) !== monitorId) return;
    const card = root.querySelector(`.location-card[data-location="${CSS.escape(event.location)}"]`);
    if (card) {
      setStatusBadge(card.querySelector("[data-location-status] [data-status]"), event.status);
      const response = card.querySelector("[data-location-response]");
      if (response) response.textContent = event.responseTimeMs == null ? "–" : `${event.responseTimeMs} ms`;
      const checked = card.querySelector("[data-location-checked]");
      if (checked && event.checkedAt) { checked.replaceChildren(timeElement(event.checkedAt)); localiseTimes(checked); }
      const note = card.querySelector(".location-message");
      if (note && event.status === "up") note.remove();
    }
    if (lastCheck && event.checkedAt) { lastCheck.replaceChildren(timeElement(event.checkedAt)); localiseTimes(lastCheck); }
    const lastRun = root.querySelector("[data-last-run]");
    if (lastRun && event.checkedAt) {  // the run the page was drawn with is no longer the last
      lastRun.replaceChildren("Live: the latest result arrived ", timeElement(event.checkedAt));
      localiseTimes(lastRun);
    }
    refreshSoon();
  });
  events.addEventListener("status_change", (message) => {
    const event = JSON.parse(message.data);
    if (String(event.monitorId) !== monitorId) return;
    if (root.dataset.enabled === "true") setStatusBadge(header, event.to);
    toast(`Status changed: ${event.from} → ${event.to}`);
  });
  window.addEventListener("pagehide", () => events.close());
}

document.addEventListener("DOMContentLoaded", () => {
  wireMenu();
  localiseTimes(document);
  wireApiForms(document);
  wireApiActions(document);
  wireMonitorList();
  wireMonitorDetail();
});
