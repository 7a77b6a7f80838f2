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

document.addEventListener("DOMContentLoaded", () => {
  wireMenu();
  localiseTimes(document);
  wireApiForms(document);
  wireApiActions(document);
  wireMonitorList();
});
