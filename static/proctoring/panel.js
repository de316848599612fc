// The proctoring panel on the exam page: streams webcam frames over the proctoring WebSocket (docs/protocol.md),
// shows connection state, attention and calm notices, and reports browser integrity signals.
// It never ends or submits the exam: notices are guidance, and a person reviews anything the server notes.
import { openCamera, stopCamera, captureJpeg, CameraError } from "./camera.js";

const root = document.getElementById("proctor-panel");
const video = document.getElementById("proctor-preview");
const canvas = document.getElementById("proctor-canvas");
const connectionText = document.getElementById("proctor-connection");
const cameraText = document.getElementById("proctor-camera");
const meter = document.getElementById("proctor-attention");
const meterLabel = document.getElementById("proctor-attention-label");
const alerts = document.getElementById("proctor-alerts");
const politeRegion = document.getElementById("proctor-polite");
const assertiveRegion = document.getElementById("proctor-assertive");
const instructorBox = document.getElementById("proctor-instructor");
const instructorText = document.getElementById("proctor-instructor-text");
const fullscreenButton = document.getElementById("proctor-fullscreen");
const cameraRetryButton = document.getElementById("proctor-camera-retry");

const DEFAULT_INTERVAL_MS = 2000;
const MAX_ALERTS = 50;
const MAX_PENDING_SIGNALS = 50;
// The same notice is not announced again to a screen reader within this time; it is still shown.
const REANNOUNCE_MS = 20000;
// Close codes after which reconnecting cannot help (docs/protocol.md).
const FINAL_CLOSES = {
  4401: "You are signed out. Please sign in again in another tab, then reload this page. Your answers are kept.",
  4403: "This exam attempt belongs to another account, so proctoring cannot start here.",
  4404: "This exam attempt could not be found.",
  4409: "This exam attempt is no longer in progress, so proctoring has stopped.",
  4412: "Your face enrolment must be redone before proctoring can start.",
};

// Calm, specific messages for each event, used when the server sends none. Never accusatory: the camera sees
// things, and a person decides what they mean.
const MESSAGES = {
  AUTHORIZED: "We can see you clearly. Thank you.",
  FACE_NOT_FOUND: "We can't see your face. Please check your lighting and sit in front of the camera.",
  MULTIPLE_FACES: "We can see more than one person. Please make sure you are on your own for the exam.",
  IDENTITY_MISMATCH: "We couldn't match your face with your enrolment. Please face the camera in good light.",
  PHONE_DETECTED: "A phone seems to be in view. Please put it away.",
  LOOKING_AWAY: "Please keep your eyes on the exam screen.",
  STREAM_STALLED: "Your camera images stopped arriving for a moment. This is not counted against you.",
  FRAME_REJECTED: "One camera image could not be read. This is not counted against you.",
  OVERLOADED: "The proctoring server is busy and skipped some images. This is not counted against you; carry on.",
  PACE: "Many students are being checked right now, so checks run a little less often. Nothing is wrong on your side.",
  SESSION_ENDED: "Proctoring for this exam has ended.",
  ERROR: "Something went wrong on our side. This is not counted against you; carry on with your exam.",
};
// The rare notices that need the student to act now are assertive; everything else waits its turn.
const ASSERTIVE = new Set(["SESSION_ENDED", "INSTRUCTOR_MESSAGE", "CAMERA_STOPPED"]);
const SEVERITY = {
  AUTHORIZED: "ok",
  FACE_NOT_FOUND: "warn",
  MULTIPLE_FACES: "warn",
  IDENTITY_MISMATCH: "warn",
  PHONE_DETECTED: "warn",
  LOOKING_AWAY: "warn",
  INSTRUCTOR_MESSAGE: "info",
};

let socket = null;
let stream = null;
let ready = false;
let finished = false;
let intervalMs = DEFAULT_INTERVAL_MS;
let firstFrameAt = 0; // performance.now() of the first frame READY asked for (start_within_ms)
let maxFrameBytes = 2000000;
let awaitingAck = false;
let lastSentAt = 0;
let sendTimer = null;
let ackTimer = null;
let reconnectTimer = null;
let attempt = 0;
let lastProblem = null;
const pendingSignals = [];
const lastAnnounced = new Map();

function setConnection(state, text) {
  root.dataset.state = state;
  connectionText.dataset.state = state;
  connectionText.textContent = text;
}

function setCamera(state, text) {
  cameraText.dataset.state = state;
  cameraText.textContent = text;
}

function announce(text, assertive) {
  const region = assertive ? assertiveRegion : politeRegion;
  // Clear first so that the same sentence twice is still read out.
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 50);
}

