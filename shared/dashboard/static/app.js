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
  // data-blank="null": a blank input is sent as null, so an edit clears the stored value instead of keeping it
  if (field.dataset.blank === "null" && raw.trim() === "") return null;
  if (kind === "number") return raw.trim() === "" ? undefined : Number(raw);
  if (kind === "json") {
    if (raw.trim() === "") return undefined;
    try { return JSON.parse(raw); } catch (error) { throw { field: field.name, message: `${field.name}: not valid JSON (${error.message})` }; }
  }
  if (kind === "list") return raw.split(",").map((s) => s.trim()).filter(Boolean);
  if (kind === "lines") return raw.split("\n").map((s) => s.trim()).filter(Boolean);
  if (kind === "optional" && raw.trim() === "") return undefined;
  if (kind === "headers") return readHeaderLines(field);
  return raw;
}

// data-kind="headers": one "Name: value" a line, read into an object (blank lines skipped).
function readHeaderLines(field) {
  const headers = {};
  for (const line of field.value.split("\n")) {
    if (!line.trim()) continue;
    const colon = line.indexOf(":");
    if (colon < 1) throw { field: field.name, message: `${field.name}: write each header as Name: value (not "${line.trim().slice(0, 40)}")` };
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
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
    slot = shownMatch(form, `[data-error-for="${CSS.escape(parts.slice(0, n).join("."))}"]`);
  }
  slot = slot || form.querySelector('[data-error-for=""]');
  if (slot) {
    slot.textContent = error.message || "Something went wrong";
    slot.hidden = false;
    const input = shownMatch(form, `[name="${CSS.escape(slot.dataset.errorFor)}"]`);
    if (input) { input.setAttribute("aria-invalid", "true"); input.focus(); }
  } else {
    toast(error.message || "Something went wrong");
  }
}

