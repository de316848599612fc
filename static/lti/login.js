// LTI login: go on to the LMS's sign-in at once, unless this page sits in an iframe whose cookies the browser
// blocks (third-party cookies): then the launch would fail, so offer a new window instead.
(function () {
  const root = document.getElementById("lti-login");
  if (!root) return;
  let framed = false;
  try {
    framed = window.self !== window.top;
  } catch (err) {
    framed = true;
  }
  if (framed) {
    // A framed page's cookies are third-party cookies: over HTTPS they need SameSite=None; Secure to be kept.
    const attributes = window.location.protocol === "https:" ? "; SameSite=None; Secure" : "";
    document.cookie = "lti_cookie_check=1; path=/" + attributes;
    if (!document.cookie.includes("lti_cookie_check=1")) {
      document.getElementById("lti-login-status").textContent = "This page cannot sign you in inside your course.";
      document.getElementById("lti-continue").hidden = true;
      document.getElementById("lti-new-window").hidden = false;
      return;
    }
  }
  window.location.replace(root.dataset.redirect);
})();
