// Skill-Mix review: the page's whole behaviour. No framework, no external resources.
// Every piece of model or catalog text reaches the document through textContent (see el()),
// never as HTML.
"use strict";

(() => {
  const NAME_KEY = "skillmix.review.reviewer";
  const CRITERIA = ["skills", "topic", "sense", "length", "all"];
  const SHORTCUTS = [
    ["1 – 9", "select criterion row"],
    ["↑ ↓ / k j", "previous / next row"],
    ["y", "met (1), then next row"],
    ["n", "not met (0), then next row"],
    ["Space", "toggle the selected row"],
    ["a", "mark all criteria met"],
    ["x", "mark all criteria not met"],
    ["c", "clear the selected row"],
    ["Enter", "submit and go to the next"],
    ["s", "skip this generation"],
    ["r", "bring skipped generations back"],
    ["?", "show / hide this help"],
  ];

  const state = {
    reviewer: "",
    run: null,
    queue: [],
    queueInfo: null,
    skipped: new Set(),
    entry: null,
    item: null,
    verdicts: {},
    selected: 0,
    partialWarned: false,
    busy: false,
  };

  const shared = window.SkillmixReview;
  const { $, el, clear, api, setStatus, toggleHelp } = shared;
  const showMessage = (title, detail) => shared.showMessage("item", title, detail);
  const renderShortcuts = () => shared.renderShortcuts(SHORTCUTS);
  const askName = () => shared.askName(state.reviewer);

  const key = (entry) => `${entry.item_id}#${entry.gen_round}`;
  const shortJudge = (judge) => judge.split("@")[0];
  const pct = (x) => (x === null || x === undefined ? "—" : `${Math.round(x * 100)}%`);
  const fixed = (x) => (x === null || x === undefined ? "—" : x.toFixed(2));

  // --- reviewer -----------------------------------------------------------------------------

  function setReviewer(name) {
    state.reviewer = name;
    window.localStorage.setItem(NAME_KEY, name);
    $("reviewer-name").textContent = name;
    $("name-input").blur(); // keys go to the shortcuts again
    $("name-dialog").hidden = true;
    state.skipped.clear();
    loadQueue().catch(fail);
  }

  // --- queue and items ----------------------------------------------------------------------

  async function loadQueue() {
    const limit = String(Math.min(1000, 100 + state.skipped.size));
    const q = new URLSearchParams({ reviewer: state.reviewer, limit });
    const data = await api(`api/queue?${q}`);
    state.queueInfo = data;
    state.queue = data.entries.filter((e) => !state.skipped.has(key(e)));
    renderProgress();
    await showNext();
  }

  async function showNext() {
    const entry = state.queue[0];
    if (!entry) {
      state.entry = null;
      state.item = null;
      if (state.skipped.size) {
        showMessage("Only skipped generations are left",
          `You skipped ${state.skipped.size}. Press r to bring them back.`);
      } else {
        showMessage("All done — thank you!",
          "Every generation of this run has your verdict. The agreement table is final for you.");
      }
      return;
    }
    const q = new URLSearchParams({
      item_id: entry.item_id, gen_round: String(entry.gen_round), reviewer: state.reviewer,
    });
    const item = await api(`api/item?${q}`);
    state.entry = entry;
    state.item = item;
    state.verdicts = { ...(item.human || {}) };
    state.selected = 0;
    state.partialWarned = false;
    renderItem();
    setStatus("");
  }

  function renderProgress() {
    const info = state.queueInfo;
    if (!info) return;
    clear($("progress")).append(
      el("strong", { text: info.remaining }), " left · ",
      el("strong", { text: info.reviewed }), ` of ${info.total} done by you`,
    );
  }

  function renderItem() {
    const { item, entry } = state;
    $("message").hidden = true;
    $("item").hidden = false;
    $("item-k").textContent = `k = ${item.k}`;
    $("item-round").textContent = `generation ${item.gen_round + 1}`;
    $("item-id").textContent = item.item_id;
    $("topic").textContent = item.topic;

    clear($("skills")).append(...item.skills.map((s) => el("li", {},
      el("div", { className: "skill-head" },
        el("strong", { text: s.name }), el("span", { className: "category", text: s.category })),
      el("div", { className: "definition", text: s.definition }),
      s.example ? el("div", { className: "example" }, el("span", { text: "e.g. " }), s.example) : null,
    )));

    clear($("why")).append(...entry.reasons.map((r) => el("li", { text: r })));

    $("answer").textContent = item.answer;
    const plural = item.sentences === 1 ? "" : "s";
    $("answer-meta").textContent = `${item.sentences} sentence${plural} (counted in code)`;
    // named: skill id -> the words in the answer that name it
    const named = item.skills.filter((s) => s.id in (item.named || {}))
      .map((s) => `${s.name} (“${item.named[s.id]}”)`);
    $("named").hidden = named.length === 0;
    $("named").textContent = named.length
      ? `The answer names ${named.join(", ")}: the naming penalty gives ${named.length > 1 ? "these skills" : "this skill"} 0 in the run's scores.`
      : "";

    renderTurns();
    renderCriteria();
  }

  function renderTurns() {
    const { item } = state;
    const box = clear($("turns"));
    item.turns.forEach((turn, i) => {
      box.append(
        el("h3", { text: `Turn ${i + 1}: prompt` }), el("pre", { text: turn.prompt }),
        el("h3", { text: `Turn ${i + 1}: reply` }), el("pre", { text: turn.reply }),
      );
    });
    for (const judge of item.judges) {
      for (const round of judge.rounds) {
        const title = `${shortJudge(judge.judge)} · grading round ${round.round + 1} · ${round.status}`;
        box.append(el("h3", { text: title }),
          el("pre", { text: round.raw.join("\n---\n") || round.reason || "(no reply stored)" }));
      }
    }
  }

  function judgeCell(judge, criterion) {
    const decided = judge.decided ? judge.decided[criterion.id] : undefined;
    const mark = decided === undefined
      ? el("span", { className: "verdict none", text: "–", title: "unscored" })
      : el("span", {
        className: `verdict ${decided ? "met" : "not"}`,
        text: decided ? "✓ met" : "✗ not met",
      });
    const votes = judge.rounds
      .filter((r) => r.verdicts && criterion.id in r.verdicts)
      .map((r) => String(r.verdicts[criterion.id]));
    const unparsed = judge.rounds.filter((r) => r.status !== "parsed").length;
    let note = "";
    if (!criterion.judged) note = "computed in code";
    else if (judge.penalized.includes(criterion.id.replace(/^skill:/, ""))) note = "named → 0";
    else if (votes.length > 1) note = `rounds ${votes.join(" ")}`;
    if (criterion.judged && unparsed) note += `${note ? " · " : ""}${unparsed} unparsed`;
    return el("td", { className: "judge" }, mark, note ? el("small", { text: note }) : null);
  }

  function renderCriteria() {
    const { item } = state;
    clear($("criteria-head")).append(
      el("th", { text: "#" }), el("th", { text: "Criterion" }),
      ...item.judges.map((j) => el("th", { text: shortJudge(j.judge), title: j.judge })),
      el("th", { text: "You" }),
    );
    const body = clear($("criteria-body"));
    item.criteria.forEach((criterion, index) => {
      const value = state.verdicts[criterion.id];
      const toggle = (v, label) => el("button", {
        type: "button",
        tabindex: "-1",
        className: `toggle ${v ? "yes" : "no"}${value === v ? " on" : ""}`,
        "aria-pressed": value === v ? "true" : "false",
        title: v ? "met (y)" : "not met (n)",
        onmousedown: (event) => event.preventDefault(),
        onclick: () => { select(index); setVerdict(v, false); },
      }, label);
      body.append(el("tr", {
        className: `${index === state.selected ? "selected" : ""}${value === undefined ? "" : " done"}`,
        dataset: { criterion: criterion.id },
        onclick: () => select(index),
      },
      el("td", { className: "num", text: index < 9 ? index + 1 : "" }),
      el("td", { className: "label" }, el("span", { text: criterion.label }),
        el("small", { className: "kind", text: criterion.kind })),
      ...item.judges.map((j) => judgeCell(j, criterion)),
      el("td", { className: "human" }, toggle(1, "1 met"), toggle(0, "0 not")),
      ));
    });
  }

  function select(index) {
    if (!state.item) return;
    const n = state.item.criteria.length;
    state.selected = Math.max(0, Math.min(n - 1, index));
    renderCriteria();
  }

  function setVerdict(value, advance = true) {
    if (!state.item) return;
    const criterion = state.item.criteria[state.selected];
    if (value === null) delete state.verdicts[criterion.id];
    else state.verdicts[criterion.id] = value;
    state.partialWarned = false;
    if (advance && state.selected < state.item.criteria.length - 1) state.selected += 1;
    renderCriteria();
  }

  function setAll(value) {
    if (!state.item) return;
    for (const c of state.item.criteria) state.verdicts[c.id] = value;
    state.partialWarned = false;
    renderCriteria();
  }

  async function submit() {
    if (!state.item || state.busy) return;
    const missing = state.item.criteria.filter((c) => !(c.id in state.verdicts));
    if (missing.length === state.item.criteria.length) {
      setStatus("Set at least one criterion first (y / n, or a for all met).", "warn");
      return;
    }
    if (missing.length && !state.partialWarned) {
      state.partialWarned = true;
      setStatus(`${missing.length} criteria not set — press Enter again to submit the rest.`, "warn");
      return;
    }
    state.busy = true;
    try {
      const result = await api("api/verdicts", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          reviewer: state.reviewer,
          item_id: state.item.item_id,
          gen_round: state.item.gen_round,
          verdicts: state.verdicts,
        }),
      });
      renderAgreement(result.agreement);
      await loadQueue();
      setStatus(`Saved ${result.saved} verdicts on the previous generation.`, "ok");
    } catch (err) {
      fail(err);
    } finally {
      state.busy = false;
    }
  }

  function skip() {
    if (!state.entry) return;
    state.skipped.add(key(state.entry));
    state.queue.shift();
    (state.queue.length ? showNext() : loadQueue()).catch(fail);
  }

  function revisitSkipped() {
    if (!state.skipped.size) return;
    state.skipped.clear();
    loadQueue().catch(fail);
  }

  // --- agreement panel ----------------------------------------------------------------------

  async function loadAgreement() {
    renderAgreement(await api("api/agreement"));
  }

  function renderAgreement(data) {
    const box = clear($("agreement"));
    const reviewers = data.reviewers.length;
    box.append(el("p", { className: "summary", id: "agreement-summary" },
      el("strong", { text: data.reviewed_generations }),
      ` generation${data.reviewed_generations === 1 ? "" : "s"} checked by `,
      el("strong", { text: reviewers }), ` reviewer${reviewers === 1 ? "" : "s"}`));
    if (!data.rows.length) {
      box.append(el("p", { className: "empty", text: "No human verdicts yet: grade one to see how the judges compare." }));
    }
    const judges = [...new Set([...data.judges, ...data.rows.map((r) => r.judge)])];
    for (const judge of judges) {
      const rows = Object.fromEntries(
        data.rows.filter((r) => r.judge === judge).map((r) => [r.criterion, r]));
      const all = rows.all;
      box.append(el("div", { className: "judge-agreement", dataset: { judge } },
        el("div", { className: "judge-name", text: shortJudge(judge), title: judge }),
        el("div", { className: "headline" },
          el("span", {
            className: `big${all ? "" : " none"}`, dataset: { criterion: "all" }, text: pct(all && all.agreement),
          }),
          el("span", { className: "sub", text: all ? `agree · κ ${fixed(all.kappa)} · ${all.units} units` : "no units yet" })),
        el("table", { className: "mini" },
          el("tbody", {}, ...CRITERIA.filter((c) => c !== "all").map((c) => {
            const row = rows[c];
            const bar = el("span", { className: "fill" });
            bar.style.width = row ? `${Math.round(row.agreement * 100)}%` : "0";
            return el("tr", { dataset: { criterion: c } },
              el("th", { text: c }),
              el("td", { className: "bar" }, el("span", { className: "track" }, bar)),
              el("td", { className: "value", text: row ? pct(row.agreement) : "—" }),
              el("td", { className: "kappa", text: row ? `κ ${fixed(row.kappa)}` : "" }),
              el("td", { className: "units", text: row ? `n ${row.units}` : "" }));
          })))));
    }
  }

  // --- keyboard -----------------------------------------------------------------------------

  function onKey(event) {
    if (!$("name-dialog").hidden) return; // typing a name
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return;
    const k = event.key;
    if (!$("help").hidden) {
      if (k === "?" || k === "Escape") { toggleHelp(false); event.preventDefault(); }
      return;
    }
    const handled = () => event.preventDefault();
    if (/^[1-9]$/.test(k)) { select(Number(k) - 1); return handled(); }
    switch (k) {
      case "ArrowDown": case "j": select(state.selected + 1); return handled();
      case "ArrowUp": case "k": select(state.selected - 1); return handled();
      case "y": case "Y": setVerdict(1); return handled();
      case "n": case "N": setVerdict(0); return handled();
      case " ": {
        if (!state.item) return handled();
        const current = state.verdicts[state.item.criteria[state.selected].id];
        setVerdict(current === 1 ? 0 : 1, false);
        return handled();
      }
      case "a": case "A": setAll(1); return handled();
      case "x": case "X": setAll(0); return handled();
      case "c": case "Backspace": case "Delete": setVerdict(null, false); return handled();
      case "Enter": submit(); return handled();
      case "s": case "S": skip(); return handled();
      case "r": case "R": revisitSkipped(); return handled();
      case "?": toggleHelp(); return handled();
      case "Escape": state.partialWarned = false; setStatus(""); return handled();
      default: return undefined;
    }
  }

  // --- start --------------------------------------------------------------------------------

  function fail(err) {
    setStatus(String(err.message || err), "error");
    if (!state.item) showMessage("Something went wrong", String(err.message || err));
  }

  async function start() {
    renderShortcuts();
    document.addEventListener("keydown", onKey);
    $("submit").addEventListener("click", () => submit());
    $("skip").addEventListener("click", () => skip());
    $("reviewer-button").addEventListener("click", askName);
    $("name-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const name = $("name-input").value.trim();
      if (name) setReviewer(name);
    });

    try {
      state.run = await api("api/run");
      clear($("run-info")).append(
        el("code", { text: state.run.run_id }), " · student ",
        el("strong", { text: shortJudge(state.run.student), title: state.run.student }),
        ` · ${state.run.generations} generations`);
      await loadAgreement();
    } catch (err) {
      showMessage("Cannot reach the review server", String(err.message || err));
      return;
    }
    const saved = window.localStorage.getItem(NAME_KEY);
    if (saved && saved.trim()) setReviewer(saved.trim());
    else askName();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
