// The ticket page's own script (no inline script: the Content-Security-Policy forbids it).
// "Insert link" buttons put an article's title and address into the reply, where the cursor is.
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("[data-insert]");
  var body = document.getElementById("body");
  if (!button || !body) return;
  var text = button.getAttribute("data-insert");
  var start = body.selectionStart || 0, end = body.selectionEnd || 0;
  var before = body.value.slice(0, start), after = body.value.slice(end);
  var spacer = before && !/\s$/.test(before) ? "\n" : "";
  body.value = before + spacer + text + after;
  body.focus();
  body.selectionStart = body.selectionEnd = (before + spacer + text).length;
});

// Collision warning: when the agent starts typing in the reply, the page says so (one request; the others'
// live streams push it to them), and again when five quiet seconds end it.
(function () {
  var quiet;
  document.addEventListener("input", function (event) {
    if (event.target.id !== "body") return;
    var typing = document.getElementById("typing"), presence = document.getElementById("presence");
    if (!typing) return;
    if (typing.value !== "1") {
      typing.value = "1";
      if (window.htmx && presence) window.htmx.trigger(presence, "typing");
    }
    clearTimeout(quiet);
    quiet = setTimeout(function () {
      typing.value = "0";
      if (window.htmx && presence) window.htmx.trigger(presence, "typing");
    }, 5000);
  });
})();
