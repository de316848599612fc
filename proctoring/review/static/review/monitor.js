// Live monitor: one tile per student of the exam (the roster), fed by /ws/monitor/<exam_id>/ (proctoring/review/consumers.py).
// Every enrolled student has a tile, streaming or not, in one of the roster's states. Text and icons carry every
// state; colour only repeats them. Live statuses are merged as they come and drawn once a second, so a room of 200
// streaming students costs the page a few DOM updates a second, not hundreds. The page tells the socket which tiles
// are on screen, and only those get thumbnails: a room of 200 costs the bandwidth of the tiles one can see.

const list = document.getElementById("monitor-tiles");
const examId = list.dataset.exam;
const reviewUrl = (attemptId) => list.dataset.reviewUrl.replace("/0/", `/${attemptId}/`);
const connection = document.getElementById("monitor-connection");
const announcer = document.getElementById("monitor-announcer");
const empty = document.getElementById("monitor-empty");
const counts = document.getElementById("monitor-counts");
const filterInputs = document.querySelectorAll('input[name="monitor-filter"]');
const sortSelect = document.getElementById("monitor-sort");
const WEIGHTS = JSON.parse(document.getElementById("monitor-weights").textContent);
const tiles = new Map();
const pending = new Map();
const FLUSH_MS = 1000;
const VISIBLE_DEBOUNCE_MS = 300;

const ALERTS = {
  FACE_NOT_FOUND: "Face not found",
  MULTIPLE_FACES: "Multiple faces",
  IDENTITY_MISMATCH: "Identity not confirmed",
  PHONE_DETECTED: "Phone in view",
  LOOKING_AWAY: "Looking away",
  STREAM_STALLED: "Stream paused",
  ERROR: "Server problem (not the student's)",
  OVERLOADED: "Server busy (not the student's)",
};
// The roster's states, in the order the header counts them.
const STATES = {
  connected: "● Connected",
  setting_up: "◌ Setting up",
  not_started: "○ Not started",
  stalled: "◐ Stream paused",
  disconnected: "○ Disconnected",
  submitted: "✓ Submitted",
  ended: "■ Ended",
};
const STATE_NAMES = {
  connected: "connected", setting_up: "setting up", not_started: "not started", stalled: "stream paused",
  disconnected: "disconnected", submitted: "submitted", ended: "ended",
};

const NOW_WITHOUT_CAMERA = {
  not_started: "Now: has not opened the exam",
  setting_up: "Now: consent, enrolment or the camera check",
  submitted: "Now: submitted the exam",
  ended: "Now: proctoring has ended",
};

function announce(text) {
  announcer.textContent = "";
  // A fresh text node after clearing makes screen readers read repeated messages too.
  window.setTimeout(() => { announcer.textContent = text; }, 50);
}

function clock(epochSeconds) {
  // 24-hour in the reader's time zone, as the review pages and the student's notices show times.
  return new Date(epochSeconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

function keyOf(status) {
  return status.student_id ?? `attempt-${status.attempt_id}`;
}

function priorityOf(openFlags) {
  return openFlags.reduce((sum, f) => sum + (WEIGHTS[f.kind] ?? 1), 0);
}

function makeTile(status) {
  const key = keyOf(status);
  const id = String(key).replace(/[^\w-]/g, "");
  const name = status.student || "A student";
  const heading = el("h2", { id: `tile-${id}-h`, textContent: name });
  const thumb = el("img", { className: "thumb", alt: "", width: 160, height: 120, hidden: true });
  const conn = el("p", { className: "tile-connection" });
  const meter = el("meter", { min: 0, max: 100, low: 40, high: 70, optimum: 100, value: 0 });
  meter.setAttribute("aria-labelledby", `tile-${id}-att`);
  const attText = el("span", { id: `tile-${id}-att`, textContent: "Attention: waiting for frames" });
  const attention = el("p", { className: "tile-attention" }, [attText, " ", meter]);
  const now = el("p", { className: "tile-conditions", textContent: "Now: waiting for frames" });
  const alert = el("p", { className: "tile-alert", textContent: "No alert yet" });
  const flags = el("ul", { className: "tile-flags" });
  flags.setAttribute("aria-label", `Open flags of ${name}`);
  const signal = el("p", { className: "tile-signal muted" });
  const actions = el("div", { className: "tile-actions" });
  const li = el("li", { className: "tile", id: `tile-${id}` }, [heading, thumb, conn, attention, now, alert, flags, signal, actions]);
  li.setAttribute("aria-labelledby", heading.id);
  const tile = {
    key, li, thumb, conn, meter, attText, now, alert, flags, signal, actions, student: name,
    attemptId: null, state: "not_started", conditions: [], openFlags: [], priority: 0, input: null, sent: null,
  };
  tiles.set(key, tile);
  list.append(li);
  onScreen.observe(li);
  return tile;
}

// The message form and the review link need the attempt: a student who has not started has neither.
function attachAttempt(tile, attemptId) {
  if (!attemptId || tile.attemptId === attemptId) return;
  tile.attemptId = attemptId;
  const id = attemptId;
  const input = el("input", { type: "text", id: `msg-${id}`, maxLength: 500, autocomplete: "off" });
  const label = el("label", { htmlFor: `msg-${id}`, textContent: `Message to ${tile.student}` });
  const sent = el("p", { className: "tile-sent muted", role: "status" });
  const form = el("form", { className: "tile-message" }, [label, input, el("button", { type: "submit", textContent: "Send" })]);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!message) { sent.textContent = "Write a message first."; return; }
    send({ type: "message", attempt_id: id, message });
    sent.textContent = "Sending…";
  });
  const link = el("a", { href: reviewUrl(id) }, [
    "Open review", el("span", { className: "visually-hidden", textContent: ` of ${tile.student}` }),
  ]);
  // The message form folds away: a room of tiles shows faces and states, not 200 text boxes.
  const message = el("details", { className: "tile-compose" }, [
    el("summary", {}, ["Message", el("span", { className: "visually-hidden", textContent: ` ${tile.student}` })]), form,
  ]);
  tile.actions.replaceChildren(message, sent, link);
  tile.input = input;
  tile.sent = sent;
  tile.li.dataset.attempt = String(id);
  if (seen.has(tile.li)) tellVisible();
}

