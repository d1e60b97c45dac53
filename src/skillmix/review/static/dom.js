// What both review pages share: building elements safely and calling the API.
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

  return { TOKEN, $, el, clear, api };
})();
