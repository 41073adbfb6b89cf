// The workspace's own script: small, static (the Content-Security-Policy allows no inline script).
// The live list is htmx + its SSE extension (declared in the markup); js/live.js marks the connection.

// Keyboard: j/k move through the list, / searches, r replies, n writes an internal note, ? shows the keys.
// Never while typing in a field, and never with a modifier (browser and screen-reader keys stay theirs).
document.addEventListener("keydown", function (event) {
  var target = event.target;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
  var links = Array.prototype.slice.call(document.querySelectorAll("#ticket-rows tbody a"));
  var at = links.indexOf(document.activeElement);
  var body = document.getElementById("body");
  var handled = true;
  if (event.key === "j" && links.length) {
    links[Math.min(at + 1, links.length - 1)].focus();
  } else if (event.key === "k" && links.length) {
    links[Math.max(at - 1, 0)].focus();
  } else if (event.key === "/" && document.getElementById("f-text")) {
    document.getElementById("f-text").focus();
  } else if ((event.key === "r" || event.key === "n") && body) {
    var choice = document.querySelector("input[name=visibility][value=" + (event.key === "r" ? "public" : "internal") + "]");
    if (choice) choice.checked = true;
    body.focus();
  } else if (event.key === "?") {
    var help = document.getElementById("keys");
    if (help) { help.open = !help.open; if (help.open) help.querySelector("summary").focus(); }
  } else {
    handled = false;
  }
  if (handled) event.preventDefault();
});
