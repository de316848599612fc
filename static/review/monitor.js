// Live monitor: one tile per streaming student, fed by /ws/monitor/<exam_id>/ (proctoring/monitor.py).
// Text and icons carry every state; colour only repeats them.

const list = document.getElementById("monitor-tiles");
const examId = list.dataset.exam;
const reviewUrl = (attemptId) => list.dataset.reviewUrl.replace("/0/", `/${attemptId}/`);
const connection = document.getElementById("monitor-connection");
const announcer = document.getElementById("monitor-announcer");
const empty = document.getElementById("monitor-empty");
const tiles = new Map();

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
const CONNECTION = {
  connected: "● Connected",
  stalled: "◐ Stream paused",
  disconnected: "○ Disconnected",
  ended: "■ Ended",
};

function announce(text) {
  announcer.textContent = "";
  // A fresh text node after clearing makes screen readers read repeated messages too.
  window.setTimeout(() => { announcer.textContent = text; }, 50);
}

function clock(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

function makeTile(status) {
  const id = status.attempt_id;
  const heading = el("h2", { id: `tile-${id}-h`, textContent: status.student || `Attempt ${id}` });
  const thumb = el("img", { className: "thumb", alt: "", width: 160, height: 120, hidden: true });
  const conn = el("p", { className: "tile-connection" });
  const meter = el("meter", { min: 0, max: 100, low: 40, high: 70, optimum: 100, value: 0 });
  meter.setAttribute("aria-labelledby", `tile-${id}-att`);
  const attText = el("span", { id: `tile-${id}-att`, textContent: "Attention: waiting for frames" });
  const attention = el("p", { className: "tile-attention" }, [attText, " ", meter]);
  const alert = el("p", { className: "tile-alert", textContent: "No alert yet" });
  const now = el("p", { className: "tile-conditions", textContent: "Now: waiting for frames" });
  const flags = el("ul", { className: "tile-flags" });
  flags.setAttribute("aria-label", `Open flags of ${status.student || `attempt ${id}`}`);
  const signal = el("p", { className: "tile-signal muted" });
  const input = el("input", { type: "text", id: `msg-${id}`, maxLength: 500, autocomplete: "off" });
  const label = el("label", { htmlFor: `msg-${id}`, textContent: `Message to ${status.student || "this student"}` });
  const sent = el("p", { className: "tile-sent muted", role: "status" });
  const form = el("form", { className: "tile-message" }, [label, input, el("button", { type: "submit", textContent: "Send" }), sent]);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const message = input.value.trim();
    if (!message) { sent.textContent = "Write a message first."; return; }
    send({ type: "message", attempt_id: id, message });
    sent.textContent = "Sending…";
  });
  const link = el("a", { href: reviewUrl(id) }, [
    "Open review", el("span", { className: "visually-hidden", textContent: ` of ${status.student || `attempt ${id}`}` }),
  ]);
  const li = el("li", { className: "tile", id: `tile-${id}` }, [heading, thumb, conn, attention, now, alert, flags, signal, form, link]);
  li.setAttribute("aria-labelledby", heading.id);
  const tile = { li, thumb, conn, meter, attText, alert, now, flags, signal, input, sent, student: status.student };
  tiles.set(id, tile);
  list.append(li);
  empty.hidden = true;
  return tile;
}

function update(status) {
  const tile = tiles.get(status.attempt_id) || makeTile(status);
  if (status.connection) {
    tile.conn.textContent = CONNECTION[status.connection] || status.connection;
    tile.li.dataset.connection = status.connection;
  } else if (status.connected !== undefined) {
    tile.conn.textContent = status.connected ? CONNECTION.connected : "○ Waiting for the first frame";
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
    const shown = status.conditions.filter((c) => c !== "AUTHORIZED").map((c) => ALERTS[c] || c);
    tile.now.textContent = shown.length ? `Now: ${shown.join(" · ")}` : "Now: nothing to note";
    tile.li.dataset.conditions = shown.length ? status.conditions.join(" ") : "";
  }
  if (Array.isArray(status.alerts) && status.alerts.length) {
    // Every alert of the frame, not only the first: a phone and a missing face in one frame are both told.
    const names = status.alerts.map((a) => ALERTS[a.event] || a.event);
    const at = status.alerts[0].at;
    tile.alert.textContent = `⚠ ${names.join(" · ")}${at ? ` at ${clock(at)}` : ""}`;
    if (status.event === "STATUS") announce(`${tile.student}: ${names.join(", ")}`);
  }
  if (Array.isArray(status.open_flags)) {
    tile.flags.replaceChildren(...status.open_flags.map((f) => el("li", {}, [
      el("a", { href: `${reviewUrl(status.attempt_id)}#flag-${f.flag_id}` }, [
        `Open flag: ${ALERTS[f.event] || f.event}`,
        el("span", { className: "visually-hidden", textContent: ` (flag ${f.flag_id})` }),
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
}

let socket = null;
let retry = 1000;

function send(payload) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(payload));
  else connection.textContent = "Not connected: the message was not sent. Reconnecting…";
}

function connect() {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${window.location.host}/ws/monitor/${examId}/`);
  socket.addEventListener("open", () => { retry = 1000; connection.textContent = "Live: connected."; });
  socket.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    if (data.event === "SNAPSHOT") {
      for (const tile of data.tiles) update(tile);
    } else if (data.event === "STATUS") {
      update(data);
    } else if (data.event === "MESSAGE_SENT") {
      const tile = tiles.get(data.attempt_id);
      if (tile) { tile.sent.textContent = `Sent: “${data.message}”`; tile.input.value = ""; }
    } else if (data.event === "ERROR") {
      const tile = tiles.get(data.attempt_id);
      if (tile) tile.sent.textContent = data.message; else connection.textContent = data.message;
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

for (const tile of JSON.parse(document.getElementById("monitor-initial").textContent)) update(tile);
connect();
