(function () {
  "use strict";
  // Everything a model wrote arrives here as JSON and goes on the page as text nodes.
  var data = JSON.parse(document.getElementById("math-data").textContent);
  var questions = data.questions;
  var PAGE = 300;
  var limit = PAGE;
  var selected = -1;
  var $ = SkillmixPage.$;
  var el = SkillmixPage.el;
  function cell(value, numeric) {
    var text = Array.isArray(value) ? value[0] : value;
    var attrs = {class: numeric ? "num" : null};
    if (Array.isArray(value) && value[1]) attrs.title = value[1];
    return el("td", attrs, text);
  }

  // --- tables with model text (Section.tables) ---------------------------------------
  var tables = document.querySelectorAll("table[data-table]");
  for (var t = 0; t < tables.length; t++) {
    var node = tables[t];
    var spec = data.tables[node.getAttribute("data-table")];
    if (!spec) continue;
    var head = el("tr");
    spec.columns.forEach(function (c) {
      head.appendChild(el("th", {class: c.numeric ? "num" : null}, c.header));
    });
    node.appendChild(el("thead", null, head));
    var body = el("tbody");
    if (!spec.rows.length) {
      body.appendChild(el("tr", null,
        el("td", {class: "empty", colspan: spec.columns.length}, spec.empty)));
    }
    spec.rows.forEach(function (row) {
      var tr = el("tr");
      row.forEach(function (value, i) { tr.appendChild(cell(value, spec.columns[i].numeric)); });
      body.appendChild(tr);
    });
    node.appendChild(body);
  }

  // --- the question browser ----------------------------------------------------------
  var categories = [];
  var tagNames = [];
  questions.forEach(function (q, index) {
    q.index = index;
    var parts = [q.id, q.category, q.question, q.answer];
    if (q.category && categories.indexOf(q.category) < 0) categories.push(q.category);
    q.tags.forEach(function (tag) {
      parts.push(tag.text);
      if (tagNames.indexOf(tag.text) < 0) tagNames.push(tag.text);
    });
    q.panels.forEach(function (p) {
      p.facts.forEach(function (f) { parts.push(f[1]); });
      p.texts.forEach(function (x) { parts.push(x[1]); });
    });
    q.concepts.forEach(function (c) { parts.push(c[0], c[1]); });
    q.search = parts.join("\n").toLowerCase();
  });
  tagNames.sort();
  categories.forEach(function (c) { $("filter-category").appendChild(el("option", {value: c}, c)); });
  tagNames.forEach(function (c) { $("filter-tag").appendChild(el("option", {value: c}, c)); });
  function hasTag(q, text) {
    return q.tags.some(function (tag) { return tag.text === text; });
  }
  function matching() {
    var category = $("filter-category").value, tag = $("filter-tag").value;
    var text = $("filter-text").value.trim().toLowerCase();
    return questions.filter(function (q) {
      if (category && q.category !== category) return false;
      if (tag && !hasTag(q, tag)) return false;
      if (text && q.search.indexOf(text) < 0) return false;
      return true;
    });
  }
  function badge(tag) { return el("span", {class: "badge " + (tag.tone || "none")}, tag.text); }
  function renderList() {
    var rows = matching();
    var body = $("questions-body");
    body.textContent = "";
    rows.slice(0, limit).forEach(function (q) {
      var tags = el("td", {class: "tags"});
      q.tags.forEach(function (tag) { tags.appendChild(badge(tag)); tags.appendChild(document.createTextNode(" ")); });
      var tr = el("tr", {
          class: "item-row" + (q.index === selected ? " selected" : ""),
          tabindex: "0", "data-index": q.index, "data-question": q.id},
        el("td", null,
          el("span", {class: "id"}, q.id + (q.category ? " · " + q.category : "")),
          el("span", {class: "question-text"}, q.question)),
        tags);
      tr.addEventListener("click", function () { select(q.index); });
      tr.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(q.index); }
      });
      body.appendChild(tr);
    });
    $("question-count").textContent = rows.length + " of " + questions.length + " questions" +
      (rows.length > limit ? " (showing " + limit + ")" : "");
    $("questions-more").hidden = rows.length <= limit;
  }
  function panel(p) {
    var block = el("div", {class: "panel"}, el("h4", null, p.title));
    if (p.facts.length) {
      var facts = el("dl", {class: "panel-facts"});
      p.facts.forEach(function (f) { facts.appendChild(el("dt", null, f[0])); facts.appendChild(el("dd", null, f[1])); });
      block.appendChild(facts);
    }
    p.texts.forEach(function (x) {
      block.appendChild(el("div", {class: "who"}, x[0]));
      block.appendChild(el("pre", {class: "text"}, x[1]));
    });
    return block;
  }
  function select(index) {
    selected = index;
    var q = questions[index];
    var prev = document.querySelectorAll("#questions-body tr.selected");
    for (var i = 0; i < prev.length; i++) prev[i].classList.remove("selected");
    var row = document.querySelector('#questions-body tr[data-index="' + index + '"]');
    if (row) row.classList.add("selected");
    var d = $("question-detail");
    d.textContent = "";
    d.setAttribute("data-question", q.id);
    d.appendChild(el("h3", null, q.id));
    var meta = el("div", {class: "meta"});
    if (q.category) meta.appendChild(el("span", {class: "badge none"}, q.category));
    q.tags.forEach(function (tag) { meta.appendChild(badge(tag)); });
    d.appendChild(meta);
    d.appendChild(el("h4", null, "Question"));
    d.appendChild(el("pre", {class: "text", id: "detail-question"}, q.question));
    d.appendChild(el("h4", null, "Gold answer"));
    d.appendChild(el("div", {class: "answer", id: "detail-answer"}, q.answer || "(none)"));
    if (q.solution) {
      d.appendChild(el("details", {class: "raw"}, el("summary", null, "reference solution"),
        el("pre", {class: "text"}, q.solution)));
    }
    d.appendChild(el("h4", null, "Human concepts"));
    if (q.concepts.length) {
      var list = el("ul", {class: "concepts", id: "detail-concepts"});
      q.concepts.forEach(function (c) {
        list.appendChild(el("li", {"data-concept": c[0]}, el("code", null, c[0]),
          c[1] ? " " + c[1] : null));
      });
      d.appendChild(list);
    } else {
      d.appendChild(el("p", {class: "muted"}, "none annotated"));
    }
    q.panels.forEach(function (p) { d.appendChild(panel(p)); });
    if (window.matchMedia("(max-width: 960px)").matches) d.scrollIntoView({block: "start"});
    else d.scrollTop = 0;
  }
  ["filter-category", "filter-tag"].forEach(function (id) {
    $(id).addEventListener("change", function () { limit = PAGE; renderList(); });
  });
  $("filter-text").addEventListener("input", function () { limit = PAGE; renderList(); });
  $("questions-more").addEventListener("click", function () { limit += PAGE; renderList(); });
  renderList();
})();
