// The website chat. Any page carries it with one tag:
//   <script src="https://register.example/static/chat.js" defer></script>
// It adds a chat button (or, in an element with id "btb-chat", the chat itself), talks
// to the register over a WebSocket, and keeps the token of an open chat in the cookie
// "btb_chat" on this site, so a reload or the next page continues the conversation.
// Everything a person wrote is shown as text, never as markup.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.btbChatLoaded) { return; }
  window.btbChatLoaded = true;
  var base = new URL(script.src, location.href).origin;
  var COOKIE = "btb_chat";
  var lang = (script.getAttribute("data-lang") || document.documentElement.lang || "").slice(0, 2).toLowerCase();
  var T = {};
  var privacy = base + "/privacy";
  var ws = null;
  var online = false;
  var view = "form";
  var conversation = null;
  var retry = null;
  var panel, body, launcher;

  function t(key) { return T[key] || ""; }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = text; }
    return e;
  }

  function token() {
    var found = document.cookie.split(";").map(function (c) { return c.trim(); })
      .filter(function (c) { return c.indexOf(COOKIE + "=") === 0; })[0];
    return found ? found.slice(COOKIE.length + 1) : null;
  }

  function keep(value) {
    var secure = location.protocol === "https:" ? "; Secure" : "";
    document.cookie = COOKIE + "=" + value + "; path=/; max-age=86400; SameSite=Lax" + secure;
  }

  function forget() {
    document.cookie = COOKIE + "=; path=/; max-age=0; SameSite=Lax";
  }

  function send(message) {
    if (ws && ws.readyState === 1) { ws.send(JSON.stringify(message)); }
  }

  function connect() {
    if (ws && ws.readyState <= 1) { return; }
    var url = base.replace(/^http/, "ws") + "/chat/ws" + (lang ? "?lang=" + encodeURIComponent(lang) : "");
    ws = new WebSocket(url);
    ws.onopen = function () { send({ t: "hello", token: token(), page: location.href }); };
    ws.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      receive(message);
    };
    ws.onclose = function () {
      ws = null;
      if (!retry) {
        if (view === "chat") { status(t("chat.widget.connection_lost")); }
        retry = setTimeout(function () { retry = null; connect(); }, 3000);
      }
    };
  }

  function status(text) {
    var line = panel && panel.querySelector(".btbchat-status");
    if (line) { line.textContent = text; }
  }

  function receive(m) {
    if (m.t === "state") {
      T = m.texts || T;
      privacy = m.privacy || privacy;
      online = !!m.online;
      if (launcher) { launcher.textContent = t("chat.widget.open"); }
      if (panel) {
        panel.setAttribute("aria-label", t("chat.widget.title"));
        panel.querySelector("h2").textContent = t("chat.widget.title");
        var hide = panel.querySelector(".btbchat-hide");
        if (hide) { hide.setAttribute("aria-label", t("chat.widget.hide")); }
      }
      if (m.conversation && m.conversation.messages) {
        keep(token());
        conversation = m.conversation;
        showChat();
        m.conversation.messages.forEach(append);
      } else {
        if (m.conversation && m.conversation.gone) { forget(); }
        if (view === "chat") { showClosed(); } else if (view === "form") { showForm(); }
      }
    } else if (m.t === "started") {
      keep(m.token);
      conversation = { status: "waiting", messages: [] };
      showChat();
    } else if (m.t === "message") {
      append(m);
    } else if (m.t === "closed") {
      forget();
      showClosed();
    } else if (m.t === "online") {
      online = !!m.online;
      if (view === "form") { showForm(); }
    } else if (m.t === "left") {
      view = "left";
      clear();
      body.appendChild(el("p", "btbchat-note", t("chat.widget.left")));
    } else if (m.t === "busy") {
      online = false;
      showForm();
      status(m.text);
    } else if (m.t === "error") {
      showErrors(m);
    }
  }

  function clear() { while (body.firstChild) { body.removeChild(body.firstChild); } }

  function note() {
    var p = el("p", "btbchat-privacy", t("chat.widget.privacy") + " ");
    var a = el("a", null, t("chat.widget.privacy_link"));
    a.href = privacy;
    a.target = "_blank";
    a.rel = "noopener";
    p.appendChild(a);
    return p;
  }

  function field(form, name, label, type, required) {
    var id = "btbchat-" + name;
    var l = el("label", null, label + (required ? " *" : " " + t("chat.widget.optional")));
    l.htmlFor = id;
    var input = type === "textarea" ? el("textarea") : el("input");
    if (type !== "textarea") { input.type = type; }
    input.id = id;
    input.name = name;
    if (required) { input.required = true; }
    form.appendChild(l);
    form.appendChild(input);
    var error = el("p", "btbchat-error");
    error.id = id + "-error";
    error.hidden = true;
    form.appendChild(error);
    return input;
  }

  function showErrors(m) {
    if (m.text) { status(m.text); }
    var fields = m.fields || {};
    Array.prototype.forEach.call(body.querySelectorAll(".btbchat-error"), function (p) { p.hidden = true; });
    Object.keys(fields).forEach(function (name) {
      var input = body.querySelector("#btbchat-" + name);
      var error = body.querySelector("#btbchat-" + name + "-error");
      if (input && error) {
        error.textContent = fields[name];
        error.hidden = false;
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", error.id);
      }
    });
  }

  function showForm() {
    // What the visitor typed stays when the form changes (an operator came online).
    var typed = {};
    Array.prototype.forEach.call(body.querySelectorAll(".btbchat-form [name]"), function (input) {
      typed[input.name] = input.value;
    });
    view = "form";
    clear();
    var intro = el("p", "btbchat-note", online ? t("chat.widget.intro") : t("chat.widget.offline"));
    body.appendChild(intro);
    var form = el("form", "btbchat-form");
    form.noValidate = true;
    var text = field(form, "text", t("chat.widget.message"), "textarea", true);
    var email = field(form, "email", t("chat.widget.email"), "email", !online);
    var name = field(form, "name", t("chat.widget.name"), "text", false);
    var company = field(form, "company", t("chat.widget.company"), "text", false);
    var phone = field(form, "phone", t("chat.widget.phone"), "tel", false);
    var trap = el("input", "btbchat-hp");
    trap.name = "website";
    trap.tabIndex = -1;
    trap.autocomplete = "off";
    trap.setAttribute("aria-hidden", "true");
    form.appendChild(trap);
    form.appendChild(note());
    form.appendChild(el("p", "btbchat-status"));
    var button = el("button", "btbchat-primary", online ? t("chat.widget.start") : t("chat.widget.leave"));
    button.type = "submit";
    form.appendChild(button);
    Array.prototype.forEach.call(form.querySelectorAll("[name]"), function (input) {
      if (typed[input.name]) { input.value = typed[input.name]; }
    });
    form.onsubmit = function (event) {
      event.preventDefault();
      var details = { name: name.value, company: company.value, email: email.value, phone: phone.value, text: text.value };
      if (online) {
        details.t = "start";
        details.page = location.href;
      } else {
        details.t = "leave";
        details.website = trap.value;
      }
      send(details);
    };
    body.appendChild(form);
  }

  function showChat() {
    view = "chat";
    clear();
    var log = el("ol", "btbchat-log");
    log.setAttribute("aria-live", "polite");
    body.appendChild(log);
    var waiting = el("p", "btbchat-status", conversation && conversation.status === "waiting" ? t("chat.widget.waiting") : "");
    body.appendChild(waiting);
    var form = el("form", "btbchat-say");
    var label = el("label", "btbchat-hidden", t("chat.widget.message"));
    label.htmlFor = "btbchat-text";
    var text = el("textarea");
    text.id = "btbchat-text";
    text.rows = 2;
    text.maxLength = 2000;
    text.onkeydown = function (event) {
      if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
    };
    var button = el("button", "btbchat-primary", t("chat.widget.send"));
    button.type = "submit";
    form.appendChild(label);
    form.appendChild(text);
    form.appendChild(button);
    form.onsubmit = function (event) {
      event.preventDefault();
      if (text.value.trim()) { send({ t: "say", text: text.value }); text.value = ""; }
    };
    body.appendChild(form);
    var end = el("button", "btbchat-end", t("chat.widget.end"));
    end.type = "button";
    end.onclick = function () { send({ t: "close" }); };
    body.appendChild(end);
    body.appendChild(note());
  }

  function append(m) {
    var log = body.querySelector(".btbchat-log");
    if (!log || log.querySelector("[data-id='" + Number(m.id) + "']")) { return; }
    if (m.from === "operator") { status(""); }
    var item = el("li", "btbchat-" + (m.from === "operator" ? "them" : "me"));
    item.setAttribute("data-id", String(Number(m.id)));
    var who = m.from === "operator" ? (m.name || t("chat.widget.title")) : t("chat.widget.you");
    item.appendChild(el("span", "btbchat-who", who + " · " + m.at));
    item.appendChild(el("span", "btbchat-text", m.text));
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  function showClosed() {
    view = "closed";
    conversation = null;
    clear();
    body.appendChild(el("p", "btbchat-note", t("chat.widget.closed")));
    var again = el("button", "btbchat-primary", t("chat.widget.new"));
    again.type = "button";
    again.onclick = showForm;
    body.appendChild(again);
  }

  function build(inline, host) {
    var css = el("link");
    css.rel = "stylesheet";
    css.href = base + "/static/chat.css";
    document.head.appendChild(css);
    panel = el("section", "btbchat-panel" + (inline ? " btbchat-inline" : ""));
    panel.setAttribute("role", "region");
    var head = el("div", "btbchat-head");
    head.appendChild(el("h2", null, ""));
    panel.appendChild(head);
    body = el("div", "btbchat-body");
    body.appendChild(el("p", "btbchat-status"));
    panel.appendChild(body);
    if (inline) {
      host.appendChild(panel);
      connect();
      return;
    }
    panel.hidden = true;
    panel.id = "btbchat-panel";
    var hide = el("button", "btbchat-hide", "×");
    hide.type = "button";
    hide.onclick = function () { panel.hidden = true; launcher.setAttribute("aria-expanded", "false"); launcher.focus(); };
    head.appendChild(hide);
    launcher = el("button", "btbchat-launcher", "…");
    launcher.type = "button";
    launcher.setAttribute("aria-controls", panel.id);
    launcher.setAttribute("aria-expanded", "false");
    launcher.onclick = function () {
      panel.hidden = !panel.hidden;
      launcher.setAttribute("aria-expanded", String(!panel.hidden));
      if (!panel.hidden) {
        connect();
        var first = panel.querySelector("textarea, input");
        if (first) { first.focus(); }
      }
    };
    var wrap = el("div", "btbchat");
    wrap.appendChild(panel);
    wrap.appendChild(launcher);
    document.body.appendChild(wrap);
    // Connected at once: the button speaks the visitor's language, and an open chat
    // continues on the next page.
    if (token()) { panel.hidden = false; launcher.setAttribute("aria-expanded", "true"); }
    connect();
  }

  function start() {
    var host = document.getElementById("btb-chat");
    build(!!host, host);
    window.addEventListener("hashchange", function () { send({ t: "page", url: location.href }); });
    window.addEventListener("popstate", function () { send({ t: "page", url: location.href }); });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