function apply(status, announcements) {
  const tile = tiles.get(keyOf(status)) || makeTile(status);
  attachAttempt(tile, status.attempt_id);
  const state = status.state || status.connection || (status.connected === undefined ? null : (status.connected ? "connected" : "setting_up"));
  if (state && STATES[state]) {
    tile.state = state;
    tile.conn.textContent = STATES[state];
    tile.li.dataset.state = state;
  }
  const att = status.attention && typeof status.attention === "object" ? status.attention : (
    typeof status.attention === "number" ? { score: status.attention, label: status.label } : null);
  if (att && att.score !== null && att.score !== undefined) {
    tile.meter.value = att.score;
    tile.attText.textContent = `Attention ${att.score} (${att.label})`;
    tile.li.dataset.attention = att.label;
  }
  if (Array.isArray(status.conditions)) {
    // What the latest frame shows, as a set: several conditions at once are all named.
    tile.conditions = status.conditions.filter((c) => c !== "AUTHORIZED");
    const shown = tile.conditions.map((c) => ALERTS[c] || c);
    tile.now.textContent = shown.length ? `Now: ${shown.join(" · ")}` : "Now: nothing to note";
  }
  if (state && !["connected", "stalled", "disconnected"].includes(state)) {
    // No camera to describe: say where the student is instead.
    tile.conditions = [];
    tile.now.textContent = NOW_WITHOUT_CAMERA[state] || "";
  }
  if (Array.isArray(status.alerts) && status.alerts.length) {
    // Every alert of the frame, not only the first: a phone and a missing face in one frame are both told.
    const names = status.alerts.map((a) => ALERTS[a.event] || a.event);
    const at = status.alerts[0].at;
    tile.alert.textContent = `⚠ ${names.join(" · ")}${at ? ` at ${clock(at)}` : ""}`;
    if (announcements) announcements.push(`${tile.student}: ${names.join(", ")}`);
  }
  if (Array.isArray(status.open_flags)) {
    tile.openFlags = status.open_flags;
    tile.priority = priorityOf(status.open_flags);
    tile.flags.replaceChildren(...status.open_flags.map((f) => el("li", {}, [
      el("a", { href: `${reviewUrl(status.attempt_id || tile.attemptId)}#flag-${f.flag_id}` }, [
        `Open flag: ${ALERTS[f.event] || f.event}`,
        el("span", { className: "visually-hidden", textContent: ` of ${tile.student} (flag ${f.flag_id})` }),
      ]),
      f.at ? ` since ${clock(f.at)}` : "",
    ])));
    tile.li.dataset.openFlags = String(status.open_flags.length);
  }
  if (status.signal) tile.signal.textContent = `Browser: ${status.signal.replace("_", " ")}${status.at ? ` at ${clock(status.at)}` : ""}`;
  if (status.thumbnail) {
    tile.thumb.src = `data:image/jpeg;base64,${status.thumbnail}`;
    tile.thumb.alt = `Camera of ${tile.student}${status.at ? ` at ${clock(status.at)}` : ""}`;
    tile.thumb.hidden = false;
  }
  tile.li.dataset.needsAttention = needsAttention(tile) ? "yes" : "no";
}

function needsAttention(tile) {
  return tile.openFlags.length > 0 || tile.conditions.length > 0 || tile.state === "stalled" || tile.state === "disconnected";
}

function currentFilter() {
  const checked = Array.from(filterInputs).find((input) => input.checked);
  return checked ? checked.value : "all";
}

function shows(tile, filter) {
  if (filter === "attention") return needsAttention(tile);
  if (filter === "flags") return tile.openFlags.length > 0;
  if (filter === "disconnected") return tile.state === "disconnected" || tile.state === "stalled";
  return true;
}

