// pamd web console: a single page over /api/v1, with no build step and no
// inline script (the Content-Security-Policy forbids it). Views are built
// with DOM calls, never from HTML strings, so nothing from the API is ever
// parsed as markup.
"use strict";

const state = { user: null, csrf: "", timers: [] };

// --- DOM and API helpers ---------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// api calls the API and answers the decoded body; onResponse, if given,
// sees the response first (its headers).
async function api(method, path, body, onResponse) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = state.csrf;
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  if (onResponse) onResponse(resp);
  const text = await resp.text();
  if (!resp.ok) {
    let msg = resp.statusText, code = "";
    try { const j = JSON.parse(text); msg = j.error || msg; code = j.code || ""; } catch (e) { /* not JSON */ }
    const err = new Error(msg);
    err.status = resp.status;
    err.code = code;
    if (resp.status === 401 && path !== "/api/v1/ui/login") { state.user = null; go("login"); }
    throw err;
  }
  const type = resp.headers.get("Content-Type") || "";
  return type.includes("json") ? JSON.parse(text) : text;
}

// apiPage GETs one page of a list: its items, and the next page's path
// (the Link header's rel="next") or null after the last.
async function apiPage(path) {
  let next = null;
  const items = await api("GET", path, undefined, (resp) => {
    const m = /<([^>]+)>;\s*rel="next"/.exec(resp.headers.get("Link") || "");
    next = m ? m[1] : null;
  });
  return { items, next };
}

function go(route) { location.hash = "#/" + route; }
const main = () => document.getElementById("main");
const isAdmin = () => state.user && state.user.roles.includes("admin");
const canRead = () => state.user && (isAdmin() || state.user.roles.includes("auditor"));
const fmt = (t) => (t && !t.startsWith("0001")) ? new Date(t).toLocaleString() : "–";

// fill replaces an element's children, skipping null, undefined and false
// (replaceChildren would show them as text).
function fill(el, ...kids) {
  el.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
}

function errorBox(err) { return h("div", { class: "error", role: "alert" }, err.message || String(err)); }

// form runs fn on submit and shows its error in the form.
function form(attrs, children, fn) {
  const out = h("div", { class: "form-result", "aria-live": "polite" });
  const f = h("form", Object.assign({ class: "card" }, attrs), children, out);
  f.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    fill(out);
    const data = Object.fromEntries(new FormData(f).entries());
    for (const cb of f.querySelectorAll("input[type=checkbox]")) data[cb.name] = cb.checked;
    const button = f.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    try {
      const res = await fn(data, f);
      if (res instanceof Node) out.append(res);
    } catch (err) {
      out.append(errorBox(err));
    } finally {
      if (button) button.disabled = false;
    }
  });
  return f;
}

