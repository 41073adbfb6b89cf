// Live pages (the workspace's list and ticket, the portal's open request) are htmx + its SSE extension,
// declared in the markup; this only marks when the live connection is up, so a stale page is never
// mistaken for a live one (and tests wait on [data-live=open] rather than on time).
document.addEventListener("htmx:sseOpen", function (event) {
  document.body.classList.add("live");
  event.target.setAttribute("data-live", "open");
});
document.addEventListener("htmx:sseError", function (event) {
  document.body.classList.remove("live");
  event.target.setAttribute("data-live", "error");
});
