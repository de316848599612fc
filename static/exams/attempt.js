// The exam page: a countdown that follows the server's deadline, autosave of every answer with one polite live
// region for its state, a confirmation dialog before submitting, and a calm lock when time runs out.
// Without this script the page still works: the form POSTs every answer, and "Submit exam…" leads to a
// confirmation page.

const form = document.getElementById("answers-form");
const timerEl = document.getElementById("timer");
const statusEl = document.getElementById("save-status");
const announcer = document.getElementById("timer-announcer");
const dialog = document.getElementById("confirm-dialog");
const confirmForm = document.getElementById("confirm-form");
const confirmCancel = document.getElementById("confirm-cancel");
const confirmSummary = document.getElementById("confirm-summary");
const timeUpPanel = document.getElementById("time-up");
const timeUpText = document.getElementById("time-up-text");
const csrfToken = form.querySelector("input[name=csrfmiddlewaretoken]").value;
const fieldsets = Array.from(form.querySelectorAll("fieldset[data-question]"));

// Typing is saved after a pause, choices almost at once (arrow keys in a radio group fire one change per press).
const TEXT_DEBOUNCE_MS = 800;
const CHOICE_DEBOUNCE_MS = 250;
const MAX_RETRY_MS = 30000;
const ANNOUNCE_MINUTES = [10, 5, 1];

// ---- Clock -------------------------------------------------------------------------------------------------
// offset = server clock - client clock. Everything is computed on the server's clock, so a student's wrong
// clock changes nothing; a reload starts again from the same server deadline.
const deadline = Date.parse(timerEl.dataset.deadline);
let offset = Date.parse(timerEl.dataset.serverNow) - Date.now();
const serverNow = () => Date.now() + offset;
const remainingMs = () => deadline - serverNow();

// Milestones already behind us when the page loads (a reload with 4 minutes left) are not announced again.
const announced = new Set(ANNOUNCE_MINUTES.filter((m) => remainingMs() <= m * 60000));
let locked = false;

function clockText(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const mm = String(m).padStart(2, "0");
  const ss = String(s).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function tick() {
  const left = remainingMs();
  timerEl.textContent = clockText(left);
  for (const minutes of ANNOUNCE_MINUTES) {
    if (!announced.has(minutes) && left <= minutes * 60000) {
      announced.add(minutes);
      announcer.textContent = `${minutes} minute${minutes === 1 ? "" : "s"} left.`;
      timerEl.closest(".timer-line")?.classList.add("timer-low");
    }
  }
  if (left <= 0) {
    timeUp();
    return;
  }
  // Wake at the next whole second of the countdown, so the display never skips or stalls.
  setTimeout(tick, (left % 1000) + 20);
}

// ---- Autosave ----------------------------------------------------------------------------------------------
const states = new Map(
  fieldsets.map((fs) => [
    fs,
    { dirty: false, inFlight: false, failures: 0, error: null, timer: null, chain: Promise.resolve() },
  ]),
);
let lastSavedAt = null;
let shownStatus = "";
let signedOut = false;

function payload(fs) {
  const body = new URLSearchParams();
  if (fs.dataset.kind === "short") {
    body.set("text", fs.querySelector("textarea").value);
  } else {
    for (const input of fs.querySelectorAll("input:checked")) body.append("choice", input.value);
  }
  return body;
}

function renderStatus() {
  if (locked) return;
  const all = Array.from(states.values());
  let text;
  const refused = all.find((st) => st.error);
  if (refused) text = `Not saved: ${refused.error}`;
  else if (signedOut) text = "Not saved — you have been signed out. Sign in again in another tab; we keep retrying.";
  else if (all.some((st) => st.failures > 0)) text = "Not saved — retrying";
  else if (all.some((st) => st.dirty || st.inFlight)) text = "Saving…";
  else if (lastSavedAt) text = `Saved at ${lastSavedAt.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" })}`;
  else text = "";
  if (text !== shownStatus) {
    // Writing only on a change keeps the live region to one announcement per state, not one per keystroke.
    shownStatus = text;
    statusEl.textContent = text;
    statusEl.dataset.state = refused ? "error" : text.startsWith("Saved") ? "saved" : "pending";
  }
}

function schedule(fs, delay) {
  const st = states.get(fs);
  st.dirty = true;
  st.error = null;
  clearTimeout(st.timer);
  st.timer = setTimeout(() => save(fs), delay);
  renderStatus();
}

function save(fs) {
  const st = states.get(fs);
  clearTimeout(st.timer);
  st.timer = null;
  // Requests for one question go one after another, so an older answer can never overwrite a newer one.
  st.chain = st.chain.then(() => send(fs));
  return st.chain;
}

async function send(fs, { keepalive = false } = {}) {
  const st = states.get(fs);
  if (!st.dirty || locked) return;
  st.dirty = false;
  st.inFlight = true;
  renderStatus();
  try {
    const response = await fetch(fs.dataset.url, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
      body: payload(fs),
      credentials: "same-origin",
      keepalive,
    });
    // An expired session answers with the login page (a redirect), not JSON: keep the answer and retry, since
    // signing in again in another tab makes the next try succeed.
    signedOut = response.redirected && new URL(response.url).pathname.includes("/login");
    const data = await response.json().catch(() => ({}));
    if (signedOut) throw new Error("signed out");
    if (response.ok && data.ok) {
      st.failures = 0;
      lastSavedAt = new Date(data.saved_at);
      if (data.server_now) offset = Date.parse(data.server_now) - Date.now();
    } else if (response.status === 409) {
      lockPage(data.message || "This attempt has ended.");
    } else if (response.status === 400) {
      // The server refused this answer (retrying would not help): say why, keep the page usable.
      st.failures = 0;
      st.error = data.message || "this answer was refused.";
    } else {
      throw new Error(`HTTP ${response.status}`);
    }
  } catch {
    // Network down or server busy: keep the answer and retry with backoff (2 s, 4 s, … 30 s).
    st.dirty = true;
    st.failures += 1;
    const delay = Math.min(MAX_RETRY_MS, 2000 * 2 ** (st.failures - 1));
    clearTimeout(st.timer);
    st.timer = setTimeout(() => save(fs), delay);
  } finally {
    st.inFlight = false;
    renderStatus();
  }
}