// The first match outside a hidden part of the form: forms that show one of several sets of fields (a monitor's
// type) repeat names and error slots in the sets they hide.
function shownMatch(form, selector) {
  const all = [...form.querySelectorAll(selector)];
  return all.find((el) => !el.parentElement.closest("[hidden]")) || all[0] || null;
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
      // api:body lets a page adjust the body before it goes (e.g. leave out what an edit keeps as stored), or
      // refuse it by setting detail.problem to an error {field, message}
      const adjusting = new CustomEvent("api:body", { detail: { body, submitter, problem: null } });
      form.dispatchEvent(adjusting);
      if (adjusting.detail.problem) { showError(form, adjusting.detail.problem); return; }
      body = adjusting.detail.body;
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

  // Live: a status change is applied to its row at once and refreshes the page of rows (counts, uptime, a new
  // monitor's first run), at most every few seconds. Results are not streamed here: at thousands of monitors
  // they arrive hundreds a second, so the rows' last-check times are refreshed every 30 s instead.
  const events = new EventSource(`${BASE}/api/events?types=status_change`);
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
  setInterval(() => { if (document.visibilityState === "visible") throttled(); }, 30000);
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
// ---- end of the monitor detail page ---------------------------------------------------------------------------

// ---- Monitor set-up forms (shared/dashboard/pages/monitor_forms.py) ------------------------------------------
// The type select shows that type's fields and hides the others (hidden fields are not sent); the auth type
// shows its own fields. An edit is a PATCH that leaves out what it keeps as stored: the type when unchanged (so
// the API merges the config into the stored one), and an untouched group holding a stored secret left blank
// (the API never sends a secret back, so the form cannot send it again). "Test" runs the form's check once.
function sameJson(a, b) { return JSON.stringify(a === undefined ? null : a) === JSON.stringify(b === undefined ? null : b); }

function shownIn(form, selector) {
  return [...form.querySelectorAll(selector)].filter((el) => !el.closest("[hidden]"));
}

// Secret headers stored with the monitor are shown as their own password inputs: a typed value replaces the
// stored one, "Remove" drops it, blank keeps it. Returns the names kept as stored.
function mergeSecretHeaders(form, body) {
  const kept = [];
  let touched = false;
  for (const input of shownIn(form, "[data-secret-header]")) {
    const name = input.dataset.secretHeader;
    const remove = form.querySelector(`[data-remove-header="${CSS.escape(name)}"]`);
    if (remove && remove.checked) { touched = true; continue; }
    if (input.value !== "") {
      touched = true;
      body.config = body.config || {};
      body.config.headers = { ...(body.config.headers || {}), [name]: input.value };
    } else {
      kept.push(name);
    }
  }
  return { kept, touched };
}

function keepStored(form, body, initial) {
  const secrets = mergeSecretHeaders(form, body);
  if (body.type !== form.dataset.initialType) return null; // a new type's config replaces the stored one whole
  delete body.type;
  const config = body.config || {};
  for (const group of shownIn(form, "[data-secret-group]")) {
    const path = group.dataset.secretGroup.replace(/^config\./, "");
    const blank = shownIn(group, "[data-keep-secret]").every((input) => input.value === "");
    if (blank && sameJson(config[path], (initial.config || {})[path])) delete config[path];
  }
  if (secrets.kept.length) {
    if (!secrets.touched && sameJson(config.headers, (initial.config || {}).headers)) {
      delete config.headers;
    } else {
      return {
        field: "config.headers",
        message: `config.headers: to change the headers, enter the stored secret ${secrets.kept.join(", ")} again ` +
          "(a stored secret is kept only while the headers stay as they are)",
      };
    }
  }
  return null;
}

const PHASES = [["dnsMs", "DNS"], ["connectMs", "Connect"], ["tlsMs", "TLS"], ["firstByteMs", "First byte"]];

function showOutcome(box, outcome) {
  box.replaceChildren();
  const line = document.createElement("p");
  line.className = "trial-line";
  const status = document.createElement("span");
  status.className = `status status-${outcome.status}`;
  status.dataset.trialStatus = outcome.status;
  const dot = document.createElement("span");
  dot.className = "dot";
  dot.setAttribute("aria-hidden", "true");
  const word = document.createElement("span");
  word.className = "status-word";
  word.textContent = outcome.status;
  status.append(dot, word);
  line.append(status);
  box.append(line);
  const facts = document.createElement("dl");
  facts.className = "facts";
  const add = (label, value, hook) => {
    if (value === null || value === undefined || value === "") return;
    const term = document.createElement("dt");
    term.textContent = label;
    const detail = document.createElement("dd");
    detail.textContent = value;
    if (hook) detail.dataset[hook] = "";
    facts.append(term, detail);
  };
  add("Response time", outcome.responseTimeMs != null ? `${outcome.responseTimeMs} ms` : null, "trialResponseTime");
  add("Status code", outcome.statusCode, "trialStatusCode");
  add("Message", outcome.message, "trialMessage");
  for (const [key, label] of PHASES) add(label, outcome[key] != null ? `${Math.round(outcome[key] * 10) / 10} ms` : null);
  box.append(facts);
}

function wireMonitorForm() {
  const form = document.querySelector("form[data-monitor-form]");
  if (!form) return;
  const typeSelect = form.querySelector("[data-type-select]");
  const showType = () => {
    for (const el of form.querySelectorAll("[data-for-types]")) el.hidden = !el.dataset.forTypes.split(" ").includes(typeSelect.value);
    for (const el of form.querySelectorAll("[data-text-by-type]")) {
      const text = JSON.parse(el.dataset.textByType)[typeSelect.value];
      if (text) el.textContent = text;
    }
  };
  const trialButton = form.querySelector("[data-trial]");
  const outcomeBox = form.querySelector("[data-trial-outcome]");
  const untested = outcomeBox.innerHTML;
  typeSelect.addEventListener("change", () => {
    showType();
    outcomeBox.innerHTML = untested; // a result of another type's check would describe what is no longer asked
  });
  for (const select of form.querySelectorAll("[data-auth-select]")) {
    select.addEventListener("change", () => {
      for (const el of select.closest("fieldset").querySelectorAll("[data-for-auth]")) el.hidden = !el.dataset.forAuth.split(" ").includes(select.value);
    });
  }
  // a field's message goes once the field is changed, so what stays on screen is still true
  form.addEventListener("input", (event) => {
    const name = event.target.name;
    if (!name || event.target.getAttribute("aria-invalid") !== "true") return;
    event.target.removeAttribute("aria-invalid");
    const slot = shownMatch(form, `[data-error-for="${CSS.escape(name)}"]`);
    if (slot) { slot.textContent = ""; slot.hidden = true; }
  });
  const initial = formBody(form);
  if (form.dataset.mode === "edit") {
    form.addEventListener("api:body", (event) => { event.detail.problem = keepStored(form, event.detail.body, initial); });
  } else {
    form.addEventListener("api:body", (event) => { mergeSecretHeaders(form, event.detail.body); });
  }

  trialButton.addEventListener("click", async () => {
    clearErrors(form);
    let body;
    try { body = formBody(form); } catch (invalid) { showError(form, invalid); return; }
    mergeSecretHeaders(form, body);
    trialButton.disabled = true;
    outcomeBox.replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: "Testing…" }));
    try {
      const reply = await api("POST", "/monitors/test", { type: body.type, target: body.target, config: body.config || {} });
      if (!reply.ok) {
        const error = (reply.data && reply.data.error) || { message: `HTTP ${reply.status}` };
        outcomeBox.replaceChildren(Object.assign(document.createElement("p"), { className: "error", textContent: `Not tested: ${error.message}` }));
        showError(form, error);
        return;
      }
      showOutcome(outcomeBox, reply.data);
    } finally {
      trialButton.disabled = false;
    }
  });
}

