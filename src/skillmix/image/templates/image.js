(function () {
  "use strict";
  // Everything a model wrote (prompts, the judge's replies) arrives here as JSON and goes
  // on the page as text nodes; images only as the data: URLs skillmix made of them.
  var data = JSON.parse(document.getElementById("image-data").textContent);
  var items = data.items;
  var PAGE = 200;
  var limit = PAGE;
  var selected = -1;
  var $ = SkillmixPage.$;
  var el = SkillmixPage.el;
  function badge(text, tone) { return el("span", {class: "badge " + (tone || "none")}, text); }
  function runLabel(item) { return data.runs[item.run].label; }

  // An image of the page's own JSON: only a data: URL of a raster image is ever used.
  function picture(item, cls) {
    var thumb = item.image ? data.images[item.image] : null;
    if (!thumb || !/^data:image\/(png|jpeg);base64,/.test(thumb.src)) {
      return el("span", {class: "no-image"}, item.image ? "no image file" : "no image");
    }
    return el("img", {src: thumb.src, width: thumb.width, height: thumb.height, class: cls,
      alt: "the image of sample " + item.id, "data-sha256": item.image});
  }
  function outcome(item) {
    if (!item.graded) return ["not graded", "warn"];
    if (item.full_marks === 1) return ["full marks", "good"];
    if (item.full_marks === 0) return ["missing a concept", "bad"];
    return ["unscored", "warn"];
  }
  function reviewed(item) {
    return item.concepts.some(function (c) { return c.human.length > 0; });
  }

  // --- filters ------------------------------------------------------------------------
  var ks = [], concepts = {};
  items.forEach(function (item, index) {
    item.index = index;
    if (ks.indexOf(item.k) < 0) ks.push(item.k);
    var parts = [item.id, item.object, item.prompt || ""];
    item.concepts.forEach(function (c) {
      concepts[c.id] = c.name;
      parts.push(c.name, c.category, c.question);
      c.rounds.forEach(function (r) { parts.push(r.raw); });
    });
    item.search = parts.join("\n").toLowerCase();
  });
  ks.sort(function (a, b) { return a - b; });
  ks.forEach(function (k) { $("filter-k").appendChild(el("option", {value: k}, "k = " + k)); });
  Object.keys(concepts).sort(function (a, b) {
    return concepts[a].localeCompare(concepts[b]);
  }).forEach(function (id) {
    $("filter-concept").appendChild(el("option", {value: id}, concepts[id]));
  });
  if ($("filter-run")) {
    data.runs.forEach(function (run, i) {
      $("filter-run").appendChild(el("option", {value: i}, run.label));
    });
  }
  function matching() {
    var run = $("filter-run") ? $("filter-run").value : "";
    var k = $("filter-k").value, which = $("filter-outcome").value;
    var concept = $("filter-concept").value;
    var text = $("filter-text").value.trim().toLowerCase();
    return items.filter(function (item) {
      if (run !== "" && String(item.run) !== run) return false;
      if (k !== "" && String(item.k) !== k) return false;
      if (which === "full" && item.full_marks !== 1) return false;
      if (which === "missed" && item.full_marks !== 0) return false;
      if (which === "unscored" && !(item.graded && item.full_marks === null)) return false;
      if (which === "ungraded" && item.graded) return false;
      if (which === "reviewed" && !reviewed(item)) return false;
      if (concept && !item.concepts.some(function (c) { return c.id === concept; })) return false;
      if (text && item.search.indexOf(text) < 0) return false;
      return true;
    });
  }

  // --- the list -----------------------------------------------------------------------
  function renderList() {
    var rows = matching();
    var body = $("images-body");
    body.textContent = "";
    rows.slice(0, limit).forEach(function (item) {
      var result = outcome(item);
      var judged = el("td", {class: "outcome"}, badge(result[0], result[1]));
      if (item.prompt_status && item.prompt_status !== "passed") {
        judged.appendChild(badge("prompt " + item.prompt_status, "warn"));
      }
      if (reviewed(item)) judged.appendChild(badge("person", "none"));
      var tr = el("tr", {
          class: "item-row" + (item.index === selected ? " selected" : ""),
          tabindex: "0", "data-index": item.index, "data-item": item.id},
        el("td", {class: "thumb"}, picture(item, "thumb")),
        el("td", null,
          el("span", {class: "id"}, item.id + " · k = " + item.k +
            (data.runs.length > 1 ? " · " + runLabel(item) : "")),
          el("span", {class: "prompt-text"}, item.prompt === null ? "(no prompt yet)" : item.prompt)),
        judged);
      tr.addEventListener("click", function () { select(item.index); });
      tr.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(item.index); }
      });
      body.appendChild(tr);
    });
    $("image-count").textContent = rows.length + " of " + items.length + " images" +
      (rows.length > limit ? " (showing " + limit + ")" : "");
    $("images-more").hidden = rows.length <= limit;
  }

  // --- the detail ---------------------------------------------------------------------
  function answerText(answer) { return answer === null ? "unparsed" : answer; }
  function decision(value) {
    if (value === 1) return badge("yes: present", "good");
    if (value === 0) return badge("no: absent", "bad");
    return badge("undecided", "warn");
  }
  function conceptBlock(c) {
    var block = el("div", {class: "concept", "data-concept": c.id},
      el("h4", null, c.name, badge(c.category, "none"), decision(c.decided)),
      el("div", {class: "question"}, "Question: ", el("q", null, c.question)),
      el("div", {class: "muted"}, "asked for as: ", c.phrase));
    if (c.rounds.length) {
      var body = el("tbody");
      c.rounds.forEach(function (r) {
        body.appendChild(el("tr", {"data-round": r.round},
          el("td", null, r.round + 1),
          el("td", {class: answerText(r.answer)}, answerText(r.answer)),
          el("td", {class: "raw"}, r.raw || r.reason || "(no reply)")));
      });
      block.appendChild(el("table", {class: "rounds"},
        el("thead", null, el("tr", null, el("th", null, "round"), el("th", null, "answer"),
          el("th", null, "the judge's reply"))), body));
      var v = c.votes;
      block.appendChild(el("div", {class: "muted"}, "votes: " + v.yes + " yes, " + v.no +
        " no, " + v.unparsed + " unparsed (a tie counts as no)"));
    } else {
      block.appendChild(el("p", {class: "muted"}, "not graded yet"));
    }
    if (c.human.length) {
      var people = el("div", {class: "people"}, "People: ");
      c.human.forEach(function (h, i) {
        if (i) people.appendChild(document.createTextNode(", "));
        people.appendChild(el("span", {class: h[1] ? "yes" : "no", "data-reviewer": h[0]},
          h[0] + ": " + (h[1] ? "yes" : "no")));
      });
      block.appendChild(people);
    }
    return block;
  }
  function select(index) {
    selected = index;
    var item = items[index];
    var prev = document.querySelectorAll("#images-body tr.selected");
    for (var i = 0; i < prev.length; i++) prev[i].classList.remove("selected");
    var row = document.querySelector('#images-body tr[data-index="' + index + '"]');
    if (row) row.classList.add("selected");
    var d = $("image-detail");
    d.textContent = "";
    d.setAttribute("data-item", item.id);
    d.appendChild(el("h3", null, item.id));
    var result = outcome(item);
    d.appendChild(el("div", {class: "meta"}, badge("k = " + item.k), badge(result[0], result[1]),
      data.runs.length > 1 ? badge(runLabel(item)) : null));
    var size = item.image_size && item.image_size[0] ?
      item.image_size[0] + " × " + item.image_size[1] + " px" : "";
    d.appendChild(el("figure", {class: "shown"}, picture(item, "shown"),
      el("figcaption", null, "thumbnail" + (size ? " of the " + size + " image" : ""))));
    var facts = el("dl", {class: "image-facts"});
    [["object", item.object], ["image", item.image ? item.image.slice(0, 16) + "…" : "none"],
     ["concept fraction", item.concept_fraction === null ? "—" : item.concept_fraction.toFixed(2)]]
      .forEach(function (f) { facts.appendChild(el("dt", null, f[0])); facts.appendChild(el("dd", null, f[1])); });
    d.appendChild(facts);
    d.appendChild(el("h4", null, "Prompt"));
    d.appendChild(el("pre", {class: "text answer", id: "detail-prompt"},
      item.prompt === null ? "(no prompt yet)" : item.prompt));
    if (item.attempts.length) {
      var check = el("details", {class: "raw"}, el("summary", null,
        "concept check: " + item.prompt_status + " (" + item.attempts.length + " attempt" +
        (item.attempts.length === 1 ? "" : "s") + ")"));
      item.attempts.forEach(function (a, i) {
        check.appendChild(el("div", {class: "attempt"},
          el("div", {class: "muted"}, "attempt " + (i + 1) + ": " + a.status +
            (a.missing.length ? "; missing " + a.missing.join(", ") : "") +
            (a.reason ? "; " + a.reason : "")),
          el("pre", {class: "text"}, a.prompt || "(no prompt in the reply)")));
      });
      d.appendChild(check);
    }
    d.appendChild(el("h4", null, "Concepts"));
    var list = el("div", {id: "detail-concepts"});
    item.concepts.forEach(function (c) { list.appendChild(conceptBlock(c)); });
    d.appendChild(list);
    if (window.matchMedia("(max-width: 960px)").matches) d.scrollIntoView({block: "start"});
    else d.scrollTop = 0;
  }

  ["filter-k", "filter-outcome", "filter-concept", "filter-run"].forEach(function (id) {
    if ($(id)) $(id).addEventListener("change", function () { limit = PAGE; renderList(); });
  });
  $("filter-text").addEventListener("input", function () { limit = PAGE; renderList(); });
  $("images-more").addEventListener("click", function () { limit += PAGE; renderList(); });
  renderList();
})();