const field = (label, input) => h("label", {}, label, input);
// details renders label/value pairs as a definition list in two columns.
function details(...pairs) {
  const flat = pairs.flat();
  const items = [];
  for (let i = 0; i + 1 < flat.length; i += 2) items.push(h("dt", {}, flat[i]), h("dd", {}, flat[i + 1]));
  return h("dl", { class: "card grid" }, items);
}
const input = (name, attrs) => h("input", Object.assign({ name, id: "f-" + name }, attrs || {}));
const check = (name, label, checked) => h("label", { class: "check" }, h("input", { type: "checkbox", name, checked }), label);
function select(name, options, value) {
  return h("select", { name, id: "f-" + name }, options.map((o) => h("option", { value: o, selected: o === value }, o)));
}
// table renders rows under headers in a box that scrolls sideways on its
// own; empty is what an empty table says (what to do next, when there is
// something to do).
function table(headers, rows, empty) {
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.length ? rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))
      : h("tr", {}, h("td", { colspan: headers.length, class: "muted empty" }, empty || "Nothing here yet.")))));
}
function copyable(text) {
  const btn = h("button", { class: "secondary", type: "button" }, "Copy");
  btn.addEventListener("click", () => { navigator.clipboard && navigator.clipboard.writeText(text); btn.textContent = "Copied"; });
  return h("div", {}, h("code", { class: "cmd" }, text), btn);
}
const quote = (s) => /^[\w@%+=:,./-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";

// --- shell -----------------------------------------------------------------

const pages = [
  ["catalog", "Access", () => true],
  ["sessions", "Sessions", () => true],
  ["requests", "Requests", () => true],
  ["resources", "Resources", canRead],
  ["gateways", "Gateways", canRead],
  ["pki", "Certificates", canRead],
  ["audit", "Audit", canRead],
  ["users", "Users", canRead],
  ["roles", "Roles", canRead],
  ["account", "My account", () => true],
  ["sso", "SSO", isAdmin],
];

function renderShell(route) {
  const top = document.getElementById("top");
  top.hidden = !state.user;
  if (!state.user) return;
  fill(document.getElementById("nav"), ...pages.filter((p) => p[2]()).map(([r, label]) =>
    h("a", { href: "#/" + r, class: route === r ? "active" : "", "aria-current": route === r ? "page" : null }, label)));
  fill(document.getElementById("me"), 
    h("span", {}, state.user.name + " (" + state.user.roles.join(", ") + ")"),
    h("button", { class: "secondary", type: "button", onclick: logout }, "Log out"));
}

async function logout() {
  try { await api("POST", "/api/v1/ui/logout"); } catch (e) { /* already out */ }
  state.user = null;
  go("login");
}

async function route() {
  state.timers.forEach(clearInterval);
  state.timers = [];
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  if (!state.user && name !== "login") {
    try {
      const s = await api("GET", "/api/v1/ui/session");
      state.user = s.user; state.csrf = s.csrf;
    } catch (e) { return go("login"); }
  }
  const view = views[name] || views.catalog;
  renderShell(views[name] ? name : "catalog");
  // Each route renders into a container of its own: a view still waiting
  // for the server when the next route starts fills a detached one, not
  // the page that replaced it.
  const m = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  fill(main(), m);
  try {
    await view(m, rest.map(decodeURIComponent));
  } catch (err) {
    fill(m, errorBox(err));
  }
  if (m.isConnected) main().focus({ preventScroll: true });
}

// --- views -----------------------------------------------------------------

const views = {};

views.login = async (m) => {
  state.user = null;
  renderShell("login");
  const totp = field("MFA code", input("totp", { inputmode: "numeric", autocomplete: "one-time-code" }));
  totp.hidden = true;
  fill(m, h("div", { class: "login" }, h("h1", {}, "Log in to pamd"), form({ "aria-label": "log in" }, [
    field("User", input("username", { required: true, autocomplete: "username" })),
    field("Password", input("password", { type: "password", required: true, autocomplete: "current-password" })),
    totp,
    h("p", {}, h("button", { type: "submit" }, "Log in")),
  ], async (d) => {
    try {
      const s = await api("POST", "/api/v1/ui/login", { username: d.username, password: d.password, totp: d.totp || undefined });
      state.user = s.user; state.csrf = s.csrf;
      go(s.user.must_change_password ? "account" : "catalog");
    } catch (err) {
      if (err.code === "mfa_required") { totp.hidden = false; totp.querySelector("input").focus(); }
      throw err;
    }
  })));
  document.getElementById("f-username").focus();
  // SSO: the provider's login is a plain navigation; a failed one comes
  // back with its reason in a cookie only the server sets, shown once.
  const ck = document.cookie.split("; ").find((c) => c.startsWith("__Host-pamd_sso_error="));
  if (ck) {
    document.cookie = "__Host-pamd_sso_error=; Max-Age=0; Path=/; Secure; SameSite=Lax";
    let msg = ck.slice(ck.indexOf("=") + 1);
    try { msg = decodeURIComponent(msg.replace(/\+/g, " ")); } catch (e) { /* shown as it is */ }
    m.querySelector(".login").append(h("div", { class: "error", role: "alert", id: "sso-error" }, msg));
  }
  try {
    const st = await api("GET", "/api/v1/sso/status");
    if (st.enabled) m.querySelector(".login").append(h("p", {}, h("a", { class: "button", id: "sso-login", href: "/api/v1/sso/login" }, "Sign in with SSO")));
  } catch (e) { /* no SSO */ }
};

// views.sso is the admin's SSO settings form: the client secret is
// write-only (left empty, the stored one stays).
views.sso = async (m) => {
  const v = await api("GET", "/api/v1/sso");
  const maps = (v.map || []).map((x) => x.group + "=" + x.role).join("\n");
  const disable = v.enabled ? h("button", { class: "danger", type: "button", id: "sso-disable", onclick: async () => {
    if (!confirm("Turn SSO off? SSO users cannot log in until it is set again.")) return;
    try { await api("DELETE", "/api/v1/sso"); route(); } catch (err) { alert(err.message); }
  } }, "Disable SSO") : null;
  fill(m, h("h1", {}, "Single sign-on (OpenID Connect)"),
    h("p", {}, v.enabled ? "SSO is on." : "SSO is off."),
    details("Console redirect URI", h("code", {}, v.console_redirect_uri), "CLI redirect URI (any port)", h("code", {}, v.cli_redirect_uri)),
    form({ "aria-label": "SSO settings" }, [
      field("Issuer URL", input("issuer", { required: true, value: v.issuer || "", placeholder: "https://idp.example.com" })),
      field("Client ID", input("client_id", { required: true, value: v.client_id || "" })),
      field("Client secret" + (v.has_client_secret ? " (set; leave empty to keep it)" : ""), input("client_secret", { type: "password", autocomplete: "off", required: !v.has_client_secret })),
      field("Scopes", input("scopes", { value: (v.scopes || ["openid", "profile", "email", "groups"]).join(",") })),
      field("Groups claim", input("groups_claim", { value: v.groups_claim || "groups" })),
      field("Group mapping (GROUP=ROLE, one a line)", h("textarea", { name: "map", id: "f-map", rows: 4 }, maps)),
      field("Default role", input("default_role", { value: v.enabled ? (v.default_role || "") : "user" })),
      check("require_mfa_claim", "An MFA at the provider (amr) stands for a pamd TOTP code", !!v.require_mfa_claim),
      field("MFA max age", input("mfa_max_age", { value: v.mfa_max_age || "10m0s" })),
      h("p", {}, h("button", { type: "submit" }, "Save"), " ", disable),
    ], async (d) => {
      const map = d.map.split("\n").map((l) => l.trim()).filter((l) => l).map((l) => {
        const i = l.indexOf("=");
        if (i < 1) throw new Error("mapping line " + JSON.stringify(l) + ": want GROUP=ROLE");
        return { group: l.slice(0, i), role: l.slice(i + 1) };
      });
      await api("PUT", "/api/v1/sso", { issuer: d.issuer, client_id: d.client_id, client_secret: d.client_secret || undefined,
        keep_secret: !d.client_secret, scopes: d.scopes.split(",").map((x) => x.trim()).filter((x) => x), groups_claim: d.groups_claim,
        map, default_role: d.default_role, require_mfa_claim: d.require_mfa_claim, mfa_max_age: d.mfa_max_age });
      route();
      return h("div", { class: "notice", role: "status" }, "Saved.");
    }));
};

// --- resource kinds --------------------------------------------------------
// The server describes each resource type (GET /api/v1/kinds): its label,
// its resources' and accounts' fields and what its pages offer. The forms
// are built from that, so a new type needs no code here.

async function kinds() {
  if (!state.kinds) {
    const list = await api("GET", "/api/v1/kinds");
    state.kinds = Object.fromEntries(list.map((k) => [k.name, k]));
    state.kindOrder = list.map((k) => k.name);
  }
  return state.kinds;
}
const noKind = { resource_fields: [], account_fields: [], access_command: "pamd connect" };

// kindField renders one field of a kind's form; value is what is stored
// (undefined on an add form). Fields shown only for some value of another
// field carry data-show-field and data-show-values for showFields.
function kindField(f, value, edit) {
  const keep = edit && f.keep;
  let el;
  if (f.type === "bool") {
    el = check(f.name, f.label, value === undefined ? f.default === "true" : value !== "false");
  } else {
    const attrs = { placeholder: f.placeholder, title: f.help };
    if (f.required && !f.show_if && !edit) attrs.required = true;
    let input_;
    if (f.type === "select") input_ = select(f.name, f.choices || [], value || f.default);
    else if (f.type === "textarea") input_ = h("textarea", Object.assign({ name: f.name, id: "f-" + f.name }, attrs));
    else {
      Object.assign(attrs, { type: { number: "number", secret: "password" }[f.type] || "text" });
      if (f.type === "number") Object.assign(attrs, { min: 1, max: 65535 });
      if (f.type === "secret") attrs.autocomplete = "new-password";
      if (!keep) attrs.value = value !== undefined && value !== null ? String(value) : (edit ? undefined : f.default);
      input_ = input(f.name, attrs);
    }
    el = field(f.label + (keep ? " (empty keeps the stored one)" : ""), input_);
  }
  if (f.show_if) { el.dataset.showField = f.show_if.field; el.dataset.showValues = f.show_if.values.join(","); }
  return el;
}

// showFields shows each conditional field of a form while its condition holds.
function showFields(f) {
  for (const el of f.querySelectorAll("[data-show-field]")) {
    const ctl = f.querySelector("[name=" + el.dataset.showField + "]");
    el.hidden = !!ctl && !el.dataset.showValues.split(",").includes(ctl.value);
  }
}

// shownValue is a field's value from a submitted form, or undefined when
// the field is hidden or (unless it is a checkbox) empty.
function shownValue(form, f, d) {
  const el = form.querySelector("[name=" + f.name + "]");
  if (!el || el.closest("[hidden]")) return undefined;
  if (f.type === "bool") return String(d[f.name]);
  return d[f.name] === "" || d[f.name] === undefined ? undefined : d[f.name];
}

// resourceRequest adds a kind's resource fields from a form to req.
function resourceRequest(k, form, d, req) {
  for (const f of k.resource_fields) {
    const v = shownValue(form, f, d);
    if (v === undefined) continue;
    if (f.option) (req.options = req.options || {})[f.name] = v;
    else if (f.type === "number") req[f.name] = Number(v) || 0;
    else req[f.name] = v;
  }
  return req;
}

// --- first run -------------------------------------------------------------
// On a new server an admin is shown the way to a first access: a gateway,
// a resource behind it, an account on it, a role that grants it. Each step
// names the page whose form does it, and the command that does the same.

async function setupSteps() {
  const [gateways, resources, catalog, roles, users] = await Promise.all(
    ["gateways", "resources", "catalog", "roles", "users"].map((p) => api("GET", "/api/v1/" + p)));
  const granting = roles.filter((r) => !r.builtin && r.allow.length).map((r) => r.name);
  const gw = gateways.length ? gateways[0].name : "dc1";
  const res = resources.length ? resources[0].name : "web";
  return [
    { done: gateways.length > 0, title: "Enroll a gateway", page: "gateways",
      how: "On Gateways, create a token, then run the command it shows inside the private network, where the gateway reaches your resources.",
      cmd: "pamd gateways token --name " + gw },
    { done: resources.length > 0, title: "Add a resource", page: "resources",
      how: "On Resources, fill in “Add a resource”: what the gateway reaches, and how.",
      cmd: "pamd resources add --type ssh --name " + res + " --gateway " + gw + " --host HOST" },
    { done: catalog.length > 0, title: "Add an account", page: resources.length ? "resource/" + encodeURIComponent(res) : "resources",
      how: "On the resource's page, fill in “Add an account”: the credential pamd keeps and injects.",
      cmd: "pamd accounts add " + res + "/ops --username USER --password-stdin" },
    { done: users.some((u) => u.roles.some((r) => granting.includes(r))), title: "Grant a role", page: "roles",
      how: "On Roles, add a role that allows RESOURCE/ACCOUNT; on Users, give it to the people who need access.",
      cmd: "pamd roles add ops --allow '" + res + "/*' && pamd users set NAME --add-role ops" },
  ];
}

// setupGuide is the first-run card, or null once every step is done.
async function setupGuide() {
  if (!isAdmin()) return null;
  const steps = await setupSteps();
  if (steps.every((s) => s.done)) return null;
  const next = steps.findIndex((s) => !s.done);
  return h("section", { class: "card setup", "aria-label": "getting started" }, h("h2", {}, "Getting started"),
    h("ol", {}, steps.map((s, i) => h("li", { class: s.done ? "done" : i === next ? "next" : "" },
      s.done ? h("span", {}, "✓ " + s.title) : h("a", { href: "#/" + s.page }, s.title),
      i === next ? [h("p", {}, s.how), h("p", { class: "muted" }, "Or from a shell:"), copyable(s.cmd)] : null))));
}

views.catalog = async (m) => {
  const [entries, guide] = await Promise.all([api("GET", "/api/v1/catalog"), setupGuide(), kinds()]);
  const detail = h("div", { id: "access" });
  const empty = isAdmin() ? "Nothing to access yet: follow the steps above." : "No access is granted to you yet: an admin grants it with a role.";
  fill(m, h("h1", {}, "Access"), guide,
    h("p", { class: "muted" }, "The resources and accounts your roles allow. Access opens a time-boxed session; credentials never leave pamd."),
    catalogTable(entries, detail, empty), detail);
};

// catalogTable lists the targets; the Access column stays in view when the
// table scrolls sideways (a phone), so that every row can be opened.
function catalogTable(entries, detail, empty) {
  const t = table(["Target", "Type", "User name", "Gateway", "Max", "Needs", ""], entries.map((e) => [
      e.resource + "/" + e.account, e.type, e.username || "–",
      h("span", {}, e.gateway_group ? "group " + e.gateway_group : e.gateway, " ", h("span", { class: "badge " + (e.gateway_online ? "online" : "offline") }, e.gateway_online ? "online" : "offline")),
      e.grant_ends ? "approved until " + fmt(e.grant_ends) : e.max_duration + (e.on_request ? " on request" : ""),
      [e.require_mfa ? "MFA " : "", e.require_reason ? "reason" : ""].join("") || "–",
      [e.on_request && !e.grant_ends ? h("button", { type: "button", onclick: () => go("requests/" + e.resource + "/" + e.account) }, "Request")
        : h("button", { type: "button", onclick: () => showAccess(detail, e) }, "Access"),
        ...(opensInBrowser(e) ? [" ", h("button", { type: "button", class: "secondary", onclick: () => showOpenInBrowser(detail, e) }, "Open in browser")] : [])],
    ]), empty);
  t.classList.add("catalog");
  return t;
}

function showAccess(detail, e) {
  const target = e.resource + "/" + e.account;
  const out = h("div", {});
  const render = () => {
    const d = Object.fromEntries(new FormData(f).entries());
    const k = state.kinds[e.type] || noKind;
    let cmd = k.access_command + " " + target + " --duration " + (d.duration || "1h");
    if (d.reason) cmd += " --reason " + quote(d.reason);
    if (e.require_mfa) cmd += " --totp CODE";
    fill(out, h("p", {}, "Run on your computer (logged in with pamd login):"), copyable(cmd),
      k.access_note ? h("p", { class: "muted" }, k.access_note.replaceAll("{target}", target)) : null);
  };
  const f = h("form", { class: "card", "aria-label": "access " + target },
    h("h2", {}, "Access " + target),
    h("div", { class: "row" },
      field("Duration", select("duration", ["15m", "30m", "1h", "2h", "4h", "8h"], "1h")),
      field("Reason" + (e.require_reason ? " (required)" : ""), input("reason", { required: e.require_reason, placeholder: "ticket or purpose" }))),
    out);
  f.addEventListener("input", render);
  render();
  fill(detail, f);
  f.querySelector("select").focus();
}

// --- the browser terminal (term.html) --------------------------------------
// It opens a shell where pamd ssh would: on the kinds whose access command
// that is.
const opensInBrowser = (e) => (state.kinds[e.type] || noKind).access_command === "pamd ssh";

// showOpenInBrowser asks what pamd ssh asks (duration, reason, MFA code),
// opens the session and goes to its terminal. The grant's credential is
// dropped: the terminal does not use it.
function showOpenInBrowser(detail, e) {
  const target = e.resource + "/" + e.account;
  const f = form({ "aria-label": "open " + target + " in the browser" }, [
    h("h2", {}, "Open " + target + " in the browser"),
    h("div", { class: "row" },
      field("Duration", select("duration", ["15m", "30m", "1h", "2h", "4h", "8h"], "1h")),
      field("Reason" + (e.require_reason ? " (required)" : ""), input("reason", { required: e.require_reason, placeholder: "ticket or purpose" })),
      e.require_mfa ? field("MFA code", input("totp", { required: true, inputmode: "numeric", autocomplete: "one-time-code" })) : null,
      h("button", { type: "submit" }, "Open terminal")),
  ], async (d) => {
    const req = { resource: e.resource, account: e.account, duration: d.duration, reason: d.reason || undefined, totp: d.totp || undefined };
    // Not api(): a wrong MFA code answers 401, which is no logout.
    const r = await fetch("/api/v1/sessions", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": state.csrf }, body: JSON.stringify(req) });
    const g = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(g.error || r.statusText);
    location.assign("term.html#" + encodeURIComponent(g.session.id));
  });
  fill(detail, f);
  f.querySelector("select").focus();
}

views.resources = async (m) => {
  const [resources, gateways] = await Promise.all([api("GET", "/api/v1/resources"), api("GET", "/api/v1/gateways"), kinds()]);
  const online = Object.fromEntries(gateways.map((g) => [g.name, g.online]));
  // A group is online while any of its gateways is.
  const groupOnline = Object.fromEntries(gateways.filter((g) => g.group && g.online).map((g) => [g.group, true]));
  const reachable = (r) => r.gateway_group ? groupOnline[r.gateway_group] : online[r.gateway];
  const rows = resources.map((r) => [
    h("a", { href: "#/resource/" + encodeURIComponent(r.name) }, r.name), r.type,
    h("span", {}, via(r), " ", h("span", { class: "badge " + (reachable(r) ? "online" : "offline") }, reachable(r) ? "online" : "offline")),
    r.address || r.host + ":" + r.port, fmt(r.created_at),
    isAdmin() ? h("button", { class: "danger", type: "button", onclick: async () => {
      if (!confirm("Remove resource " + r.name + " and all its accounts?")) return;
      try { await api("DELETE", "/api/v1/resources/" + encodeURIComponent(r.name)); route(); } catch (err) { alert(err.message); }
    } }, "Remove") : "",
  ]);
  const usable = gateways.filter((g) => !g.revoked_at);
  const empty = !isAdmin() ? "No resources yet." : usable.length ? "No resources yet: add the first with the form below (or pamd resources add)."
    : h("span", {}, "No resources yet. A resource is reached through a gateway: ", h("a", { href: "#/gateways" }, "enroll a gateway"), " first.");
  fill(m, h("h1", {}, "Resources"), table(["Name", "Type", "Gateway", "Address", "Created", ""], rows, empty),
    isAdmin() && usable.length ? resourceForm(usable) : null);
}

// via is what reaches a resource: its gateway, or "group NAME".
const via = (r) => r.gateway_group ? "group " + r.gateway_group : r.gateway;

// viaRequest is the gateway part of a resource's request: the group when
// one is given (its gateways share the connections), else the gateway.
const viaRequest = (d) => d.gateway_group ? { gateway_group: d.gateway_group } : { gateway: d.gateway };

// gatewaySelect picks one of the known gateways (value: the current one).
function gatewaySelect(gateways, value) {
  const names = gateways.map((g) => g.name);
  if (value && !names.includes(value)) names.unshift(value);
  return select("gateway", names, value || names[0]);
}

function resourceForm(gateways) {
  const typeSel = select("type", state.kindOrder, state.kindOrder[0]);
  const kindFields = h("div", { class: "row" });
  const sync = () => fill(kindFields, state.kinds[typeSel.value].resource_fields.map((f) => kindField(f, undefined, false)));
  typeSel.addEventListener("change", sync);
  const f = form({ "aria-label": "add resource" }, [
    h("h2", {}, "Add a resource"),
    h("div", { class: "row" }, field("Type", typeSel), field("Name", input("name", { required: true })),
      field("Gateway", gatewaySelect(gateways)), field("Or gateway group", input("gateway_group", { placeholder: "any gateway of the group" }))),
    kindFields, h("p", {}, h("button", { type: "submit" }, "Add resource")),
  ], async (d, form) => {
    const req = resourceRequest(state.kinds[d.type], form, d, Object.assign({ name: d.name, type: d.type }, viaRequest(d)));
    const r = await api("POST", "/api/v1/resources", req);
    go("resource/" + encodeURIComponent(r.name));
  });
  sync();
  return f;
}

views.resource = async (m, [name]) => {
  const [r, gateways] = await Promise.all([api("GET", "/api/v1/resources/" + encodeURIComponent(name)),
    isAdmin() ? api("GET", "/api/v1/gateways") : [], kinds()]);
  const k = state.kinds[r.type] || noKind;
  const info = details(
    "Type", k.label ? k.label + " (" + r.type + ")" : r.type, "Gateway", via(r),
    "Address", r.address || r.host + ":" + r.port,
    (r.details || []).map((x) => [x.label, x.value]),
    r.host_key_fingerprint ? ["Host key (pinned)", h("code", {}, r.host_key_fingerprint)] : []);
  const parts = [h("h1", {}, "Resource " + r.name),
    state.flash ? h("div", { class: "notice", role: "status", id: "resource-notice" }, state.flash) : null, info];
  state.flash = "";
  const msg = h("div", { "aria-live": "polite" });
  if (isAdmin()) {
    const actions = h("div", { class: "actions" },
      h("button", { class: "secondary", type: "button", onclick: async () => {
        fill(msg);
        try {
          const checks = await api("POST", "/api/v1/resources/" + encodeURIComponent(r.name) + "/test");
          msg.append(table(["Check", "Result", "Detail"], checks.map((c) => [c.check, h("span", { class: "badge " + (c.ok ? "online" : "failure") }, c.ok ? "ok" : "failed"), c.detail])));
        } catch (err) { msg.append(errorBox(err)); }
      } }, "Test"),
      k.pins_host_key ? h("button", { class: "secondary", type: "button", onclick: async () => {
        if (!confirm("Re-pin the host key? Only after a change you know about.")) return;
        try { await api("POST", "/api/v1/resources/" + encodeURIComponent(r.name) + "/trust-host-key"); route(); } catch (err) { fill(msg, errorBox(err)); }
      } }, "Re-pin host key") : null);
    parts.push(actions, msg);
  }
  if (k.user_ca) {
    const ca = await api("GET", "/api/v1/resources/ssh/" + r.id + "/ssh-ca-public-key");
    parts.push(h("h2", {}, "SSH certificate authority"),
      h("p", { class: "muted" }, "For certificate accounts, the server's sshd trusts this CA. Public key:"), copyable(ca.trim()),
      h("p", { class: "muted" }, "Or run the setup script on the server, which makes its sshd trust the CA:"),
      copyable("pamd resources ssh-ca " + r.name + " --setup-script | sudo bash"));
  }
  const noAccounts = isAdmin() ? h("span", {}, "No accounts yet: add one below, then grant access to it with a ", h("a", { href: "#/roles" }, "role"), ".")
    : "No accounts yet.";
  const editArea = h("div", {});
  parts.push(h("h2", {}, "Accounts"), table(["Account", "User name", "Auth", "Secret", "MFA", "Rotation", "Description", ""], (r.accounts || []).map((a) => [
    a.name, a.username || "–", a.auth || "–", a.has_password || a.has_key ? "stored (never shown)" : "none", a.require_mfa ? "yes" : "no", rotationText(a.rotation), a.description || "",
    isAdmin() ? h("div", { class: "actions" },
      h("button", { class: "secondary", type: "button", onclick: () => { fill(editArea, accountEditForm(r, a)); editArea.querySelector("input").focus(); } }, "Edit"),
      a.rotatable ? h("button", { class: "secondary", type: "button", onclick: async (ev) => {
        if (!confirm("Change the credential of " + r.name + "/" + a.name + " on the target now?")) return;
        ev.target.disabled = true;
        try {
          const out = await api("POST", "/api/v1/resources/" + encodeURIComponent(r.name) + "/accounts/" + encodeURIComponent(a.name) + "/rotate");
          const rot = out.account.rotation || {};
          alert(rot.result === "success" ? "Rotated: the new credential is set, verified and stored." + (out.live_sessions ? " " + out.live_sessions + " live session(s) keep their open connections." : "") : "Rotation failed: " + rot.error);
        } catch (err) { alert(err.message); }
        route();
      } }, "Rotate") : null,
      h("button", { class: "danger", type: "button", onclick: async () => {
        if (!confirm("Remove account " + r.name + "/" + a.name + "?")) return;
        try { await api("DELETE", "/api/v1/resources/" + encodeURIComponent(r.name) + "/accounts/" + encodeURIComponent(a.name)); route(); } catch (err) { alert(err.message); }
      } }, "Remove")) : "",
  ]), noAccounts), editArea);
  if (isAdmin()) parts.push(accountForm(r), resourceEditForm(r, gateways.filter((g) => !g.revoked_at)));
  fill(m, ...parts);
};

// rotationText sums up an account's rotation: schedule, last outcome, reason.
function rotationText(rot) {
  if (!rot) return "–";
  const parts = [];
  if (rot.interval) parts.push("every " + rot.interval);
  if (rot.rotate_with) parts.push("with " + rot.rotate_with);
  if (rot.pending) parts.push("interrupted, resuming");
  else if (rot.result) parts.push(rot.result + " " + new Date(rot.last_attempt).toLocaleString());
  if (rot.error) parts.push(rot.error);
  if (rot.next_run) parts.push("next " + new Date(rot.next_run).toLocaleString());
  return parts.join("; ") || "–";
}

// accountEditForm changes an account; empty secret fields keep the stored ones.
function accountEditForm(r, a) {
  const k = state.kinds[r.type] || noKind;
  const fields = k.account_fields.filter((f) => f.edit);
  const f = form({ "aria-label": "edit account " + a.name }, [
    h("h2", {}, "Edit account " + r.name + "/" + a.name),
    h("div", { class: "row" }, fields.map((x) => kindField(x, x.keep ? undefined : a[x.name], true))),
    h("div", { class: "row" }, field("Description", input("description", { value: a.description || "" })),
      check("require_mfa", "Require MFA at access", a.require_mfa)),
    h("div", { class: "row" }, field("Rotate every (30d, 12h; 0 for never)", input("rotation_interval", { value: (a.rotation && a.rotation.interval) || "" })),
      field("Rotate with account (empty: itself)", input("rotate_with", { value: (a.rotation && a.rotation.rotate_with) || "" }))),
    h("div", { class: "row" }, noLoginCheck()),
    h("p", {}, h("button", { type: "submit" }, "Save")),
  ], async (d, form) => {
    const req = { description: d.description, require_mfa: d.require_mfa, skip_login_check: d.skip_login_check };
    const rot = a.rotation || {};
    if ((d.rotation_interval || "") !== (rot.interval || "")) req.rotation_interval = d.rotation_interval || "0";
    if ((d.rotate_with || "") !== (rot.rotate_with || "")) req.rotate_with = d.rotate_with;
    for (const x of fields) {
      const v = x.keep ? shownValue(form, x, d) : d[x.name];
      if (v !== undefined) req[x.name] = v;
    }
    const out = await api("PATCH", "/api/v1/resources/" + encodeURIComponent(r.name) + "/accounts/" + encodeURIComponent(a.name), req);
    state.flash = (out.warnings || []).join(" ");
    route();
  });
  f.addEventListener("change", () => showFields(f));
  showFields(f);
  return f;
}

// resourceEditForm changes where a resource is and how it is reached.
function resourceEditForm(r, gateways) {
  const k = state.kinds[r.type] || noKind;
  const fields = k.resource_fields.filter((f) => f.edit);
  const stored = (x) => x.keep ? undefined : x.option ? (r.options || {})[x.name] : r[x.name];
  const f = form({ "aria-label": "edit resource" }, [
    h("h2", {}, "Edit resource"),
    h("div", { class: "row" }, fields.map((x) => kindField(x, stored(x), true))),
    h("div", { class: "row" }, field("Gateway", gatewaySelect(gateways, r.gateway)),
      field("Or gateway group", input("gateway_group", { value: r.gateway_group || "", placeholder: "any gateway of the group" }))),
    k.edit_note ? h("p", { class: "muted" }, k.edit_note) : null,
    h("p", {}, h("button", { type: "submit" }, "Save")),
  ], async (d, form) => {
    const req = resourceRequest({ resource_fields: fields }, form, d, viaRequest(d));
    const res = await api("PATCH", "/api/v1/resources/" + encodeURIComponent(r.name), req);
    if (res.warnings && res.warnings.length) alert(res.warnings.join("\n"));
    route();
  });
  showFields(f);
  return f;
}

// noLoginCheck is the accounts forms' way to store one the target cannot
// check yet (as --no-login-check).
const noLoginCheck = () => check("skip_login_check", "Store it without logging in with it first (the target is down, or not set up yet)");

function accountForm(r) {
  const k = state.kinds[r.type] || noKind;
  const f = form({ "aria-label": "add account" }, [
    h("h2", {}, "Add an account"),
    h("div", { class: "row" }, field("Name", input("name", { required: true })),
      k.account_fields.map((x) => kindField(x, undefined, false))),
    h("div", { class: "row" }, field("Description", input("description")), check("require_mfa", "Require MFA at access")),
    h("div", { class: "row" }, noLoginCheck()),
    h("p", {}, h("button", { type: "submit" }, "Add account")),
  ], async (d, form) => {
    const req = { name: d.name, description: d.description, require_mfa: d.require_mfa, skip_login_check: d.skip_login_check };
    for (const x of k.account_fields) {
      const v = shownValue(form, x, d);
      if (v !== undefined) req[x.name] = v;
    }
    const a = await api("POST", "/api/v1/resources/" + encodeURIComponent(r.name) + "/accounts", req);
    state.flash = (a.warnings || []).join(" ");
    route();
  });
  f.addEventListener("change", () => showFields(f));
  showFields(f);
  return f;
}

// gatewayStatus is online, revoked, or offline with how long it has been
// away, as pamd gateways list says it.
function gatewayStatus(g) {
  if (g.revoked_at) return "revoked";
  if (g.online) return "online";
  if (!g.last_seen) return "offline";
  const s = Math.max(0, Math.floor((Date.now() - new Date(g.last_seen)) / 1000));
  const away = s < 60 ? s + "s" : s < 3600 ? Math.floor(s / 60) + "m" : s < 172800 ? Math.floor(s / 3600) + "h" + Math.floor(s % 3600 / 60) + "m"
    : Math.floor(s / 86400) + "d" + Math.floor(s % 86400 / 3600) + "h";
  return "offline " + away;
}

// watchGateway says in status when the gateway name is online, and what
// comes next.
function watchGateway(name, status) {
  const timer = setInterval(async () => {
    try {
      const g = (await api("GET", "/api/v1/gateways")).find((x) => x.name === name);
      if (!g || !g.online) return;
      clearInterval(timer);
      fill(status, h("span", { class: "badge online" }, "online"), " Gateway " + name + " is connected: next, ",
        h("a", { href: "#/resources" }, "add a resource"), " it reaches.");
    } catch (e) { /* try again */ }
  }, 2000);
  state.timers.push(timer);
}

// views.pki: the CAs' certificates and the db-client CRL, to download for
// what must trust them (the same as pamd ca export and pamd ca crl).
views.pki = async (m) => {
  const dl = (path, label) => ["pem", "der"].map((f) => h("a", { class: "button secondary", download: "", href: path + "?format=" + f }, label + " (" + f.toUpperCase() + ")"));
  const crl = location.origin + "/pki/db-client.crl";
  fill(m, h("h1", {}, "Certificate authorities"),
    table(["CA", "Who trusts it", "Download"], [
      ["server", "pamd connect and pamd login, which pin its fingerprint; browsers, unless the server has a certificate of its own (--tls-cert)", h("div", { class: "actions" }, dl("/api/v1/ca/server", "Certificate"))],
      ["resource", "database clients that verify pamd's TLS toward them (sslrootcert, SQL Server and MongoDB clients' CA file)", h("div", { class: "actions" }, dl("/api/v1/ca/resource", "Certificate"))],
      ["db-client", "the KDC (MIT: pkinit_anchors) or Active Directory (NTAuth store) for PKINIT accounts", h("div", { class: "actions" }, dl("/api/v1/ca/db-client", "Certificate"), dl("/api/v1/ca/db-client/crl", "CRL"))],
    ]),
    h("p", { class: "muted" }, "The db-client CRL is also served without a login at ", h("code", {}, crl),
      ": the distribution point every db-client certificate names, under the server's --public-url. For Active Directory, ",
      h("code", {}, "pamd resources ad-setup RESOURCE"), " prints the script that publishes the CA and the CRL."));
};

views.gateways = async (m) => {
  const gws = await api("GET", "/api/v1/gateways");
  fill(m, h("h1", {}, "Gateways"),
    table(["Name", "Status", "Group", "Version", "Remote address", "Last seen", "Enrolled", "Upload backlog"], gws.map((g) => [
      g.name, h("span", { class: "badge " + (g.online ? "online" : "offline") }, gatewayStatus(g)),
      g.group || "–", g.version || "–", g.remote_addr || "–", fmt(g.last_seen), fmt(g.enrolled_at),
      !g.backlog ? "–" : g.backlog.records === 0 ? "0" : `${g.backlog.records} records (${(g.backlog.bytes / 1024).toFixed(1)} KiB)`]),
      isAdmin() ? "No gateway yet. A gateway runs inside the private network and reaches your resources for pamd: create a token below, then run the command it shows there."
        : "No gateway yet."),
    isAdmin() ? form({ "aria-label": "enroll gateway" }, [
      h("h2", {}, "Enroll a gateway"),
      h("div", { class: "row" }, field("Name", input("name", { required: true })), field("Valid for", select("ttl", ["15m", "1h", "24h"], "1h")),
        h("button", { type: "submit" }, "Create token")),
    ], async (d) => {
      const t = await api("POST", "/api/v1/gateways/tokens", { name: d.name, ttl: d.ttl });
      const status = h("p", { class: "muted", "aria-live": "polite" }, "Waiting for gateway " + d.name + " to connect…");
      watchGateway(d.name, status);
      return h("div", {}, h("p", {}, "Run this once inside the private network (the token works once, until " + fmt(t.expires_at) + "):"), copyable(t.command), status);
    }) : null);
};

views.sessions = async (m) => {
  const filters = h("form", { class: "card row", "aria-label": "filter sessions" },
    field("User", input("user")), field("Resource", input("resource")),
    field("Since", select("since", ["any time", "1h", "24h", "7d"], "any time")), check("active", "Active only"));
  const list = h("div", {});
  const load = async () => {
    const all = await api("GET", "/api/v1/sessions");
    const d = Object.fromEntries(new FormData(filters).entries());
    const active = filters.querySelector("[name=active]").checked;
    const since = { "1h": 3600e3, "24h": 864e5, "7d": 6048e5 }[d.since];
    const shown = all.filter((s) => (!d.user || s.user.includes(d.user)) && (!d.resource || s.resource.includes(d.resource)) &&
      (!active || s.active) && (!since || Date.now() - new Date(s.created_at) < since));
    fill(list, table(["Session", "User", "Target", "Reason", "Started", "Duration", "Recording", "State"], shown.map((s) => [
      h("a", { href: "#/session/" + s.id }, s.id), s.user, s.resource + "/" + s.account, h("div", { class: "detail" }, s.reason || "–"), fmt(s.created_at),
      sessionDuration(s), s.recorded ? h("a", { href: "#/session/" + s.id }, "recorded") : "none", sessionState(s)]),
      all.length ? "No session matches." : "No sessions yet: one starts when someone opens access (Access page)."));
  };
  filters.addEventListener("input", load);
  fill(m, h("h1", {}, "Sessions"), filters, list);
  await load();
  state.timers.push(setInterval(() => load().catch(() => {}), 3000));
};

// sessionDuration is how long a session has lasted: until it ended, or
// expired, or until now while it is live.
function sessionDuration(s) {
  const end = s.active ? Date.now() : new Date(s.ended_at || s.expires_at).getTime();
  const secs = Math.max(0, Math.round((end - new Date(s.created_at).getTime()) / 1000));
  if (secs < 60) return secs + "s";
  const m = Math.floor(secs / 60), hours = Math.floor(m / 60);
  return hours ? hours + "h " + (m % 60) + "m" : m + "m " + (secs % 60) + "s";
}

// sessionState is live, or how the session ended (the server's words:
// "ended by the user", "ended by admin NAME", "expired", or why pamd ended it).
function sessionState(s) {
  return s.active ? h("span", { class: "badge live" }, "live") : h("span", { class: "badge" }, s.ended || s.end_reason || "expired");
}

views.session = async (m, [id]) => {
  const [s, recs] = await Promise.all([api("GET", "/api/v1/sessions/" + id), api("GET", "/api/v1/sessions/" + id + "/records")]);
  const parts = [h("h1", {}, "Session " + s.id, " ", sessionState(s)),
    details("User", s.user, "Target", s.resource + "/" + s.account + " (" + (s.resource_type || "?") + ")", "Reason", s.reason || "–",
      "Started", fmt(s.created_at), "Expires", fmt(s.expires_at), "Ended", s.active ? "–" : fmt(s.ended_at || s.expires_at) + " — " + (s.ended || s.end_reason || "expired"),
      "Duration", sessionDuration(s), "Recording", s.recorded ? "yes" : "none", "From", s.client_addr || "–",
      ...(s.request_id ? ["Access request", h("span", {}, h("a", { href: "#/requests" }, s.request_id), " — " + (s.request_reason || "no reason"))] : []))];
  const msg = h("div", { "aria-live": "polite" });
  if (s.active && isAdmin()) {
    parts.push(h("p", {}, h("button", { class: "danger", type: "button", onclick: async () => {
      if (!confirm("Terminate session " + s.id + "? Its connections are cut at once.")) return;
      try { await api("POST", "/api/v1/sessions/" + s.id + "/terminate"); route(); } catch (err) { fill(msg, errorBox(err)); }
    } }, "Terminate")), msg);
  }
  parts.push(h("h2", {}, "Connections"), table(["Connection", "From", "Started", "Ended", "Bytes up", "Bytes down", "Error"],
    (s.connections || []).map((c) => [c.id, c.client_addr || "–", fmt(c.started_at), fmt(c.ended_at), c.bytes_up, c.bytes_down, c.error || ""])));
  if (s.active && canRead() && s.resource_type === "ssh") {
    // Read-only, from the records as the gateway uploads them; the user's
    // terminal is told who watches, and the watch is audited.
    parts.push(h("p", {}, h("a", { href: "term.html#watch/" + encodeURIComponent(s.id), target: "_blank", rel: "noopener" }, "👁 Watch live"),
      " (read-only; " + s.user + " is told that you watch)"));
  }
  if (recs.some((r) => ["pty", "o", "i", "e"].includes(r.type))) parts.push(h("p", {}, h("a", { href: "#/replay/" + s.id }, "▶ Replay the terminal")));
  const events = recs.filter((r) => !["o", "i", "e", "r"].includes(r.type));
  const search = input("search", { placeholder: "search the log", type: "search" });
  const logTable = h("div", {});
  // Each record's summary is rendered by the server, by the resource's kind.
  const describe = (r) => r.summary || r.type;
  const renderLog = () => {
    const q = search.value.toLowerCase();
    fill(logTable, table(["Time", "Connection", "Event"], events.filter((r) => !q || describe(r).toLowerCase().includes(q))
      .map((r) => [new Date(r.time).toLocaleTimeString(), (r.connection_id || "").slice(0, 8), describe(r)]),
      events.length ? "No event matches." : recs.length ? "Only terminal input and output: replay it above."
        : "Nothing recorded (yet: the gateway uploads records while the session goes on)."));
  };
  search.addEventListener("input", renderLog);
  renderLog();
  parts.push(h("h2", {}, "Log"), field("Search", search), logTable);
  fill(m, ...parts);
  if (s.active) state.timers.push(setInterval(() => api("GET", "/api/v1/sessions/" + id).then((n) => { if (!n.active) route(); }).catch(() => {}), 3000));
};

views.replay = async (m, [id]) => {
  const cast = await api("GET", "/api/v1/sessions/" + id + "/asciicast");
  const lines = cast.trim().split("\n");
  const header = JSON.parse(lines[0]);
  const events = lines.slice(1).map((l) => JSON.parse(l)).filter((e) => e[1] === "o" || e[1] === "r");
  const total = events.length ? events[events.length - 1][0] : 0;
  const termEl = h("div", { id: "term", "aria-label": "terminal replay" });
  const seek = h("input", { type: "range", min: 0, max: Math.max(total, 0.01), step: 0.01, value: 0, "aria-label": "position" });
  const clock = h("span", { id: "clock" }, "0.0 / " + total.toFixed(1) + " s");
  const speed = select("speed", ["0.5", "1", "2", "4", "8"], "1");
  const play = h("button", { type: "button", id: "play" }, "Play");
  fill(m, h("h1", {}, "Replay of session " + id), h("p", { class: "muted" }, header.title || ""),
    h("div", { class: "controls" }, play, field("Speed", speed), seek, clock), termEl,
    h("p", {}, h("a", { href: "#/session/" + id }, "Back to the session")));
  // Sizes come from the recorded client: bounded, as the server bounds them.
  const size = (n, dflt) => (Number.isFinite(n) && n >= 1 ? Math.min(Math.floor(n), 1000) : dflt);
  const term = new Terminal({ cols: size(header.width, 80), rows: size(header.height, 24), convertEol: false, disableStdin: true });
  term.open(termEl);
  let pos = 0, idx = 0, playing = false, last = 0;
  const apply = (e) => {
    if (e[1] === "o") term.write(e[2]);
    else { const [c, r] = String(e[2]).split("x").map(Number); if (c && r) term.resize(size(c, 80), size(r, 24)); }
  };
  const jump = (t) => { // redraw from the start up to t
    term.reset();
    idx = 0;
    while (idx < events.length && events[idx][0] <= t) apply(events[idx++]);
    pos = t;
  };
  const tick = (now) => {
    if (!playing) return;
    pos += ((now - last) / 1000) * Number(speed.value);
    last = now;
    while (idx < events.length && events[idx][0] <= pos) apply(events[idx++]);
    seek.value = pos;
    clock.textContent = Math.min(pos, total).toFixed(1) + " / " + total.toFixed(1) + " s";
    if (idx >= events.length) { playing = false; play.textContent = "Play"; return; }
    requestAnimationFrame(tick);
  };
  play.addEventListener("click", () => {
    if (!playing && idx >= events.length) jump(0);
    playing = !playing;
    play.textContent = playing ? "Pause" : "Play";
    if (playing) { last = performance.now(); requestAnimationFrame(tick); }
  });
  seek.addEventListener("input", () => { jump(Number(seek.value)); clock.textContent = pos.toFixed(1) + " / " + total.toFixed(1) + " s"; });
};

// auditQuery is the audit filters of the form as query parameters, the
// same for a page of the list and for an export.
function auditQuery(filters) {
  const d = Object.fromEntries(new FormData(filters).entries());
  const q = new URLSearchParams();
  for (const k of ["actor", "action", "target"]) if (d[k]) q.set(k, d[k].trim());
  if (d.since !== "any time") q.set("since", d.since);
  if (d.until) q.set("until", new Date(d.until).toISOString());
  return q;
}

// auditPageSize is how many events a page of the audit log shows.
const auditPageSize = 100;

views.audit = async (m) => {
  const filters = h("form", { class: "card row", "aria-label": "filter audit" },
    field("Actor", input("actor")), field("Action", input("action", { placeholder: "e.g. session or auth.login" })),
    field("Target", input("target")),
    field("Since", select("since", ["any time", "1h", "24h", "168h", "720h"], "any time")),
    field("Until", input("until", { type: "datetime-local" })),
    h("button", { type: "submit" }, "Filter"));
  const exports = h("p", { class: "actions" });
  const verify = h("div", { "aria-live": "polite" });
  const list = h("div", {});
  const more = h("p", {});
  let shown = [];
  const render = (next) => {
    fill(list, table(["#", "Time", "Actor", "Action", "Target", "Outcome", "Source", "Detail"], shown.map((e) => [
      e.seq, fmt(e.time), e.actor, e.action, e.target || "–", h("span", { class: "badge " + (e.outcome === "failure" ? "failure" : "") }, e.outcome),
      e.source || "–", h("div", { class: "detail" }, e.detail || "")]), "No event matches."));
    fill(more, next ? h("button", { class: "secondary", type: "button", onclick: () => page(next).catch((err) => fill(more, errorBox(err))) }, "Older events")
      : shown.length > auditPageSize ? h("span", { class: "muted" }, "The oldest event is shown.") : null);
  };
  const page = async (path) => {
    const { items, next } = await apiPage(path);
    shown = shown.concat(items);
    render(next);
  };
  const load = async () => {
    const q = auditQuery(filters);
    fill(exports, ["jsonl", "csv"].map((f) => h("a", { class: "button secondary", download: "", href: "/api/v1/audit/export?" + new URLSearchParams([["format", f], ...q]) },
      f === "csv" ? "Export CSV" : "Export JSON lines")));
    shown = [];
    q.set("limit", auditPageSize);
    await page("/api/v1/audit?" + q);
  };
  filters.addEventListener("submit", (ev) => { ev.preventDefault(); load().catch((err) => fill(list, errorBox(err))); });
  const v = await api("GET", "/api/v1/audit/verify");
  verify.append(v.ok ? h("div", { class: "notice" }, "Audit chain intact: " + v.events + " events verified.")
    : h("div", { class: "error" }, "Audit chain broken at event " + v.broken_at + ": " + v.reason));
  fill(m, h("h1", {}, "Audit log"), verify, filters, exports, list, more);
  await load();
};

views.users = async (m) => {
  const [users, roles] = await Promise.all([api("GET", "/api/v1/users"), api("GET", "/api/v1/roles")]);
  const userPath = (u) => "/api/v1/users/" + encodeURIComponent(u.name);
  const act = (u, what, label, cls) => h("button", { class: cls || "secondary", type: "button", onclick: async () => {
    if (!confirm(label + " " + u.name + "?")) return;
    try { await api("POST", userPath(u) + "/" + what); route(); } catch (err) { alert(err.message); }
  } }, label);
  const detail = h("div", { id: "user-detail" });
  // The one-time password is shown once, here, and nowhere else.
  const resetPassword = (u) => h("button", { class: "secondary", type: "button", onclick: async () => {
    if (!confirm("Reset the password of " + u.name + "? Their logins and live sessions end.")) return;
    try {
      const res = await api("POST", userPath(u) + "/reset-password");
      fill(detail, h("div", { class: "notice", role: "status" }, "New one-time password for " + u.name + " (shown once): ",
        h("code", {}, res.password), " — " + res.tokens_revoked + " logins and " + res.sessions_ended + " live sessions ended."));
    } catch (err) { fill(detail, errorBox(err)); }
  } }, "Reset password");
  const remove = (u) => h("button", { class: "danger", type: "button", onclick: async () => {
    if (!confirm("Delete user " + u.name + "? Their logins and live sessions end; their history stays.")) return;
    try { await api("DELETE", userPath(u)); route(); } catch (err) { fill(detail, errorBox(err)); }
  } }, "Delete");
  const editRoles = (u) => h("button", { class: "secondary", type: "button", onclick: () => showUserRoles(detail, u, roles) }, "Roles");
  fill(m, h("h1", {}, "Users"),
    table(["Name", "Roles", "MFA", "State", "Created", ""], users.map((u) => [u.sso ? u.name + " (SSO)" : u.name, u.roles.join(", "), u.mfa_enabled ? "yes" : "no",
      u.disabled ? "disabled" : (u.locked_until ? "locked until " + fmt(u.locked_until) : "active"), fmt(u.created_at),
      isAdmin() ? h("div", { class: "actions" }, editRoles(u), u.disabled ? act(u, "enable", "Enable") : act(u, "disable", "Disable", "danger"),
        u.mfa_enabled ? act(u, "reset-mfa", "Reset MFA") : null, u.name !== state.user.name ? resetPassword(u) : null,
        u.name !== state.user.name ? remove(u) : null) : ""])),
    detail,
    isAdmin() ? form({ "aria-label": "add user" }, [
      h("h2", {}, "Add a user"),
      h("div", { class: "row" }, field("Name", input("name", { required: true })),
        field("Roles (comma-separated)", input("roles", { value: "user", list: "role-names" })),
        h("datalist", { id: "role-names" }, roles.map((r) => h("option", { value: r.name }))),
        h("button", { type: "submit" }, "Add user")),
    ], async (d) => {
      const res = await api("POST", "/api/v1/users", { name: d.name, roles: d.roles.split(",").map((s) => s.trim()).filter(Boolean) });
      return h("div", { class: "notice" }, "User " + res.user.name + " added. One-time password (shown once): ", h("code", {}, res.password));
    }) : null);
};

// showUserRoles is the form that adds and removes a user's roles: a removal
// ends their logins and the live sessions it no longer grants.
function showUserRoles(detail, u, roles) {
  const f = form({ "aria-label": "roles of " + u.name }, [
    h("h2", {}, "Roles of " + u.name),
    h("div", { class: "row" }, roles.map((r) => check("role-" + r.name, r.name, u.roles.includes(r.name))),
      h("button", { type: "submit" }, "Save roles")),
    h("p", { class: "muted" }, "A role taken away ends the user's logins and the live sessions it granted; one added grants from their next session."),
  ], async (d) => {
    const want = roles.map((r) => r.name).filter((n) => d["role-" + n]);
    const req = { add_roles: want.filter((n) => !u.roles.includes(n)), remove_roles: u.roles.filter((n) => !want.includes(n)) };
    if (!req.add_roles.length && !req.remove_roles.length) return h("div", { class: "notice" }, "Nothing to change.");
    const res = await api("PATCH", "/api/v1/users/" + encodeURIComponent(u.name), req);
    u.roles = res.user.roles;
    return h("div", { class: "notice" }, "Roles of " + u.name + ": " + res.user.roles.join(", ") +
      (req.remove_roles.length ? " — " + res.tokens_revoked + " logins and " + res.sessions_ended + " live sessions ended." : "."));
  });
  fill(detail, f);
  f.querySelector("input").focus();
}

// showRoleEdit is the form that edits a role; it grants from the next
// session, and its holders' live sessions it no longer grants end.
function showRoleEdit(detail, r) {
  const f = form({ "aria-label": "edit role " + r.name }, [
    h("h2", {}, "Edit role " + r.name),
    h("div", { class: "row" },
      field("Allow (RESOURCE/ACCOUNT globs, space-separated)", input("allow", { value: r.allow.join(" ") })),
      field("Max duration", input("max_duration", { value: r.max_duration || "", placeholder: "4h" })),
      field("Description", input("description", { value: r.description || "" })),
      check("require_reason", "Require a reason", r.require_reason)),
    roleRequestFields(r),
    h("p", {}, h("button", { type: "submit" }, "Save role")),
  ], async (d) => {
    const req = roleRequestChange(d, r);
    const allow = d.allow.split(/\s+/).filter(Boolean);
    if (allow.join(" ") !== r.allow.join(" ")) req.allow = allow;
    if (d.max_duration && d.max_duration !== r.max_duration) req.max_duration = d.max_duration;
    if (d.description !== (r.description || "")) req.description = d.description;
    if (d.require_reason !== r.require_reason) req.require_reason = d.require_reason;
    if (!Object.keys(req).length) return h("div", { class: "notice" }, "Nothing to change.");
    const res = await api("PATCH", "/api/v1/roles/" + encodeURIComponent(r.name), req);
    Object.assign(r, res.role);
    return h("div", { class: "notice" }, "Role " + r.name + " saved; " + res.sessions_ended + " live sessions it no longer grants ended.");
  });
  fill(detail, f);
  f.querySelector("input").focus();
}

views.roles = async (m) => {
  const roles = await api("GET", "/api/v1/roles");
  const detail = h("div", { id: "role-detail" });
  const remove = (r) => h("button", { class: "danger", type: "button", onclick: async () => {
    if (!confirm("Remove role " + r.name + "?")) return;
    try { await api("DELETE", "/api/v1/roles/" + encodeURIComponent(r.name)); route(); } catch (err) { alert(err.message); }
  } }, "Remove");
  fill(m, h("h1", {}, "Roles"),
    isAdmin() ? h("p", { class: "muted" }, "A role grants access to the targets its patterns match. Add one below, then give it to people on ",
      h("a", { href: "#/users" }, "Users"), " (Roles button, or add a user with it).") : null,
    table(["Name", "Allows", "On request", "Max duration", "Reason", "Description", ""], roles.map((r) => [r.name, r.allow.join(" ") || "–",
      (r.request || []).length ? r.request.join(" ") + " (" + approversText(r) + ")" : "–", r.max_duration || "–",
      r.require_reason ? "required" : "–", r.description || "",
      isAdmin() ? h("div", { class: "actions" }, h("button", { class: "secondary", type: "button", onclick: () => showRoleEdit(detail, r) }, "Edit"),
        r.builtin ? h("span", { class: "muted" }, "built in") : remove(r)) : (r.builtin ? "built in" : "")])),
    detail,
    isAdmin() ? form({ "aria-label": "add role" }, [
      h("h2", {}, "Add a role"),
      h("div", { class: "row" }, field("Name", input("name", { required: true })),
        field("Allow (RESOURCE/ACCOUNT globs, space-separated)", input("allow", { placeholder: "prod-*/readonly" })),
        field("Max duration", input("max_duration", { placeholder: "4h" })), check("require_reason", "Require a reason")),
      roleRequestFields(null),
      h("p", {}, h("button", { type: "submit" }, "Add role")),
    ], async (d) => {
      await api("POST", "/api/v1/roles", { name: d.name, allow: words(d.allow), max_duration: d.max_duration || undefined, require_reason: d.require_reason,
        request: words(d.request), approvers: words(d.approvers), approvals: Number(d.approvals) || 0, request_ttl: d.request_ttl || undefined });
      route();
    }) : null);
};

// --- just-in-time access requests -------------------------------------------

const words = (v) => (v || "").split(/[\s,]+/).filter(Boolean);
const approversText = (r) => Math.max(r.approvals || 1, 1) + " of " + ((r.approvers || []).length ? r.approvers.join(" or ") : "admin");

// roleRequestFields are a role's access-request settings, in the role
// forms: what it grants only on request, and who approves.
function roleRequestFields(r) {
  return h("div", { class: "row" },
    field("On request (RESOURCE/ACCOUNT globs, approved first)", input("request", { value: r ? (r.request || []).join(" ") : "", placeholder: "prod-*/*" })),
    field("Approver roles (default admin)", input("approvers", { value: r ? (r.approvers || []).join(" ") : "", placeholder: "leads" })),
    field("Approvals needed", input("approvals", { type: "number", min: 1, max: 10, value: r ? String(r.approvals || 1) : "1" })),
    field("Request waits (TTL)", input("request_ttl", { value: r ? (r.request_ttl || "") : "", placeholder: "24h" })));
}

// roleRequestChange is the request settings the edit form changed.
function roleRequestChange(d, r) {
  const req = {};
  const request = words(d.request), approvers = words(d.approvers);
  if (request.join(" ") !== (r.request || []).join(" ")) req.request = request;
  if (approvers.join(" ") !== (r.approvers || []).join(" ")) req.approvers = approvers;
  if (Number(d.approvals) && Number(d.approvals) !== Math.max(r.approvals || 1, 1)) req.approvals = Number(d.approvals);
  if (d.request_ttl && d.request_ttl !== r.request_ttl) req.request_ttl = d.request_ttl;
  return req;
}

function requestState(q) {
  if (q.state === "pending") return h("span", { class: "badge" }, "pending " + q.approvals + "/" + q.approvals_needed);
  if (q.state === "approved") return h("span", {}, h("span", { class: "badge live" }, "approved"), " until " + fmt(q.grant_ends));
  return h("span", { class: "badge" }, q.state + (q.close_reason ? ": " + q.close_reason : ""));
}

const reviewsText = (q) => q.reviews.length ? q.reviews.map((v) => v.user + " " + (v.verdict === "approve" ? "approved" : "denied") + (v.reason ? " (" + v.reason + ")" : "")).join("; ") : "–";

// views.requests: ask for access, review what waits for you, and the
// history of the requests you see (yours, those you approve, all for
// admins and auditors).
views.requests = async (m, target) => {
  const all = await api("GET", "/api/v1/requests");
  const msg = h("div", { "aria-live": "polite", id: "request-message" },
    state.flash ? h("div", { class: "notice", role: "status" }, state.flash) : null);
  state.flash = "";
  const act = async (q, what, body) => {
    try {
      await api("POST", "/api/v1/requests/" + encodeURIComponent(q.id) + "/" + what, body);
      await route();
    } catch (err) { fill(msg, errorBox(err)); }
  };
  const toReview = all.filter((q) => q.can_review);
  const reviewRow = (q) => {
    const reason = input("reason-" + q.id, { placeholder: "reason (required to deny)", "aria-label": "reason for " + q.id });
    return [q.id, q.user, q.resource + "/" + q.account, q.duration, h("div", { class: "detail" }, q.reason || "–"),
      q.approvals + " of " + q.approvals_needed, fmt(q.expires_at),
      h("div", { class: "actions" }, reason,
        h("button", { type: "button", id: "approve-" + q.id, onclick: () => act(q, "approve", { reason: reason.value || undefined }) }, "Approve"),
        h("button", { type: "button", class: "danger", id: "deny-" + q.id, onclick: () => {
          if (!reason.value.trim()) { fill(msg, errorBox(new Error("A denial needs a reason."))); reason.focus(); return; }
          act(q, "deny", { reason: reason.value });
        } }, "Deny"))];
  };
  const historyRow = (q) => {
    const mine = q.user === state.user.name;
    const buttons = [];
    if (mine && (q.state === "pending" || q.state === "approved")) {
      buttons.push(h("button", { type: "button", class: "secondary", id: "cancel-" + q.id, onclick: () => {
        if (confirm("Cancel request " + q.id + "?" + (q.state === "approved" ? " Its sessions end." : ""))) act(q, "cancel");
      } }, "Cancel"));
    }
    if (isAdmin() && q.state === "approved") {
      buttons.push(h("button", { type: "button", class: "danger", id: "revoke-" + q.id, onclick: () => {
        if (confirm("Revoke request " + q.id + "? Its sessions end at once.")) act(q, "revoke", {});
      } }, "Revoke"));
    }
    return [q.id, q.user, q.resource + "/" + q.account, q.duration, h("div", { class: "detail" }, q.reason || "–"), fmt(q.created_at),
      requestState(q), h("div", { class: "detail" }, reviewsText(q)), h("div", { class: "actions" }, buttons)];
  };
  fill(m, h("h1", {}, "Access requests"),
    h("p", { class: "muted" }, "Some roles grant access only on request: ask here, an approver approves, and pamd connect or pamd ssh works until the grant ends."),
    form({ "aria-label": "request access" }, [
      h("h2", {}, "Request access"),
      h("div", { class: "row" },
        field("Target (RESOURCE/ACCOUNT)", input("target", { required: true, placeholder: "prod-db/admin", value: target.join("/") || undefined })),
        field("Duration", select("duration", ["15m", "30m", "1h", "2h", "4h", "8h"], "1h")),
        field("Reason", input("reason", { placeholder: "ticket or purpose" })),
        h("button", { type: "submit" }, "Request")),
    ], async (d) => {
      const [resource, ...rest] = d.target.split("/");
      const q = await api("POST", "/api/v1/requests", { resource, account: rest.join("/"), duration: d.duration, reason: d.reason || undefined });
      state.flash = "Request " + q.id + " waits for " + q.approvals_needed + " approval(s) from " + q.approvers.join(" or ") + ".";
      await route();
    }),
    msg,
    h("h2", {}, "Waiting for your approval"),
    table(["Request", "User", "Target", "Duration", "Reason", "Approvals", "Expires", ""], toReview.map(reviewRow), "Nothing waits for you."),
    h("h2", {}, "History"),
    table(["Request", "User", "Target", "Duration", "Reason", "Created", "State", "Reviews", ""], all.map(historyRow), "No requests yet."));
};

views.account = async (m) => {
  const me = await api("GET", "/api/v1/auth/whoami");
  const mfa = h("div", {});
  const parts = [h("h1", {}, "My account"),
    me.must_change_password ? h("div", { class: "error", role: "alert" }, "Your password is a one-time password: set your own to continue.") : null,
    form({ "aria-label": "change password" }, [
      h("h2", {}, "Change password"),
      h("div", { class: "row" }, field("Current password", input("current", { type: "password", required: true, autocomplete: "current-password" })),
        field("New password (12+ characters)", input("new", { type: "password", required: true, minlength: 12, autocomplete: "new-password" })),
        h("button", { type: "submit" }, "Change password")),
    ], async (d) => {
      await api("POST", "/api/v1/auth/password", { current: d.current, new: d.new });
      state.user.must_change_password = false;
      return h("div", { class: "notice" }, "Password changed.");
    }),
    h("h2", {}, "Multi-factor authentication"), mfa];
  if (me.mfa_enabled) mfa.append(h("p", {}, "MFA is on: logins ask for a code from your authenticator app."));
  else mfa.append(form({ "aria-label": "enroll MFA" }, [h("div", { class: "row" },
      field("Your password", input("mfa_password", { type: "password", required: true, autocomplete: "current-password" })),
      h("button", { type: "submit" }, "Enroll an authenticator app"))], async (d) => {
      const e = await api("POST", "/api/v1/mfa/enroll", { password: d.mfa_password });
      fill(mfa, h("p", {}, "Scan with an authenticator app, or enter the secret by hand:"),
        h("img", { src: e.qr_code, alt: "QR code for " + e.uri, width: 240, height: 240 }), h("p", {}, h("code", {}, e.secret)),
        form({ "aria-label": "confirm MFA" }, [h("div", { class: "row" }, field("Code from the app", input("code", { required: true, inputmode: "numeric", autocomplete: "one-time-code" })),
          h("button", { type: "submit" }, "Confirm"))], async (d) => {
          await api("POST", "/api/v1/mfa/confirm", { code: d.code });
          route();
        }));
    }));
  fill(m, ...parts);
};

window.addEventListener("hashchange", route);
route();