// ---- Settings pages (notifications, maintenance, synthetic, variables, API keys) -----------------------------

// Notification providers: only the chosen type's fieldset stays in the form, so its names and error slots are
// the only ones (webhook and apprise both have config.url) and hidden fields are never sent.
function wireProviderForm() {
  const form = document.querySelector("form[data-provider-form]");
  if (!form) return;
  const select = form.querySelector("[data-provider-type]");
  const fieldsets = [...form.querySelectorAll("[data-provider-fields]")];
  const anchor = document.createComment("provider fields");
  fieldsets[0].before(anchor);
  function show() {
    for (const fieldset of fieldsets) fieldset.remove();
    const chosen = fieldsets.find((fieldset) => fieldset.dataset.providerFields === select.value);
    if (!chosen) return;
    chosen.hidden = false;
    chosen.disabled = false;
    anchor.after(chosen);
  }
  select.addEventListener("change", show);
  show();
}

// "Send test": the API answers how the sample alert went (sent, partial or failed, with the error), shown in the
// provider's row; a refused call (the provider deleted meanwhile) shows the API's message there too.
function wireProviderTests() {
  for (const button of document.querySelectorAll("button[data-provider-test]")) {
    const outcome = document.querySelector(`[data-test-outcome="${CSS.escape(button.dataset.providerTest)}"]`);
    const report = (status, text) => {
      outcome.hidden = false;
      outcome.className = `test-outcome test-${status}`;
      outcome.dataset.testStatus = status;
      outcome.textContent = text;
    };
    button.addEventListener("click", async () => {
      report("sending", "Sending a test…");
      button.disabled = true;
      try {
        const reply = await api("POST", button.dataset.path);
        if (!reply.ok) {
          report("refused", (reply.data && reply.data.error && reply.data.error.message) || `HTTP ${reply.status}`);
          return;
        }
        const result = reply.data;
        let text = `Test ${result.status} after ${result.attempts === 1 ? "1 attempt" : `${result.attempts} attempts`}`;
        if (result.error) text += `: ${result.error}`;
        if (result.recipients) {
          text += ". " + Object.entries(result.recipients).map(([who, how]) => `${who}: ${how}`).join("; ");
        }
        report(result.status, text);
      } finally {
        button.disabled = false;
      }
    });
  }
}

// Maintenance windows: a one-off window is typed in the browser's local time and sent as the UTC instant.
function wireMaintenanceForm() {
  const form = document.querySelector("form[data-maintenance-form]");
  if (!form) return;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  for (const label of form.querySelectorAll("[data-local-zone]")) label.textContent = `(${zone})`;
  const zoneInput = form.querySelector("[data-browser-zone]");
  if (zoneInput && zoneInput.value === "UTC") zoneInput.value = zone;
  for (const local of form.querySelectorAll("input[data-local-datetime]")) {
    const utc = form.querySelector(`input[data-utc-of="${CSS.escape(local.id)}"]`);
    const sync = () => {
      const moment = local.value ? new Date(local.value) : null;  // datetime-local parses as local time
      utc.value = moment && !Number.isNaN(moment.getTime()) ? moment.toISOString() : "";
    };
    local.addEventListener("input", sync);
    local.addEventListener("change", sync);
    sync();
  }
  const parts = [...form.querySelectorAll("[data-window-part]")];
  const radios = [...form.querySelectorAll("input[data-window-kind]")];
  const showKind = () => {
    const kind = (radios.find((radio) => radio.checked) || radios[0]).value;
    for (const part of parts) part.hidden = part.dataset.windowPart !== kind;
  };
  for (const radio of radios) radio.addEventListener("change", showKind);
  showKind();
}

