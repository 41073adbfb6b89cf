// Inside an embedded helpdesk page: tell the embedding page how tall the content is (js/embed.js sizes
// the frame with it). Only a number is sent, so any parent may receive it.
(function () {
  if (window.parent === window) return;
  function report() {
    window.parent.postMessage({ helpdesk: "height", height: document.documentElement.scrollHeight }, "*");
  }
  window.addEventListener("load", report);
  if (window.ResizeObserver) new ResizeObserver(report).observe(document.body);
})();
