// Pre-exam system check: camera, lighting, framing (one face, via the enrolment check endpoint) and connection (the
// proctoring WebSocket answers READY, then a ping round trip). Each item says pass or fail in words, not colour.
import { openCamera, stopCamera, captureJpeg, drawFrame, meanBrightness, postForm, csrfToken, CameraError } from "./camera.js";

const root = document.getElementById("check");
const video = document.getElementById("preview");
const canvas = document.getElementById("frame-canvas");
const summary = document.getElementById("check-summary");
const runButton = document.getElementById("run-checks");
const csrf = csrfToken(root);

// Mean luma bounds (0-255) for a usable picture; outside them faces are hard to find. Deliberately wide: the
// server's own check decides framing, this only catches a covered lens or a backlit window.
const DARK = 45;
const BRIGHT = 225;
const FRAMING_TRIES = 4;
const WS_TIMEOUT_MS = 15000;

let stream = null;
let running = false;

function setItem(name, state, text) {
  const item = document.getElementById(`check-${name}`);
  item.dataset.state = state;
  item.querySelector(".check-icon").textContent = { pass: "✓", fail: "✗", running: "…", pending: "…" }[state];
  const prefix = { pass: "Passed. ", fail: "Failed. ", running: "", pending: "" }[state];
  item.querySelector(".check-text").textContent = prefix + text;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function checkCamera() {
  setItem("camera", "running", "Starting your camera…");
  try {
    stream = await openCamera(video);
  } catch (err) {
    setItem("camera", "fail", err instanceof CameraError ? err.message : "The camera could not start.");
    return false;
  }
  const track = stream.getVideoTracks()[0];
  const settings = track ? track.getSettings() : {};
  setItem("camera", "pass", `Your camera works${settings.width ? ` (${settings.width}×${settings.height})` : ""}.`);
  return true;
}

function checkLighting() {
  drawFrame(video, canvas);
  const level = meanBrightness(canvas);
  if (level < DARK) {
    setItem("lighting", "fail", "The picture is too dark. Turn on a light in front of you, or check that nothing covers the camera.");
    return false;
  }
  if (level > BRIGHT) {
    setItem("lighting", "fail", "The picture is too bright. Move away from a window behind you, or lower a bright light.");
    return false;
  }
  setItem("lighting", "pass", "The lighting is good.");
  return true;
}

async function checkFraming() {
  setItem("framing", "running", "Looking for your face…");
  let last = null;
  for (let i = 0; i < FRAMING_TRIES; i += 1) {
    const form = new FormData();
    form.append("frame", await captureJpeg(video, canvas), "frame.jpg");
    last = await postForm(root.dataset.frameUrl, form, csrf);
    if (last.ok) {
      setItem("framing", "pass", "We can see your face clearly.");
      return true;
    }
    if (last.status === 401 || last.status === 403 || last.status === 503) break;
    await sleep(last.status === 429 ? 5000 : 700);
  }
  setItem("framing", "fail", (last && last.message) || "We could not see your face. Please sit in front of the camera.");
  return false;
}

function wsUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

const CLOSE_MESSAGES = {
  4401: "You are signed out. Please sign in again and reload this page.",
  4403: "This exam attempt belongs to another account.",
  4404: "This exam attempt could not be found.",
  4409: "This exam attempt is no longer in progress.",
  4412: "Your face enrolment needs to be done again before this exam.",
  4429: "Too many open connections for this exam. Please close other tabs with this exam and try again.",
  4503: "The proctoring server is briefly unavailable. Please try the check again in a minute.",
};

function checkConnection() {
  setItem("connection", "running", "Connecting to the proctoring server…");
  return new Promise((resolve) => {
    let done = false;
    let pingSent = 0;
    const socket = new WebSocket(wsUrl(root.dataset.wsPath));
    const finish = (ok, text) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      setItem("connection", ok ? "pass" : "fail", text);
      // A plain close, not {"type": "end"}: the proctoring session must stay open for the exam page to resume it.
      if (socket.readyState <= WebSocket.OPEN) socket.close(1000);
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false, "The proctoring server did not answer. Please check your internet connection."), WS_TIMEOUT_MS);
    socket.addEventListener("message", (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch (err) {
        return;
      }
      if (data.event === "READY") {
        pingSent = performance.now();
        socket.send(JSON.stringify({ type: "ping" }));
      } else if (data.event === "PONG") {
        const rtt = Math.round(performance.now() - pingSent);
        if (rtt > 1500) finish(false, `Your connection is slow (${rtt} ms round trip). Proctoring may lag; a wired connection helps.`);
        else finish(true, `Connected (${rtt} ms round trip).`);
      }
    });
    socket.addEventListener("close", (event) => {
      if (done) return;
      let text = CLOSE_MESSAGES[event.code] || "The connection to the proctoring server closed. Please check your internet connection.";
      if (event.code === 4412) {
        const link = root.dataset.enrolUrl;
        finish(false, text);
        const item = document.getElementById("check-connection");
        const a = document.createElement("a");
        a.href = link;
        a.textContent = " Enrol your face again";
        item.querySelector(".check-text").append(a);
        return;
      }
      finish(false, text);
    });
  });
}

async function runAll() {
  if (running) return;
  running = true;
  runButton.disabled = true;
  summary.textContent = "Checking…";
  ["camera", "lighting", "framing", "connection"].forEach((name) => setItem(name, "pending", "Waiting…"));
  stopCamera(stream);
  const results = [];
  const cameraOk = await checkCamera();
  results.push(cameraOk);
  if (cameraOk) {
    results.push(checkLighting());
    results.push(await checkFraming());
  } else {
    setItem("lighting", "fail", "Needs a working camera.");
    setItem("framing", "fail", "Needs a working camera.");
    results.push(false, false);
  }
  results.push(await checkConnection());
  const failed = results.filter((ok) => !ok).length;
  summary.textContent = failed === 0
    ? "All checks passed. You can continue to the exam."
    : `${failed} of ${results.length} checks failed. Fix what you can and run the checks again. You can still continue.`;
  root.dataset.done = failed === 0 ? "pass" : "fail";
  running = false;
  runButton.disabled = false;
}

runButton.addEventListener("click", runAll);
runAll();