// The notice history outlives a reload of the page (this tab only): a student who reloads still sees what they
// were told, and the instructor's messages. Kept in sessionStorage per attempt, at most MAX_ALERTS entries.
const historyKey = `proctor-notices:${root.dataset.wsPath}`;
const shownMessages = new Set();

function saveHistory() {
  const entries = Array.from(alerts.children).map((li) => ({
    event: li.dataset.event,
    text: li.dataset.text,
    count: Number(li.dataset.count || "1"),
    at: li.querySelector("time").dateTime,
    flagId: li.dataset.flagId || null,
    messageId: li.dataset.messageId || null,
  }));
  try {
    sessionStorage.setItem(historyKey, JSON.stringify(entries));
  } catch (err) {
    // Storage full or disabled: the history is a convenience, the live notices still work.
  }
}

function restoreHistory() {
  let entries = [];
  try {
    entries = JSON.parse(sessionStorage.getItem(historyKey) || "[]");
  } catch (err) {
    return;
  }
  if (!Array.isArray(entries)) return;
  // Oldest first, so that each lands on top of the ones before it, as it did live.
  for (const entry of entries.slice(0, MAX_ALERTS).reverse()) {
    if (!entry || typeof entry.text !== "string") continue;
    const item = addNotice(String(entry.event), entry.text, Date.parse(entry.at) || Date.now(), entry.flagId);
    item.dataset.count = String(Math.max(1, Number(entry.count) || 1));
    if (Number(item.dataset.count) > 1) item.querySelector(".alert-count").textContent = ` (×${item.dataset.count})`;
    if (entry.messageId) {
      item.dataset.messageId = String(entry.messageId);
      shownMessages.add(String(entry.messageId));
    }
  }
}

function stamp(time, at) {
  time.dateTime = new Date(at).toISOString();
  // One time format across the product: 24-hour, in the reader's time zone, as review and the monitor show it.
  time.textContent = new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
}

function addNotice(event, text, at, flagId) {
  const item = document.createElement("li");
  item.className = `alert alert-${SEVERITY[event] || "info"}`;
  item.dataset.event = event;
  item.dataset.text = text;
  item.dataset.count = "1";
  // The server noted this for a person to review (docs/protocol.md: events that open a flag carry flag_id).
  if (flagId != null) item.dataset.flagId = String(flagId);
  const time = document.createElement("time");
  stamp(time, at);
  const body = document.createElement("span");
  body.className = "alert-text";
  body.textContent = text;
  const count = document.createElement("span");
  count.className = "alert-count";
  item.append(time, " ", body, count);
  alerts.prepend(item);
  while (alerts.children.length > MAX_ALERTS) alerts.lastElementChild.remove();
  return item;
}

function notify(event, text, { assertive = false, flagId = null, at = null, quiet = false, messageId = null } = {}) {
  const now = Date.now();
  // The same notice again, even with others in between (conditions that alternate, phone then face then phone):
  // count it and bring it to the top rather than add an entry every few seconds.
  const same = Array.from(alerts.children).find((li) => li.dataset.event === event && li.dataset.text === text);
  if (same) {
    const count = Number(same.dataset.count || "1") + 1;
    same.dataset.count = String(count);
    same.querySelector(".alert-count").textContent = ` (×${count})`;
    stamp(same.querySelector("time"), at ?? now);
    if (flagId != null) same.dataset.flagId = String(flagId);
    if (same !== alerts.firstElementChild) alerts.prepend(same);
  } else {
    const item = addNotice(event, text, at ?? now, flagId);
    if (messageId != null) item.dataset.messageId = String(messageId);
  }
  saveHistory();
  if (quiet) return;
  const key = `${event}:${text}`;
  if (assertive || now - (lastAnnounced.get(key) || 0) > REANNOUNCE_MS) {
    lastAnnounced.set(key, now);
    announce(text, assertive);
  }
}

function wsUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

// 1. Connect, and reconnect with capped exponential backoff and jitter, so that a class of students whose Wi-Fi
//    dropped together does not reconnect in lock-step. The server resumes the same proctoring session.
function connect() {
  if (finished) return;
  clearTimeout(reconnectTimer);
  ready = false;
  awaitingAck = false;
  setConnection(attempt ? "reconnecting" : "connecting", attempt ? "Reconnecting…" : "Connecting…");
  socket = new WebSocket(wsUrl(root.dataset.wsPath));
  socket.binaryType = "arraybuffer";
  socket.addEventListener("message", onMessage);
  socket.addEventListener("close", onClose);
}

function scheduleReconnect() {
  attempt += 1;
  const base = Math.min(30000, 1000 * 2 ** Math.min(attempt - 1, 5));
  const delay = Math.round(base * (0.5 + Math.random() / 2));
  setConnection("reconnecting", `Connection lost. Reconnecting in ${Math.ceil(delay / 1000)} s. Carry on with your exam.`);
  reconnectTimer = setTimeout(connect, delay);
}

