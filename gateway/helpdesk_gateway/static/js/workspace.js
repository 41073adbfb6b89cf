// The workspace's own script: small, static (the Content-Security-Policy allows no inline script).
// The live list is htmx + its SSE extension (declared in the markup); this only tells screen-reader and
// sighted users when the live connection is up, so a stale list is never mistaken for a live one.
document.addEventListener("htmx:sseOpen", function (event) {
  document.body.classList.add("live");
  event.target.setAttribute("data-live", "open");
});
document.addEventListener("htmx:sseError", function (event) {
  document.body.classList.remove("live");
  event.target.setAttribute("data-live", "error");
});