function flushAll() {
  return Promise.all(fieldsets.map((fs) => save(fs)));
}

form.addEventListener("input", (event) => {
  const fs = event.target.closest("fieldset[data-question]");
  if (fs && event.target.tagName === "TEXTAREA") schedule(fs, TEXT_DEBOUNCE_MS);
});
form.addEventListener("change", (event) => {
  const fs = event.target.closest("fieldset[data-question]");
  if (!fs) return;
  if (event.target.tagName === "TEXTAREA") {
    save(fs);
  } else {
    schedule(fs, CHOICE_DEBOUNCE_MS);
  }
});
form.addEventListener("focusout", (event) => {
  const fs = event.target.closest("fieldset[data-question]");
  if (fs && states.get(fs).dirty) save(fs);
});

// Leaving or reloading the page: send what is pending with keepalive, so it outlives the page.
function flushOnLeave() {
  for (const fs of fieldsets) {
    const st = states.get(fs);
    if (st.dirty && !st.inFlight) {
      clearTimeout(st.timer);
      send(fs, { keepalive: true });
    }
  }
}
window.addEventListener("pagehide", flushOnLeave);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") flushOnLeave();
});

// ---- Submit ------------------------------------------------------------------------------------------------
let opener = null;

function answeredCount() {
  return fieldsets.filter((fs) =>
    fs.dataset.kind === "short" ? fs.querySelector("textarea").value.trim() !== "" : fs.querySelector("input:checked"),
  ).length;
}

function openConfirm(button) {
  opener = button;
  flushAll();
  const answered = answeredCount();
  const total = fieldsets.length;
  const unanswered = total - answered;
  confirmSummary.textContent =
    `You have answered ${answered} of ${total} question${total === 1 ? "" : "s"}` +
    (unanswered ? `; ${unanswered} ${unanswered === 1 ? "is" : "are"} unanswered` : "") +
    ". Once you submit, you can't change your answers.";
  dialog.showModal();
  // Start on the safe choice; the dialog traps focus and Escape closes it.
  confirmCancel.focus();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (locked) return;
  if (event.submitter && event.submitter.value === "review") {
    openConfirm(event.submitter);
  } else {
    // "Save answers" (or Enter in a field): with autosave on, saving is a flush of whatever is pending.
    for (const fs of fieldsets) states.get(fs).dirty = true;
    flushAll();
  }
});
confirmCancel.addEventListener("click", () => dialog.close());
dialog.addEventListener("close", () => {
  if (opener && !locked) opener.focus();
});
confirmForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  document.getElementById("confirm-submit").disabled = true;
  await flushAll();
  HTMLFormElement.prototype.submit.call(confirmForm);
});

// ---- Time up -----------------------------------------------------------------------------------------------
function lockPage(message, { title = "This attempt has ended" } = {}) {
  if (locked) return;
  locked = true;
  for (const fs of fieldsets) fs.disabled = true;
  for (const button of form.querySelectorAll("button")) button.disabled = true;
  form.querySelector(".exam-actions").hidden = true;
  if (dialog.open) dialog.close();
  statusEl.textContent = "";
  delete statusEl.dataset.state;
  document.getElementById("time-up-title").textContent = title;
  timeUpText.textContent = message;
  timeUpPanel.hidden = false;
  timeUpPanel.focus();
}

async function timeUp() {
  if (locked) return;
  timerEl.textContent = clockText(0);
  // 1. Send what is pending: the server accepts answers for a few seconds' grace after the deadline.
  for (const fs of fieldsets) clearTimeout(states.get(fs).timer);
  await Promise.race([flushAll(), new Promise((resolve) => setTimeout(resolve, 4000))]);
  // 2. Submit; the server would expire the attempt anyway, this just makes the result immediate.
  let message = "Your answers saved before the deadline have been submitted.";
  try {
    const response = await fetch(form.dataset.submitUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken, Accept: "application/json" },
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
  } catch {
    message = "Your answers saved before the deadline count. Open your results to check the submission.";
  }
  // 3. Lock the page and say so, calmly, moving focus to the message.
  lockPage(message, { title: "Time is up" });
}

document.getElementById("save-hint").textContent = "Your answers save automatically as you work.";
renderStatus();
tick();