function onClose(event) {
  ready = false;
  clearTimeout(sendTimer);
  clearTimeout(ackTimer);
  if (event.target !== socket || finished) return;
  if (FINAL_CLOSES[event.code]) {
    finished = true;
    setConnection("closed", FINAL_CLOSES[event.code]);
    notify("CONNECTION_CLOSED", FINAL_CLOSES[event.code], { assertive: true });
    if (event.code === 4412) {
      const link = document.createElement("a");
      link.href = root.dataset.enrolUrl;
      link.textContent = "Enrol your face again";
      connectionText.append(" ", link);
    }
    return;
  }
  if (event.code === 4429) {
    notify("CONNECTION_BUSY", "This exam is open in too many tabs. Please close the others; we will retry.");
  }
  if (event.code === 4503) {
    notify("CONNECTION_BUSY", "The proctoring server is briefly unavailable. Keep working; we will reconnect.");
  }
  scheduleReconnect();
}

function onMessage(message) {
  if (typeof message.data !== "string") return;
  let data;
  try {
    data = JSON.parse(message.data);
  } catch (err) {
    return;
  }
  const event = data.event;
  switch (event) {
    case "READY":
      ready = true;
      attempt = 0;
      root.dataset.sessionId = String(data.session_id);
      intervalMs = Math.max(250, Number(data.frame_interval_ms) || DEFAULT_INTERVAL_MS);
      maxFrameBytes = Number(data.max_frame_bytes) || maxFrameBytes;
      root.dataset.pace = data.reason || "";
      flushSignals();
      if (data.reason === "busy") {
        // Joined a paced room: the same calm notice as PACE.
        const resumed = data.resumed ? " Your session continues." : "";
        setConnection("connected", `Connected.${resumed} Checks are a little slower right now.`);
        notify("PACE", data.message || MESSAGES.PACE);
      } else {
        setConnection("connected", data.resumed ? "Connected. Your session continues." : "Connected.");
      }
      // The first frame at a random point of start_within_ms (docs/protocol.md), so that a room pressing Start
      // together does not reach the workers as one wave.
      firstFrameAt = performance.now() + Math.random() * Math.max(0, Number(data.start_within_ms) || 0);
      scheduleFrame(firstFrameAt - performance.now());
      break;
    case "FRAME_ACK":
      awaitingAck = false;
      clearTimeout(ackTimer);
      scheduleFrame(Math.max(0, lastSentAt + intervalMs - performance.now()));
      break;
    case "PONG":
      break;
    case "PACE":
      // Push-back under load (docs/protocol.md): send frames at the interval the server can keep up with, until it
      // says the usual pace is back. Calm, and nothing for the student to do.
      intervalMs = Math.max(250, Number(data.frame_interval_ms) || intervalMs);
      root.dataset.pace = data.reason || "";
      // Re-spread (docs/protocol.md): the whole room hears PACE within one old interval, so each client takes its
      // next frame at a random point up to one new interval after its previous frame, instead of keeping its old
      // rhythm, which would bunch the room's frames into waves; and never later, so no student waits longer.
      if (!awaitingAck) scheduleFrame(Math.random() * Math.max(0, lastSentAt + intervalMs - performance.now()));
      setConnection("connected", data.reason === "busy" ? "Connected. Checks are a little slower right now." : "Connected.");
      notify(event, data.message || MESSAGES.PACE);
      break;
    case "ATTENTION_UPDATE":
      showAttention(data.score, data.label);
      break;
    case "AUTHORIZED":
      // Confirmed identity is good news, shown once after a problem rather than every frame.
      if (lastProblem !== "AUTHORIZED") notify(event, data.message || MESSAGES.AUTHORIZED);
      lastProblem = "AUTHORIZED";
      break;
    case "INSTRUCTOR_MESSAGE": {
      // Sent live, and again after every connect (replayed: true), so a reload keeps them: each is shown once.
      const text = String(data.message || "");
      const id = data.message_id != null ? String(data.message_id) : null;
      instructorBox.hidden = false;
      instructorText.textContent = text;
      if (id !== null && shownMessages.has(id)) break;
      if (id !== null) shownMessages.add(id);
      const at = Number(data.at) > 0 ? Number(data.at) * 1000 : null;
      // A replayed message was read out when it arrived: shown again, not announced again.
      notify(event, `Message from your instructor: ${text}`, { assertive: true, at, quiet: Boolean(data.replayed), messageId: id });
      break;
    }
    case "SESSION_ENDED":
      finished = true;
      notify(event, data.message || (data.reason ? `${MESSAGES.SESSION_ENDED} (${data.reason})` : MESSAGES.SESSION_ENDED), { assertive: true });
      setConnection("ended", "Proctoring has ended.");
      stopCamera(stream);
      if (socket) socket.close(1000);
      break;
    case "ERROR":
      // The server's ERROR message is written for the student (and already says it is not held against them).
      notify(event, data.message || MESSAGES.ERROR);
      break;
    default:
      if (event) {
        if (["FACE_NOT_FOUND", "MULTIPLE_FACES", "IDENTITY_MISMATCH", "PHONE_DETECTED", "LOOKING_AWAY"].includes(event)) {
          lastProblem = event;
        }
        notify(event, data.message || MESSAGES[event] || "Notice from the proctoring server.", { flagId: data.flag_id });
      }
  }
}

