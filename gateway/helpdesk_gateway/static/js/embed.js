// The helpdesk's loader for other sites: put
//   <script src="https://help.example.org/static/js/embed.js" data-helpdesk="request" async></script>
// (or data-helpdesk="chat") where the request form or the chat widget should appear. It adds a frame of
// the helpdesk's own page (which the helpdesk allows only on the sites in HELPDESK_EMBED_ORIGINS) and
// sizes it to its content, from the height that page posts. Nothing else crosses between the two pages.
(function () {
  var script = document.currentScript;
  if (!script) return;
  var kind = script.getAttribute("data-helpdesk") === "chat" ? "chat" : "request";
  var origin = new URL(script.src).origin;
  var frame = document.createElement("iframe");
  frame.src = origin + "/help/embed/" + kind;
  frame.title = script.getAttribute("data-title") || (kind === "chat" ? "Chat" : "Help request");
  frame.setAttribute("loading", "lazy");
  frame.style.width = "100%";
  frame.style.border = "0";
  frame.style.minHeight = kind === "chat" ? "28rem" : "36rem";
  script.parentNode.insertBefore(frame, script.nextSibling);
  window.addEventListener("message", function (event) {
    if (event.origin !== origin || event.source !== frame.contentWindow) return;
    var data = event.data || {};
    if (data.helpdesk === "height" && typeof data.height === "number" && data.height > 0 && data.height < 20000) {
      frame.style.height = Math.ceil(data.height) + "px";
    }
  });
})();