// The script editor: a monospace textarea with line numbers; Tab and Shift+Tab indent and unindent by four
// spaces, Enter keeps the line's indent. Esc hands Tab back to the page for one keypress, so the editor is
// no keyboard trap.
const INDENT = "    ";
function wireCodeEditors() {
  for (const editor of document.querySelectorAll("[data-code-editor]")) {
    const area = editor.querySelector("textarea");
    const gutter = editor.querySelector(".line-numbers");
    let tabLeaves = false;
    let numbered = 0;
    const number = () => {
      const lines = area.value.split("\n").length;
      if (lines !== numbered) {
        gutter.textContent = Array.from({ length: lines }, (_, i) => i + 1).join("\n");
        numbered = lines;
      }
      gutter.scrollTop = area.scrollTop;
    };
    const replace = (start, end, text, selectStart, selectEnd) => {
      area.setSelectionRange(start, end);
      // execCommand keeps the browser's undo history; setRangeText is the fallback where it is refused
      if (!document.execCommand("insertText", false, text)) area.setRangeText(text, start, end, "end");
      area.setSelectionRange(selectStart, selectEnd);
      number();
    };
    area.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { tabLeaves = true; return; }
      if (event.key === "Tab" && !tabLeaves && !event.ctrlKey && !event.altKey && !event.metaKey) {
        event.preventDefault();
        const { selectionStart: start, selectionEnd: end, value } = area;
        const lineStart = value.lastIndexOf("\n", start - 1) + 1;
        if (!event.shiftKey && start === end) {
          replace(start, end, INDENT, start + INDENT.length, start + INDENT.length);
          return;
        }
        // a selection ending just after a newline does not take in the next line
        const blockEnd = end > start && value[end - 1] === "\n" ? end - 1 : end;
        const block = value.slice(lineStart, blockEnd);
        const lines = block.split("\n");
        const changed = event.shiftKey
          ? lines.map((line) => line.replace(new RegExp(`^ {1,${INDENT.length}}`), ""))
          : lines.map((line) => INDENT + line);
        const text = changed.join("\n");
        const firstShift = changed[0].length - lines[0].length;
        replace(lineStart, blockEnd, text, Math.max(lineStart, start + firstShift), lineStart + text.length);
        return;
      }
      tabLeaves = false;
      if (event.key === "Enter" && !event.shiftKey && !event.ctrlKey && !event.altKey && !event.metaKey) {
        const { selectionStart: start, selectionEnd: end, value } = area;
        const lineStart = value.lastIndexOf("\n", start - 1) + 1;
        const line = value.slice(lineStart, start);
        let indent = line.match(/^ */)[0];
        if (line.trimEnd().endsWith(":")) indent += INDENT;
        event.preventDefault();
        replace(start, end, "\n" + indent, start + 1 + indent.length, start + 1 + indent.length);
      }
    });
    area.addEventListener("input", number);
    area.addEventListener("scroll", () => { gutter.scrollTop = area.scrollTop; });
    number();
  }
}

// A form that saves in place (data-saved="Saved") says so; the synthetic editor's heading follows its title.
function wireSavedForms() {
  for (const form of document.querySelectorAll("form[data-saved]")) {
    form.addEventListener("api:done", (event) => {
      toast(form.dataset.saved);
      const title = event.detail.reply.data && event.detail.reply.data.title;
      const heading = document.querySelector(".page-head h1");
      if (title && heading) { heading.textContent = title; document.title = `${title} · Supercheck`; }
    });
  }
}

// A secret's value is typed into a password input: the "Secret" checkbox switches its field's type.
function wireSecretToggles() {
  for (const toggle of document.querySelectorAll("input[data-secret-toggle]")) {
    const value = toggle.form && toggle.form.querySelector("input[data-secret-value]");
    if (!value) continue;
    const apply = () => { value.type = toggle.checked ? "password" : "text"; };
    toggle.addEventListener("change", apply);
    apply();
  }
}

// A new API key is in the API's reply only: shown here once, never written to the page's HTML, so a reload
// (or coming back) cannot show it again.
function wireNewKeyPanel() {
  const form = document.querySelector("form[data-create-key-form]");
  const panel = document.querySelector("[data-new-key-panel]");
  if (!form || !panel) return;
  const value = panel.querySelector("[data-new-key-value]");
  const state = panel.querySelector("[data-copy-state]");
  value.value = "";
  form.addEventListener("api:done", (event) => {
    const created = event.detail.reply.data;
    value.value = created.key;
    panel.querySelector("[data-new-key-name]").textContent = `(${created.name}, ${created.prefix}…)`;
    state.textContent = "";
    panel.hidden = false;
    form.reset();
    panel.focus();
    value.select();
  });
  panel.querySelector("[data-copy-key]").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value.value);
    } catch (_) {
      value.select();
      document.execCommand("copy");
    }
    state.textContent = "Copied.";
  });
  panel.querySelector("[data-new-key-done]").addEventListener("click", () => {
    value.value = "";
    window.location.reload();
  });
  window.addEventListener("pagehide", () => { value.value = ""; });
}

function wireSettingsPages() {
  wireProviderForm();
  wireProviderTests();
  wireMaintenanceForm();
  wireCodeEditors();
  wireSavedForms();
  wireSecretToggles();
  wireNewKeyPanel();
}
// ---- end of the settings pages ---------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  wireMenu();
  localiseTimes(document);
  wireApiForms(document);
  wireApiActions(document);
  wireMonitorList();
  wireMonitorDetail();
  wireMonitorForm();
  wireSettingsPages();
});