function showAttention(score, label) {
  const value = Math.max(0, Math.min(100, Math.round(Number(score) || 0)));
  meter.value = value;
  meterLabel.textContent = `${label || ""} (${value} of 100)`.trim();
  meter.dataset.label = label || "";
}

// 2. Frames: one JPEG in flight at a time. The next goes only after the server's FRAME_ACK and no sooner than the
//    exam's frame interval. If an ACK never comes (a server restart mid-frame), send again after a long wait
//    rather than stop for good.
function scheduleFrame(delay) {
  clearTimeout(sendTimer);
  sendTimer = setTimeout(sendFrame, delay);
}

async function sendFrame() {
  if (!ready || awaitingAck || finished || !socket || socket.readyState !== WebSocket.OPEN) return;
  if (!stream || video.readyState < 2) {
    scheduleFrame(intervalMs);
    return;
  }
  let blob = await captureJpeg(video, canvas);
  if (blob.size > maxFrameBytes) return scheduleFrame(intervalMs);
  if (!ready || socket.readyState !== WebSocket.OPEN) return;
  awaitingAck = true;
  lastSentAt = performance.now();
  socket.send(blob);
  clearTimeout(ackTimer);
  ackTimer = setTimeout(() => {
    awaitingAck = false;
    sendFrame();
  }, Math.max(15000, 5 * intervalMs));
}

// 3. Browser integrity signals, queued while disconnected and sent once READY.
function signal(name) {
  const payload = JSON.stringify({ type: "signal", signal: name });
  if (ready && socket && socket.readyState === WebSocket.OPEN) {
    socket.send(payload);
  } else {
    pendingSignals.push(payload);
    if (pendingSignals.length > MAX_PENDING_SIGNALS) pendingSignals.shift();
  }
}

function flushSignals() {
  while (pendingSignals.length && socket && socket.readyState === WebSocket.OPEN) socket.send(pendingSignals.shift());
}

document.addEventListener("visibilitychange", () => signal(document.hidden ? "tab_hidden" : "tab_visible"));
document.addEventListener("fullscreenchange", () => {
  const full = Boolean(document.fullscreenElement);
  // The button says what it will do now, and stays reachable by keyboard in full screen too.
  fullscreenButton.textContent = full ? "Leave full screen" : "Use full screen";
  fullscreenButton.setAttribute("aria-pressed", String(full));
  signal(full ? "fullscreen_enter" : "fullscreen_exit");
});
document.addEventListener("paste", () => signal("paste"));
window.addEventListener("online", () => {
  if (!ready && !finished) connect();
});

fullscreenButton.addEventListener("click", () => {
  if (document.fullscreenElement) {
    document.exitFullscreen().catch(() => {});
    return;
  }
  document.documentElement.requestFullscreen().catch(() => {
    notify("FULLSCREEN", "Full screen is not available in this browser. You can carry on without it.");
  });
});

// 4. The camera. If it stops (unplugged, another app took it), say so and offer to turn it back on; the exam goes on.
async function startCamera() {
  cameraRetryButton.hidden = true;
  setCamera("starting", "Starting…");
  try {
    stream = await openCamera(video);
  } catch (err) {
    const text = err instanceof CameraError ? err.message : "The camera could not start.";
    setCamera("off", text);
    notify("CAMERA_STOPPED", `${text} Your exam continues.`, { assertive: true });
    cameraRetryButton.hidden = false;
    signal("camera_stopped");
    return;
  }
  setCamera("on", "On");
  signal("camera_started");
  stream.getVideoTracks().forEach((track) => track.addEventListener("ended", () => {
    // Stop sending: the <video> would keep showing its last picture, and a frozen frame is not a live camera.
    stream = null;
    setCamera("off", "Stopped");
    notify("CAMERA_STOPPED", "Your camera stopped. Please turn it back on; your exam continues.", { assertive: true });
    cameraRetryButton.hidden = false;
    signal("camera_stopped");
  }));
  if (ready && !awaitingAck) scheduleFrame(Math.max(0, firstFrameAt - performance.now()));
}

cameraRetryButton.addEventListener("click", startCamera);

restoreHistory();
startCamera();
connect();
