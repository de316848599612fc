// A signed message back to the LMS: sent at once when it only returns the user there (deep linking); on a click,
// into a new tab, when this window must stay open as the proctoring window.
(function () {
  const form = document.getElementById("lms-form");
  if (!form) return;
  if (form.dataset.autoSubmit === "true") {
    form.submit();
    return;
  }
  form.addEventListener("submit", () => {
    if (form.dataset.then) setTimeout(() => window.location.assign(form.dataset.then), 300);
  });
})();
