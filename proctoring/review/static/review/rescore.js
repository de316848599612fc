// Re-scoring page: after a preview, move focus to it, so keyboard and screen-reader users land on the result.
const preview = document.getElementById("preview");
if (preview) {
  preview.scrollIntoView({ block: "start" });
  preview.focus({ preventScroll: true });
}