// Counts, filter and order: after every batch of updates, and when the instructor changes a control.
function refresh() {
  const byState = Object.fromEntries(Object.keys(STATES).map((s) => [s, 0]));
  let openFlags = 0;
  let attention = 0;
  for (const tile of tiles.values()) {
    byState[tile.state] = (byState[tile.state] || 0) + 1;
    openFlags += tile.openFlags.length;
    if (needsAttention(tile)) attention += 1;
  }
  // The states that someone is in, in a fixed order: a room of 200 reads at a glance.
  const parts = Object.keys(STATES).filter((s) => byState[s]).map((s) => `${byState[s]} ${STATE_NAMES[s]}`);
  counts.textContent = `${tiles.size} students: ${parts.join(" · ")} · ${openFlags} open flag${openFlags === 1 ? "" : "s"} · ${attention} need${attention === 1 ? "s" : ""} attention`;
  const filter = currentFilter();
  let visible = 0;
  for (const tile of tiles.values()) {
    tile.li.hidden = !shows(tile, filter);
    if (!tile.li.hidden) visible += 1;
  }
  empty.hidden = visible > 0;
  empty.textContent = tiles.size ? "No student matches this filter." : "No student is enrolled in this exam yet.";
  const ordered = Array.from(tiles.values()).sort(sortSelect.value === "priority"
    ? (a, b) => (b.priority - a.priority) || (Number(needsAttention(b)) - Number(needsAttention(a))) || a.student.localeCompare(b.student)
    : (a, b) => a.student.localeCompare(b.student));
  // Move only what is out of place: re-appending every tile would reset focus and scroll for nothing.
  ordered.forEach((tile, index) => {
    if (list.children[index] !== tile.li) list.insertBefore(tile.li, list.children[index] || null);
  });
}

function flush() {
  if (!pending.size) return;
  const announcements = [];
  for (const status of pending.values()) apply(status, announcements);
  pending.clear();
  refresh();
  if (announcements.length === 1) announce(announcements[0]);
  else if (announcements.length > 1) announce(`${announcements.length} new alerts: ${announcements.slice(0, 3).join("; ")}${announcements.length > 3 ? "; …" : ""}`);
}

// A status merges into the one still waiting for the same student, so only the latest of each field is drawn.
function queue(status) {
  const key = keyOf(status);
  const waiting = pending.get(key);
  if (!waiting) { pending.set(key, status); return; }
  const merged = { ...waiting, ...status };
  if (!status.alerts && waiting.alerts) merged.alerts = waiting.alerts;
  if (!status.thumbnail && waiting.thumbnail) merged.thumbnail = waiting.thumbnail;
  if (!status.open_flags && waiting.open_flags) merged.open_flags = waiting.open_flags;
  if (!status.signal && waiting.signal) merged.signal = waiting.signal;
  pending.set(key, merged);
}

let socket = null;
let retry = 1000;

// Tiles on screen (with a margin, so a picture is there as one scrolls): the socket sends thumbnails for these only.
const seen = new Set();
let visibleTimer = null;
const onScreen = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (entry.isIntersecting) seen.add(entry.target); else seen.delete(entry.target);
  }
  tellVisible();
}, { rootMargin: "200px 0px" });

function tellVisible() {
  window.clearTimeout(visibleTimer);
  visibleTimer = window.setTimeout(() => {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const ids = Array.from(seen, (li) => Number(li.dataset.attempt)).filter((id) => id > 0);
    socket.send(JSON.stringify({ type: "visible", attempt_ids: ids }));
  }, VISIBLE_DEBOUNCE_MS);
}

function send(payload) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(payload));
  else connection.textContent = "Not connected: the message was not sent. Reconnecting…";
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${window.location.host}/ws/monitor/${examId}/`);
  socket.addEventListener("open", () => { retry = 1000; connection.textContent = "Live: connected."; tellVisible(); });
  socket.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    if (data.event === "SNAPSHOT") {
      for (const tile of data.tiles) apply(tile, null);
      refresh();
    } else if (data.event === "STATUS") {
      queue(data);
    } else if (data.event === "MESSAGE_SENT") {
      const tile = Array.from(tiles.values()).find((t) => t.attemptId === data.attempt_id);
      if (tile && tile.sent) {
        tile.sent.textContent = `Sent: “${data.message}”`;
        tile.input.value = "";
        tile.input.closest("details").open = false;
      }
    } else if (data.event === "ERROR") {
      const tile = Array.from(tiles.values()).find((t) => t.attemptId === data.attempt_id);
      if (tile && tile.sent) tile.sent.textContent = data.message; else connection.textContent = data.message;
    }
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4401 || event.code === 4403) {
      connection.textContent = event.code === 4401 ? "Please sign in again." : "This monitor is for the exam's instructor only.";
      return;
    }
    connection.textContent = "Live feed lost. Reconnecting…";
    window.setTimeout(connect, retry);
    retry = Math.min(retry * 2, 15000);
  });
}

for (const input of filterInputs) input.addEventListener("change", refresh);
sortSelect.addEventListener("change", refresh);
for (const tile of JSON.parse(document.getElementById("monitor-initial").textContent)) apply(tile, null);
refresh();
window.setInterval(flush, FLUSH_MS);
connect();
