// Face enrolment: take photos from the webcam, have the server check each one, show calm guidance for the ones it
// cannot use, and enrol with the accepted ones. The accepted photos stay in this page (not on the server) until the
// finish request sends them; the server checks them again there.
import { openCamera, cameraControlsOff, captureJpeg, postForm, csrfToken, CameraError } from "./camera.js";

const root = document.getElementById("enrol");
const video = document.getElementById("preview");
const canvas = document.getElementById("frame-canvas");
const progress = document.getElementById("enrol-progress");
const progressText = document.getElementById("progress-text");
const guidance = document.getElementById("guidance");
const startButton = document.getElementById("start");
const stopButton = document.getElementById("stop");
const result = document.getElementById("result");
const continueLink = document.getElementById("continue");
const cameraOff = document.getElementById("camera-off");

const target = Number(root.dataset.target) || 5;
const csrf = csrfToken(root);
// One photo at a time; the next is taken only after the server answered, and not sooner than this.
const CAPTURE_GAP_MS = 600;
// Give up (with a message, never silently) after this many photos without enough good ones.
const MAX_ATTEMPTS = 60;

let stream = null;
let running = false;

function say(text) {
  // Only announce a change: repeating the same sentence every photo would drown a screen reader.
  if (guidance.textContent !== text) guidance.textContent = text;
}

function setProgress(count) {
  progress.value = count;
  progressText.textContent = `${count} of ${target} good photos`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function run() {
  running = true;
  startButton.disabled = true;
  stopButton.hidden = false;
  result.hidden = true;
  setProgress(0);
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
  say("Look at the camera. Taking photos…");
  const accepted = [];
  let attempts = 0;
  while (running && accepted.length < target && attempts < MAX_ATTEMPTS) {
    attempts += 1;
    const started = performance.now();
    const blob = await captureJpeg(video, canvas);
    const form = new FormData();
    form.append("frame", blob, "frame.jpg");
    const answer = await postForm(root.dataset.frameUrl, form, csrf);
    if (!running) break;
    if (answer.ok) {
      accepted.push(blob);
      setProgress(accepted.length);
      say(accepted.length < target ? "Good. Hold still…" : "Done. Saving your enrolment…");
    } else if (answer.status === 401 || answer.status === 403 || answer.status === 503) {
      say(answer.message);
      finish();
      return;
    } else if (answer.status === 429) {
      // The server asked us to slow down: wait, and do not count this against the student's tries.
      say(answer.message);
      attempts -= 1;
      await sleep(5000);
    } else {
      say(answer.message || "That photo could not be used. Please try again.");
    }
    const elapsed = performance.now() - started;
    if (elapsed < CAPTURE_GAP_MS) await sleep(CAPTURE_GAP_MS - elapsed);
  }
  if (!running) {
    say("Stopped. Press the button to start again.");
    finish();
    return;
  }
  if (accepted.length < target) {
    say("We could not get enough clear photos. Please check your lighting, move so your face fills more of the picture, and try again.");
    finish();
    return;
  }
  const form = new FormData();
  accepted.forEach((blob, index) => form.append("frames", blob, `frame-${index + 1}.jpg`));
  const answer = await postForm(root.dataset.finishUrl, form, csrf);
  showResult(answer);
  finish();
}

function showResult(answer) {
  result.hidden = false;
  result.replaceChildren();
  const heading = document.createElement("h2");
  const text = document.createElement("p");
  if (answer.ok) {
    heading.textContent = "You are enrolled";
    const when = new Date(answer.enrolled_at);
    text.textContent = `${answer.message} Enrolled on ${when.toLocaleString([], { dateStyle: "medium", timeStyle: "short", hourCycle: "h23" })} from ${answer.accepted} photos.`;
    result.classList.add("result-ok");
    result.classList.remove("result-bad");
    if (continueLink) continueLink.hidden = false;
    startButton.textContent = "Enrol again";
  } else {
    heading.textContent = "Enrolment did not finish";
    text.textContent = answer.message;
    result.classList.add("result-bad");
    result.classList.remove("result-ok");
  }
  result.append(heading, text);
  say(answer.ok ? "Enrolment saved." : answer.message);
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
