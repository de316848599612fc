// Webcam helpers shared by the enrolment, system check and exam panel pages.
// Frames are always captured unmirrored: the preview <video> is mirrored with CSS only (proctoring.css), so what
// the server sees is what the camera sees.

export const FRAME_WIDTH = 640;
export const FRAME_HEIGHT = 480;
export const JPEG_QUALITY = 0.8;

export async function openCamera(video) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new CameraError("unsupported", "This browser cannot use a webcam. Please use a recent Chrome, Edge or Firefox.");
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: FRAME_WIDTH }, height: { ideal: FRAME_HEIGHT }, facingMode: "user" },
      audio: false,
    });
  } catch (err) {
    if (err && (err.name === "NotAllowedError" || err.name === "SecurityError")) {
      throw new CameraError("denied", "The browser did not allow the camera. Please allow camera access for this site and try again.");
    }
    if (err && (err.name === "NotFoundError" || err.name === "OverconstrainedError")) {
      throw new CameraError("missing", "We could not find a camera. Please connect one and try again.");
    }
    if (err && err.name === "NotReadableError") {
      throw new CameraError("busy", "Your camera seems to be in use by another program. Please close it and try again.");
    }
    throw new CameraError("failed", "The camera could not start. Please try again.");
  }
  video.srcObject = stream;
  video.muted = true;
  video.playsInline = true;
  await video.play().catch(() => {});
  await waitForFrames(video);
  return stream;
}

export class CameraError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function waitForFrames(video) {
  if (video.readyState >= 2 && video.videoWidth > 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new CameraError("no_frames", "The camera started but sends no picture. Please check it is not covered.")), 10000);
    video.addEventListener("loadeddata", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

export function stopCamera(stream) {
  if (stream) stream.getTracks().forEach((track) => track.stop());
}

// A page's camera controls back to "off" (enrolment, photo ID): the stream stopped, the preview hidden behind its
// "camera off" panel, Start enabled and Stop hidden.
export function cameraControlsOff({ video, cameraOff, startButton, stopButton }, stream) {
  stopCamera(stream);
  startButton.disabled = false;
  stopButton.hidden = true;
  video.srcObject = null;
  video.hidden = true;
  cameraOff.hidden = false;
}

// Draw the current video frame at 640x480 (letterboxing is not needed: webcams are 4:3 or get scaled).
export function drawFrame(video, canvas) {
  canvas.width = FRAME_WIDTH;
  canvas.height = FRAME_HEIGHT;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(video, 0, 0, FRAME_WIDTH, FRAME_HEIGHT);
  return ctx;
}

export function captureJpeg(video, canvas) {
  drawFrame(video, canvas);
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("toBlob failed"))), "image/jpeg", JPEG_QUALITY);
  });
}

// Mean luma (0-255) of the canvas, sampled on a grid: cheap enough for a weak laptop.
export function meanBrightness(canvas) {
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  let sum = 0;
  let count = 0;
  for (let i = 0; i < data.length; i += 4 * 16) {
    sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
    count += 1;
  }
  return count ? sum / count : 0;
}

export function csrfToken(root) {
  return root.dataset.csrf || "";
}

// POST a form to a JSON endpoint. Always resolves to an object with ok and message, so that callers show a calm
// message instead of throwing on a network error or an HTML error page.
export async function postForm(url, form, csrf) {
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      body: form,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
    });
  } catch (err) {
    return { ok: false, reason: "network", message: "We could not reach the server. Please check your connection.", status: 0 };
  }
  let body = null;
  try {
    body = await response.json();
  } catch (err) {
    body = null;
  }
  if (!body || typeof body !== "object") {
    return { ok: false, reason: "server", message: "Something went wrong on our side. Please try again in a moment.", status: response.status };
  }
  body.status = response.status;
  return body;
}
