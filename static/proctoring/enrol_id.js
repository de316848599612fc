// The photo ID step: the student holds their ID up beside their face; the page sends a photo about once a second,
// showing the server's calm guidance, until one is usable (the server keeps that one) or the student stops.
import { openCamera, cameraControlsOff, captureJpeg, postForm, csrfToken, CameraError } from "./camera.js";

const root = document.getElementById("enrol-id");
const video = document.getElementById("preview");
const canvas = document.getElementById("frame-canvas");
const guidance = document.getElementById("guidance");
const startButton = document.getElementById("start");
const stopButton = document.getElementById("stop");
const result = document.getElementById("result");
const continueLink = document.getElementById("continue");
const cameraOff = document.getElementById("camera-off");

const csrf = csrfToken(root);
// Time to bring the card up and hold it still between photos; the server allows 40 checks in 20 s.
const CAPTURE_GAP_MS = 1000;
const MAX_ATTEMPTS = 60;

let stream = null;
let running = false;

function say(text) {
  if (guidance.textContent !== text) guidance.textContent = text;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function run() {
  running = true;
  startButton.disabled = true;
  stopButton.hidden = false;
  result.hidden = true;
  say("Starting your camera…");
  video.hidden = false;
  cameraOff.hidden = true;
  try {
    stream = await openCamera(video);
  } catch (err) {
    say(err instanceof CameraError ? err.message : "The camera could not start. Please try again.");
    finish();
    return;
  }
  say("Hold your ID up beside your face, photo towards the camera…");
  await sleep(CAPTURE_GAP_MS);
  for (let attempts = 0; running && attempts < MAX_ATTEMPTS; attempts += 1) {
    const started = performance.now();
    const form = new FormData();
    form.append("frame", await captureJpeg(video, canvas), "id.jpg");
    const answer = await postForm(root.dataset.frameUrl, form, csrf);
    if (!running) break;
    if (answer.ok) {
      showResult(answer);
      finish();
      return;
    }
    if (answer.status === 401 || answer.status === 403 || answer.status === 503) {
      say(answer.message);
      finish();
      return;
    }
    if (answer.status === 429) {
      attempts -= 1;
      say(answer.message);
      await sleep(5000);
    } else {
      say(answer.message || "That photo could not be used. Please try again.");
    }
    const elapsed = performance.now() - started;
    if (elapsed < CAPTURE_GAP_MS) await sleep(CAPTURE_GAP_MS - elapsed);
  }
  say(running
    ? "We could not see the photo on your ID clearly. Check the light, hold the ID still beside your face, and try again."
    : "Stopped. Press the button to start again.");
  finish();
}

function showResult(answer) {
  result.hidden = false;
  const heading = document.createElement("h2");
  heading.textContent = "Your ID photo is saved";
  const text = document.createElement("p");
  const when = new Date(answer.captured_at);
  text.textContent = `${answer.message} Taken on ${when.toLocaleString([], { dateStyle: "medium", timeStyle: "short", hourCycle: "h23" })}.`;
  result.replaceChildren(heading, text);
  result.classList.add("result-ok");
  if (continueLink) continueLink.hidden = false;
  startButton.textContent = "Show it again";
  say("ID photo saved.");
  result.focus();
}

function finish() {
  running = false;
  cameraControlsOff({ video, cameraOff, startButton, stopButton }, stream);
  stream = null;
}

startButton.addEventListener("click", () => {
  if (!running) run();
});
stopButton.addEventListener("click", () => {
  running = false;
});
