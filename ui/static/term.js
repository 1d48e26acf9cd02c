// pamd web terminal (term.html#SESSION): a shell on the SSH resource of
// one of your sessions, in xterm.js, over a WebSocket to the server. The
// server speaks SSH to the gateway as pamd ssh does and holds the
// session's credential: this page never has it. It sends keystrokes
// (binary messages) and its size ({"resize": {cols, rows}}), and shows
// what comes back; {"ended": reason} and {"closed": why} end it.
//
// term.html#watch/SESSION is the read-only live view of someone's session
// for admins and auditors: the server sends what the session's terminal
// shows, from its records, and its size ({"resize": {cols, rows}}); the
// page sends nothing.
"use strict";

const watching = location.hash.startsWith("#watch/");
const sessionID = decodeURIComponent(location.hash.slice(watching ? "#watch/".length : 1));
const statusEl = document.getElementById("status");
const targetEl = document.getElementById("target");
const endButton = document.getElementById("end");
const termEl = document.getElementById("terminal");
// The server takes a message of at most 64 KiB: a paste goes in pieces.
const inputPiece = 16 << 10;
// xterm.js draws its scroll bar over the right of the terminal's box.
const scrollBar = 14;
const maxSide = 1000;

const term = new Terminal({ cursorBlink: true, fontFamily: "ui-monospace, Menlo, Consolas, monospace", fontSize: 14, scrollback: 5000 });
let ws = null;
let finished = false;

function say(text, ended) {
  statusEl.textContent = text;
  statusEl.classList.toggle("ended", !!ended);
}

// finish shows why the terminal ended, in the bar and in the terminal (with
// control characters replaced: the text can quote the target).
function finish(text) {
  if (finished) return;
  finished = true;
  say(text, true);
  term.write("\r\n\x1b[1m[pamd] " + text.replace(/[\x00-\x1f\x7f-\x9f]/g, "?") + "\x1b[0m\r\n");
  term.options.disableStdin = true;
  term.options.cursorBlink = false;
  endButton.hidden = true;
}

// fitted is the size that fills the terminal's box, from the renderer's
// cell size as xterm's fit addon computes it (the addon is not vendored);
// null until the renderer has measured.
function fitted() {
  const rs = term._core && term._core._renderService;
  const cell = rs && rs.dimensions && rs.dimensions.css.cell;
  if (!cell || !cell.width || !cell.height) return null;
  const st = getComputedStyle(termEl);
  const w = termEl.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight) - scrollBar;
  const h = termEl.clientHeight - parseFloat(st.paddingTop) - parseFloat(st.paddingBottom);
  const side = (n) => Math.max(1, Math.min(maxSide, Math.floor(n)));
  return { cols: side(w / cell.width), rows: side(h / cell.height) };
}

function refit() {
  const s = fitted();
  if (s && (s.cols !== term.cols || s.rows !== term.rows)) term.resize(s.cols, s.rows);
}

function send(bytes) {
  if (!ws || ws.readyState !== WebSocket.OPEN || finished || watching) return;
  for (let i = 0; i < bytes.length; i += inputPiece) ws.send(bytes.subarray(i, i + inputPiece));
}

function showSize() {
  termEl.dataset.cols = term.cols;
  termEl.dataset.rows = term.rows;
}

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/sessions/" +
    encodeURIComponent(sessionID) + (watching ? "/watch" : "/terminal?cols=" + term.cols + "&rows=" + term.rows);
  ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  let opened = false;
  ws.onopen = () => { opened = true; say(watching ? "watching live (read-only)" : "connected"); };
  ws.onmessage = (ev) => {
    if (typeof ev.data !== "string") { term.write(new Uint8Array(ev.data)); return; }
    let c;
    try { c = JSON.parse(ev.data); } catch (e) { return; }
    if (watching && c.resize) term.resize(c.resize.cols, c.resize.rows);
    else if (typeof c.ended === "string") finish(c.ended === "expired" ? "session expired" : "session ended: " + c.ended);
    else if (typeof c.closed === "string") finish("connection closed: " + c.closed);
  };
  ws.onclose = () => finish(opened ? "connection closed" : watching ? "could not watch the session (not live, or not allowed)" : "could not open the terminal (logged out of pamd?)");
}

async function endSession() {
  if (!confirm("End session " + sessionID + "? Its connections are cut at once.")) return;
  try {
    const ui = await fetch("/api/v1/ui/session", { credentials: "same-origin" }).then((r) => r.json());
    const r = await fetch("/api/v1/sessions/" + encodeURIComponent(sessionID) + "/terminate",
      { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": ui.csrf } });
    if (!r.ok) say("could not end the session: " + ((await r.json().catch(() => ({}))).error || r.statusText));
  } catch (e) {
    say("could not end the session: " + e.message);
  }
}

async function start() {
  term.open(termEl);
  const utf8 = new TextEncoder();
  term.onData((d) => send(utf8.encode(d)));
  term.onBinary((d) => send(Uint8Array.from(d, (ch) => ch.charCodeAt(0) & 255)));
  term.onResize(({ cols, rows }) => {
    showSize();
    if (ws && ws.readyState === WebSocket.OPEN && !finished && !watching) ws.send(JSON.stringify({ resize: { cols, rows } }));
  });
  endButton.addEventListener("click", endSession);
  const r = await fetch("/api/v1/sessions/" + encodeURIComponent(sessionID), { credentials: "same-origin" });
  if (r.status === 401) { location.assign("./#/login"); return; }
  if (!r.ok) { finish("no such session of yours"); return; }
  const s = await r.json();
  targetEl.textContent = (watching ? "watching " + s.user + " on " : "") + s.resource + "/" + s.account;
  document.title = (watching ? "watching " : "") + s.resource + "/" + s.account + " — pamd";
  endButton.hidden = !s.active;
  if (watching) {
    // The watched terminal's size comes from the server, not this window.
    term.options.disableStdin = true;
    term.options.cursorBlink = false;
    termEl.dataset.watching = "yes";
    showSize();
    connect();
    return;
  }
  // The bar is laid out and the renderer has measured its cells: the first
  // size is the one the shell starts with. After it, the box's every change
  // (the window, the bar) refits the terminal.
  await new Promise(requestAnimationFrame);
  refit();
  showSize();
  let pending = 0;
  new ResizeObserver(() => { clearTimeout(pending); pending = setTimeout(refit, 100); }).observe(termEl);
  term.focus();
  connect();
}

start();
