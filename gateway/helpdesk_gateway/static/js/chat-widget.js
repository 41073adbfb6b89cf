// The chat widget (portal/embed_chat.html): starts the platform's live chat through the REST API, as any
// client does, and follows it live. The chat token stays in this page's memory (sessionStorage too, so a
// reload keeps the chat); it is only ever sent in the X-Chat-Token header, never in an address. The live
// stream needs a short-lived stream ticket (EventSource cannot send headers); when the stream closes, a
// new ticket is asked and the stream reopened after the last entry seen, so nothing is lost or repeated.
// Everything shown is set as text (textContent), never as HTML.
(function () {
  var root = document.getElementById("chat-widget");
  if (!root) return;
  var texts = root.dataset;
  var log = document.getElementById("chat-log");
  var state = document.getElementById("chat-state");
  var problem = document.getElementById("chat-problem");
  var chat = null, lastSeq = 0, source = null, ended = false;

  function show(text) { problem.textContent = text; problem.hidden = !text; }

  function api(method, path, body) {
    var headers = { "Content-Type": "application/json" };
    if (chat) headers["X-Chat-Token"] = chat.token;
    return fetch("/api/v1/chats" + path, { method: method, headers: headers, credentials: "omit",
                                            body: body ? JSON.stringify(body) : undefined })
      .then(function (answer) {
        return answer.json().catch(function () { return {}; }).then(function (data) {
          if (!answer.ok) { var error = new Error(answer.status); error.status = answer.status; error.data = data; throw error; }
          return data;
        });
      });
  }

  // The support side's links (the satisfaction survey's, an article's) can be followed, as in the portal's
  // conversation; the customer's own text stays text. Links are made as elements, never parsed as HTML.
  var LINK = /https?:\/\/[^\s<>"]*[^\s<>".,;:!?)]/g;
  function write(parent, text, links) {
    var at = 0;
    if (links) {
      text.replace(LINK, function (url, offset) {
        parent.appendChild(document.createTextNode(text.slice(at, offset)));
        var anchor = document.createElement("a");
        anchor.href = url;
        anchor.textContent = url;
        anchor.target = "_blank";
        anchor.rel = "noopener nofollow";
        parent.appendChild(anchor);
        at = offset + url.length;
        return url;
      });
    }
    parent.appendChild(document.createTextNode(text.slice(at)));
  }

  function add(entry) {
    if (entry.seq <= lastSeq) return;
    lastSeq = entry.seq;
    var item = document.createElement("li");
    item.className = "chat-entry chat-" + entry.kind + " chat-by-" + entry.author_role;
    if (entry.kind === "message") {
      var who = document.createElement("strong");
      who.textContent = (entry.author_role === "customer" ? texts.you : texts.agent) + ": ";
      item.appendChild(who);
      write(item, entry.body || "", entry.author_role !== "customer");
    } else {
      item.textContent = entry.kind === "joined" ? texts.joined : texts.ended;
      state.textContent = item.textContent;
    }
    log.appendChild(item);
    if (entry.kind === "ended") finish();
  }

  function finish() {
    ended = true;
    if (source) source.close();
    document.getElementById("chat-send").hidden = true;
    sessionStorage.removeItem("helpdesk-chat");
  }

  function follow() {
    if (ended) return;
    api("POST", "/" + chat.id + "/stream-ticket").then(function (answer) {
      source = new EventSource("/api/v1/chats/" + chat.id + "/stream?ticket=" + encodeURIComponent(answer.ticket) +
                               "&after=" + lastSeq);
      source.addEventListener("open", function () { root.setAttribute("data-live", "open"); });
      ["message", "joined", "ended"].forEach(function (kind) {
        source.addEventListener(kind, function (event) { add(JSON.parse(event.data)); });
      });
      source.onerror = function () {  // closed (lifetime, network): a new ticket, resume after lastSeq
        source.close();
        root.setAttribute("data-live", "closed");
        if (!ended) setTimeout(follow, 1000);
      };
    }).catch(function (error) {
      if (error.status === 404) { finish(); return; }  // the chat is gone (or ended long ago)
      setTimeout(follow, 3000);
    });
  }

  function begin(started) {
    chat = started;
    sessionStorage.setItem("helpdesk-chat", JSON.stringify(chat));
    document.getElementById("chat-start").hidden = true;
    document.getElementById("chat-live").hidden = false;
    state.textContent = texts.waiting;
    follow();
  }

  document.getElementById("chat-start").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    show("");
    api("POST", "", { name: form.name.value, email: form.email.value, message: form.message.value,
                      language: texts.language })
      .then(function (answer) { begin({ id: answer.chat.id, token: answer.token }); })
      .catch(function (error) {
        var message = error.data && error.data.error && error.data.error.message;
        show(error.status === 429 ? texts.busy : (error.status === 422 && message) ? message : texts.failed);
      });
  });

  document.getElementById("chat-send").addEventListener("submit", function (event) {
    event.preventDefault();
    var box = document.getElementById("chat-message");
    var body = box.value.trim();
    if (!body) return;
    show("");
    api("POST", "/" + chat.id + "/messages", { body: body })
      .then(function () { box.value = ""; })  // shown when the stream brings it, in its place
      .catch(function (error) { if (error.status === 409) finish(); else show(texts.failed); });
  });

  document.getElementById("chat-leave").addEventListener("click", function () {
    // the stream brings the "ended" entry (shown like the others) and then closes: finish() runs then
    document.getElementById("chat-send").hidden = true;
    api("POST", "/" + chat.id + "/leave").catch(function () { finish(); });
  });

  var kept = sessionStorage.getItem("helpdesk-chat");
  if (kept) { try { begin(JSON.parse(kept)); } catch (ignored) { sessionStorage.removeItem("helpdesk-chat"); } }
})();
