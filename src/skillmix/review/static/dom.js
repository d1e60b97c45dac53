// What the review pages share: building elements safely, calling the API, the status
// line, help, messages, shortcut lists and the reviewer's name dialog.
// Every string a page shows goes through el(), which makes it a text node, never markup.
"use strict";

window.SkillmixReview = (() => {
  const TOKEN = new URLSearchParams(window.location.search).get("token");

  const $ = (id) => document.getElementById(id);

  // Create an element; strings among the children become text nodes, never markup.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "className") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  // A JSON call to the review server, with the page's token; the server's error otherwise.
  async function api(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (TOKEN) headers["X-Review-Token"] = TOKEN;
    const response = await fetch(path, { ...options, headers, cache: "no-store" });
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) {
      throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
    }
    return body;
  }

  // The status line under the page's buttons.
  function setStatus(text, kind = "") {
    const status = $("status");
    status.textContent = text;
    status.className = `status ${kind}`;
  }

  // The keyboard help: shown, hidden, or toggled (no argument).
  function toggleHelp(show) {
    $("help").hidden = show === undefined ? !$("help").hidden : !show;
  }

  // A message in place of the panel `panel` (nothing left to review, an error).
  function showMessage(panel, title, detail) {
    $(panel).hidden = true;
    const box = clear($("message"));
    box.append(el("h2", { text: title }), el("p", { text: detail }));
    box.hidden = false;
  }

  // The shortcut lists (side panel and help): [keys, what] pairs; "a / b" are two ways,
  // "1 – 9" a range, and every other space-separated part its own key.
  function renderShortcuts(shortcuts) {
    for (const id of ["keys-side", "keys-help"]) {
      clear($(id)).append(...shortcuts.flatMap(([keys, what]) => [
        el("dt", {}, ...keys.split(" / ").flatMap((part, i) => [
          i ? " / " : null, ...part.split(" ").map((p) => (p === "–" ? " – " : el("kbd", { text: p }))),
        ])),
        el("dd", { text: what }),
      ]));
    }
  }

  // The reviewer's name dialog, filled with the current name.
  function askName(current) {
    $("name-input").value = current;
    $("name-dialog").hidden = false;
    $("name-input").focus();
  }

  return { TOKEN, $, el, clear, api, setStatus, toggleHelp, showMessage, renderShortcuts, askName };
})();
