// The operators' chat console: waiting and open chats, live over a WebSocket; answer
// and close. Everything a visitor wrote is shown as text, never as markup.
(function () {
  "use strict";
  var root = document.getElementById("chat-console");
  if (!root) { return; }
  var T = JSON.parse(root.getAttribute("data-texts") || "{}");
  var chats = {};
  var selected = null;
  var ws = null;
  var list = root.querySelector(".console-list");
  var pane = root.querySelector(".console-pane");
  var state = root.querySelector(".console-state");

  function t(key) { return T[key] || key; }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }

  function send(message) {
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify(message)); }
  }

  function connect() {
    var url = location.origin.replace(/^http/, "ws") + "/chat/console/ws";
    ws = new WebSocket(url);
    ws.onopen = function () { state.textContent = ""; };
    ws.onmessage = function (event) {
      var m;
      try { m = JSON.parse(event.data); } catch (e) { return; }
      receive(m);
    };
    ws.onclose = function () {
      state.textContent = t("chat.console.connection_lost");
      setTimeout(connect, 3000);
    };
  }

  function receive(m) {
    if (m.t === "live") {
      var known = {};
      m.conversations.forEach(function (c) {
        known[c.id] = true;
        upsert(c);
      });
      Object.keys(chats).forEach(function (id) { if (!known[id]) { delete chats[id]; } });
      if (selected && chats[selected]) { send({ t: "open", conversation: selected }); }
      render();
    } else if (m.t === "conversation") {
      upsert(m);
      render();
    } else if (m.t === "gone") {
      delete chats[m.conversation];
      if (selected === m.conversation) { selected = null; }
      render();
    } else if (m.t === "message") {
      var chat = chats[m.conversation];
      if (!chat) { return; }
      if (chat.messages) {
        if (!chat.messages.some(function (x) { return x.id === m.id; })) { chat.messages.push(m); }
      }
      if (selected !== m.conversation && m.from === "visitor") { chat.unread = true; }
      render();
    } else if (m.t === "history") {
      if (chats[m.conversation]) { chats[m.conversation].messages = m.messages; }
      render();
    } else if (m.t === "error") {
      state.textContent = m.text;
    }
  }

  function upsert(c) {
    var chat = chats[c.id] || { messages: null, unread: true };
    chat.info = c;
    chats[c.id] = chat;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function label(c) { return c.name || c.email || t("chat.visitor"); }

  function render() {
    clear(list);
    ["waiting", "open"].forEach(function (status) {
      var ids = Object.keys(chats).filter(function (id) { return chats[id].info.status === status; });
      list.appendChild(el("h2", null, t("chat.console." + status) + " (" + ids.length + ")"));
      var ul = el("ul");
      ids.forEach(function (id) {
        var c = chats[id].info;
        var li = el("li");
        var b = el("button", "console-chat" + (id === selected ? " selected" : ""), label(c) + " · " + c.started);
        b.type = "button";
        b.setAttribute("data-id", id);
        if (id === selected) { b.setAttribute("aria-current", "true"); }
        if (chats[id].unread) { b.appendChild(el("span", "badge wait", "●")); }
        b.onclick = function () { choose(id); };
        li.appendChild(b);
        ul.appendChild(li);
      });
      if (!ids.length) { ul.appendChild(el("li", "muted", t("chat.console.none"))); }
      list.appendChild(ul);
    });
    renderPane();
  }

  function choose(id) {
    selected = id;
    chats[id].unread = false;
    if (!chats[id].messages) { send({ t: "open", conversation: id }); }
    render();
    var text = pane.querySelector("textarea");
    if (text) { text.focus(); }
  }

  function renderPane() {
    var typed = pane.querySelector("textarea");
    var draft = typed ? typed.value : "";
    clear(pane);
    var chat = selected && chats[selected];
    if (!chat) {
      pane.appendChild(el("p", "muted", t("chat.console.choose")));
      return;
    }
    var c = chat.info;
    pane.appendChild(el("h2", null, label(c)));
    var facts = el("dl", "facts");
    [["contact.company", c.company], ["field.email", c.email], ["field.phone", c.phone], ["chat.page", c.page]].forEach(function (pair) {
      if (!pair[1]) { return; }
      facts.appendChild(el("dt", null, t(pair[0])));
      facts.appendChild(el("dd", "console-" + pair[0].split(".").pop(), pair[1]));
    });
    pane.appendChild(facts);
    var log = el("ol", "console-log");
    log.setAttribute("aria-live", "polite");
    (chat.messages || []).forEach(function (m) {
      var li = el("li", m.from === "visitor" ? "from-visitor" : "from-operator");
      li.appendChild(el("span", "who", (m.from === "visitor" ? label(c) : m.name) + " · " + m.at));
      li.appendChild(el("span", "text", m.text));
      log.appendChild(li);
    });
    pane.appendChild(log);
    var form = el("form", "stack console-answer");
    var l = el("label", null, t("chat.console.answer"));
    l.htmlFor = "console-text";
    var text = el("textarea");
    text.id = "console-text";
    text.rows = 3;
    text.maxLength = 2000;
    text.value = draft;
    text.onkeydown = function (event) {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
    };
    var button = el("button", "primary", t("chat.console.send"));
    button.type = "submit";
    form.appendChild(l);
    form.appendChild(text);
    form.appendChild(button);
    form.onsubmit = function (event) {
      event.preventDefault();
      if (text.value.trim()) { send({ t: "say", conversation: selected, text: text.value }); text.value = ""; }
    };
    pane.appendChild(form);
    var close = el("button", "danger", t("chat.console.close"));
    close.type = "button";
    close.onclick = function () { send({ t: "close", conversation: selected }); };
    pane.appendChild(close);
    log.scrollTop = log.scrollHeight;
    if (typed && document.activeElement === document.body) { text.focus(); }
  }

  render();
  connect();
}());
