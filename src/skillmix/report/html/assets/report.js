(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var items = data.items;
  items.forEach(function (rec) {  // skills are written once, in data.skills
    rec.skills = rec.skills.map(function (key) { return data.skills[key]; });
  });
  var PAGE = 300;
  var limit = PAGE;
  var selected = -1;
  var $ = SkillmixPage.$;
  var el = SkillmixPage.el;
  function fmt(x) { return x === null || x === undefined ? "—" : Number(x).toFixed(2); }
  function scoresOf(rec, judge) {
    for (var i = 0; i < rec.judges.length; i++) {
      if (rec.judges[i].judge === judge) return rec.judges[i];
    }
    return null;
  }
  function skillName(rec, id) {
    var found = rec.skills.filter(function (s) { return s.id === id; })[0];
    return found ? found.name : id;
  }
  function namedSkills(rec) {
    var named = rec.named || {};
    if (Array.isArray(named)) return named.map(function (id) { return skillName(rec, id); });
    return Object.keys(named).map(function (id) {
      return skillName(rec, id) + " (as “" + named[id] + "”)";
    });
  }
  function chip(s) {
    if (!s || !s.rounds.length) {
      return el("span", {class: "badge none", title: "the run stopped before grading it"},
        "not graded yet");
    }
    if (!s.scores) {
      return el("span", {class: "badge none", title: "no grading round parsed"}, "unscored");
    }
    if (s.scores.full_marks === 1) return el("span", {class: "badge good"}, "full marks");
    if (s.scores.all_skills === 1) return el("span", {class: "badge warn"}, "all skills");
    return el("span", {class: "badge bad"}, "skill fraction " + fmt(s.scores.skill_fraction));
  }
  function failed(rec, judge) {
    var list = judge ? [scoresOf(rec, judge)] : rec.judges;
    return list.some(function (j) {  // an answer not graded yet has not failed
      return j && j.rounds.length && (!j.scores || j.scores.full_marks !== 1);
    });
  }
  items.forEach(function (rec, index) {
    rec.index = index;
    var parts = [rec.item_id, rec.topic, rec.model, rec.answer];
    rec.skills.forEach(function (s) { parts.push(s.name, s.category); });
    rec.turns.forEach(function (t) { parts.push(t.reply); });
    rec.search = parts.join("\n").toLowerCase();
  });
  function matching() {
    var run = $("filter-run").value, k = $("filter-k").value, judge = $("filter-judge").value;
    var text = $("filter-text").value.trim().toLowerCase();
    var onlyFailures = $("filter-failures").checked;
    return items.filter(function (rec) {
      if (run && rec.run !== run) return false;
      if (k && String(rec.k) !== k) return false;
      if (judge && !scoresOf(rec, judge)) return false;
      if (text && rec.search.indexOf(text) < 0) return false;
      if (onlyFailures && !failed(rec, judge)) return false;
      return true;
    });
  }
  function renderList() {
    var judge = $("filter-judge").value;
    var rows = matching();
    var body = $("items-body");
    body.textContent = "";
    rows.slice(0, limit).forEach(function (rec) {
      var verdicts = el("td", {class: "verdict"});
      rec.judges.forEach(function (j) {
        if (judge && j.judge !== judge) return;
        var c = chip(j);
        if (rec.judges.length > 1 && !judge) c.setAttribute("title", j.judge);
        verdicts.appendChild(c);
        verdicts.appendChild(document.createTextNode(" "));
      });
      var tr = el("tr", {
          class: "item-row" + (rec.index === selected ? " selected" : ""),
          tabindex: "0", "data-index": rec.index, "data-run": rec.run, "data-item": rec.item_id,
          "data-k": rec.k, "data-round": rec.gen_round,
          "data-failed": failed(rec, judge) ? "1" : "0"},
        el("td", {class: "model-cell"}, rec.model,
          el("span", {class: "sub"}, "k = " + rec.k + " · round " + (rec.gen_round + 1))),
        el("td", null, rec.topic,
          el("span", {class: "skills"},
            rec.skills.map(function (s) { return s.name; }).join(" · ")),
          el("span", {class: "id"}, rec.item_id)),
        verdicts);
      tr.addEventListener("click", function () { select(rec.index); });
      tr.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(rec.index); }
      });
      body.appendChild(tr);
    });
    $("item-count").textContent = rows.length + " of " + items.length + " generations" +
      (rows.length > limit ? " (showing " + limit + ")" : "");
    $("items-more").hidden = rows.length <= limit;
  }
  function verdictCell(value) {
    if (value === 1) return el("td", {class: "yes", title: "met"}, "✓ 1");
    if (value === 0) return el("td", {class: "no", title: "not met"}, "✗ 0");
    if (typeof value === "number") return el("td", {title: "partly met"}, "◐ " + value);
    return el("td", {class: "muted"}, "—");
  }
  function judgeBlock(rec, j) {
    var block = el("div", {class: "judge-block", "data-judge": j.judge});
    block.appendChild(el("h4", null, "Judge " + j.judge));
    var head = el("tr", null, el("th", null, "criterion"));
    j.rounds.forEach(function (r) { head.appendChild(el("th", null, "round " + (r.round + 1))); });
    head.appendChild(el("th", null, "decided"));
    var body = el("tbody");
    rec.criteria.forEach(function (c) {
      var tr = el("tr", {"data-criterion": c.id}, el("td", null, c.label));
      j.rounds.forEach(function (r) {
        if (!c.judged) {
          tr.appendChild(el("td", {class: "muted", title: "computed in code"}, "code"));
        }
        else if (!r.verdicts) tr.appendChild(el("td", {class: "unparsed"}, "unparsed"));
        else tr.appendChild(verdictCell(r.verdicts[c.id]));
      });
      tr.appendChild(verdictCell(j.decided ? j.decided[c.id] : null));
      body.appendChild(tr);
    });
    block.appendChild(el("div", {class: "table-wrap"},
      el("table", {class: "verdicts"}, el("thead", null, head), body)));
    var s = j.scores;
    block.appendChild(el("p", {class: "scores"},
      s ? ("full marks " + fmt(s.full_marks) + " · all skills " + fmt(s.all_skills) +
           " · skill fraction " + fmt(s.skill_fraction))
        : j.rounds.length ? "unscored: no grading round could be parsed"
        : "not graded yet: the run stopped before grading this answer; re-run its " +
          "command to grade it"));
    if (j.penalized && j.penalized.length) {
      var removed = j.penalized.map(function (id) { return skillName(rec, id); });
      block.appendChild(el("p", {class: "penalty"},
        el("span", {class: "badge bad"}, "naming penalty removed: " + removed.join(", "))));
    }
    j.rounds.forEach(function (r) {
      var summary = "round " + (r.round + 1) + ": " + r.status + " via " + r.method +
        (r.reason ? " — " + r.reason : "");
      var d = el("details", {class: "raw"}, el("summary", null, summary));
      (r.raw || []).forEach(function (text) { d.appendChild(el("pre", {class: "text"}, text)); });
      block.appendChild(d);
    });
    return block;
  }
  function select(index) {
    selected = index;
    var rec = items[index];
    var prev = document.querySelectorAll("tr.item-row.selected");
    for (var i = 0; i < prev.length; i++) prev[i].classList.remove("selected");
    var row = document.querySelector('tr.item-row[data-index="' + index + '"]');
    if (row) row.classList.add("selected");
    var d = $("item-detail");
    d.textContent = "";
    d.setAttribute("data-index", index);
    d.setAttribute("data-item", rec.item_id);
    d.setAttribute("data-run", rec.run);
    d.appendChild(el("h3", null, rec.model + " · " + rec.topic));
    d.appendChild(el("div", {class: "meta"},
      el("span", {class: "badge none"}, "item " + rec.item_id),
      el("span", {class: "badge none"}, "k = " + rec.k),
      el("span", {class: "badge none"}, "generation round " + (rec.gen_round + 1)),
      el("span", {class: "badge none"}, rec.sentences + " sentence(s)"),
      namedSkills(rec).length
        ? el("span", {class: "badge bad named"}, "names " + namedSkills(rec).join(", "))
        : null));
    d.appendChild(el("h4", null, "Skills"));
    var list = el("ul", {class: "skill-list"});
    rec.skills.forEach(function (s) {
      list.appendChild(el("li", {"data-skill": s.id},
        el("strong", null, s.name), " ", el("span", {class: "badge none"}, s.category),
        el("p", {class: "def"}, s.definition),
        el("p", {class: "example"}, "Example: " + s.example)));
    });
    d.appendChild(list);
    d.appendChild(el("h4", null, "Conversation"));
    rec.turns.forEach(function (t, i) {
      var turn = el("div", {class: "turn", "data-turn": i + 1});
      turn.appendChild(el("details", {class: "prompt"},
        el("summary", null, "turn " + (i + 1) + " prompt"), el("pre", {class: "text"}, t.prompt)));
      turn.appendChild(el("div", {class: "who"}, "turn " + (i + 1) + " reply"));
      turn.appendChild(el("pre", {class: "text reply"}, t.reply));
      d.appendChild(turn);
    });
    d.appendChild(el("h4", null, "Extracted answer (graded)"));
    d.appendChild(el("div", {class: "answer", id: "detail-answer"}, rec.answer || "(empty)"));
    rec.judges.forEach(function (j) { d.appendChild(judgeBlock(rec, j)); });
    if (window.matchMedia("(max-width: 960px)").matches) d.scrollIntoView({block: "start"});
    else d.scrollTop = 0;
  }
  ["filter-run", "filter-k", "filter-judge", "filter-failures"].forEach(function (id) {
    $(id).addEventListener("change", function () { limit = PAGE; renderList(); });
  });
  $("filter-text").addEventListener("input", function () { limit = PAGE; renderList(); });
  $("items-more").addEventListener("click", function () { limit += PAGE; renderList(); });
  renderList();
})();
