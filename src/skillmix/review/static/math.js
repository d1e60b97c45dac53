// Skill-Mix review of generated math questions: accept, edit or reject each survivor.
// No framework, no external resources. Every piece of model or catalog text reaches the
// document through textContent or a form field's value (see el()), never as HTML.
"use strict";

(() => {
  const NAME_KEY = "skillmix.review.reviewer"; // shared with the grading page
  const SHORTCUTS = [
    ["a", "accept the question as it is"],
    ["e", "edit question, solution or answer"],
    ["Ctrl+Enter", "save the edit"],
    ["Esc", "cancel the edit"],
    ["r", "reject the question"],
    ["s", "skip it for now"],
    ["u", "bring skipped questions back"],
    ["?", "show / hide this help"],
  ];
  const DONE = { accept: "accepted", edit: "edited", reject: "rejected" };

  const state = {
    reviewer: "",
    run: null,
    queue: [],
    queueInfo: null,
    skipped: new Set(),
    candidate: null,
    editing: false,
    busy: false,
  };

  const shared = window.SkillmixReview;
  const { $, el, clear, api, setStatus, toggleHelp } = shared;
  const showMessage = (title, detail) => shared.showMessage("candidate", title, detail);
  const renderShortcuts = () => shared.renderShortcuts(SHORTCUTS);
  const askName = () => shared.askName(state.reviewer);

  // --- reviewer -----------------------------------------------------------------------------

  function setReviewer(name) {
    state.reviewer = name;
    window.localStorage.setItem(NAME_KEY, name);
    $("reviewer-name").textContent = name;
    $("name-input").blur();
    $("name-dialog").hidden = true;
    state.skipped.clear();
    loadQueue().catch(fail);
  }

  // --- queue and candidates -----------------------------------------------------------------

  async function loadQueue() {
    const limit = String(Math.min(1000, 100 + state.skipped.size));
    const q = new URLSearchParams({ reviewer: state.reviewer, limit });
    const data = await api(`api/queue?${q}`);
    state.queueInfo = data;
    state.queue = data.entries.filter((e) => !state.skipped.has(e.id));
    renderProgress();
    await showNext();
  }

  async function showNext() {
    stopEditing();
    const entry = state.queue[0];
    if (!entry) {
      state.candidate = null;
      if (state.skipped.size) {
        showMessage("Only skipped questions are left",
          `You skipped ${state.skipped.size}. Press u to bring them back.`);
      } else if (state.queueInfo && state.queueInfo.total === 0) {
        showMessage("Nothing to review",
          "No generated question of this run survived the automatic filters.");
      } else {
        showMessage("All done — thank you!",
          "Every surviving question of this run has your decision. Export the accepted ones with skillmix math export.");
      }
      return;
    }
    const q = new URLSearchParams({ id: entry.id, reviewer: state.reviewer });
    state.candidate = await api(`api/candidate?${q}`);
    state.entry = entry;
    $("note").value = "";
    renderCandidate();
    setStatus("");
  }

  function renderProgress() {
    const info = state.queueInfo;
    if (!info) return;
    clear($("progress")).append(
      el("strong", { text: info.remaining }), " left · ",
      el("strong", { text: info.reviewed }), ` of ${info.total} decided by you`,
    );
  }

  function notes(c, entry) {
    const out = [];
    const critique = c.filters.find((f) => f.name === "critique");
    if (critique && critique.outcome === "undecided") {
      out.push("The teacher's critique could not be read: check yourself that the question is valid, solvable and needs both skills.");
    }
    if (c.refinements) out.push(`Rewritten ${c.refinements} time${c.refinements === 1 ? "" : "s"} after its critique.`);
    const resolve = c.filters.find((f) => f.name === "resolve");
    if (resolve && resolve.detail) out.push(resolve.detail[0].toUpperCase() + resolve.detail.slice(1) + ".");
    const others = (entry.decided_by || []).filter((name) => name !== state.reviewer);
    if (others.length) out.push(`Already decided by ${others.join(", ")}; the latest decision counts.`);
    return out;
  }

  function renderCandidate() {
    const c = state.candidate;
    $("message").hidden = true;
    $("candidate").hidden = false;
    $("candidate-position").textContent = `pair ${c.position + 1} of ${state.run ? state.run.pairs : "?"}`;
    $("candidate-rewrites").textContent = c.refinements ? `rewritten ${c.refinements}×` : "first draft";
    $("candidate-id").textContent = c.id;

    clear($("skills")).append(...c.skills.map((s) => el("li", {},
      el("div", { className: "skill-head" }, el("strong", { text: s.name })),
      s.definition ? el("div", { className: "definition", text: s.definition }) : null,
      s.example ? el("div", { className: "example" }, el("span", { text: "e.g. " }), s.example) : null,
    )));
    clear($("why")).append(...notes(c, state.entry).map((text) => el("li", { text })));

    $("question").textContent = c.question;
    $("solution").textContent = c.solution || "(no solution)";
    const answer = $("final-answer");
    answer.textContent = c.answer || "no final answer";
    answer.className = `final${c.answer ? "" : " missing"}`;

    clear($("filters-body")).append(...c.filters.map((f) => el("tr", { dataset: { filter: f.name } },
      el("td", { text: f.name }),
      el("td", { className: `outcome ${f.outcome}`, text: f.outcome }),
      el("td", { text: [f.meaning, f.detail].filter(Boolean).join(": ") || "—" }),
    )));
    const turns = clear($("turns"));
    for (const turn of c.turns) {
      const title = `${turn.stage}${turn.round ? ` (rewrite ${turn.round})` : ""}`;
      turns.append(el("h3", { text: `${title}: prompt` }), el("pre", { text: turn.prompt }),
        el("h3", { text: `${title}: reply` }), el("pre", { text: turn.reply }));
    }
    for (const r of c.resolves) {
      turns.append(el("h3", { text: `independent solve ${r.sample + 1} by ${r.model}: ${r.agrees ? "agrees" : "disagrees"}` }),
        el("pre", { text: r.extracted === null ? `no final answer (${r.reason})` : `answered ${r.extracted}${r.reason ? ` (${r.reason})` : ""}` }));
    }
  }

  // --- deciding -----------------------------------------------------------------------------

  function startEditing() {
    if (!state.candidate || state.busy) return;
    state.editing = true;
    $("edit-question").value = state.candidate.question;
    $("edit-solution").value = state.candidate.solution;
    $("edit-answer").value = state.candidate.answer;
    $("edit-form").hidden = false;
    $("edit-question").focus();
    setStatus("Editing: Ctrl+Enter saves, Esc cancels.");
  }

  function stopEditing() {
    state.editing = false;
    $("edit-form").hidden = true;
    if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
  }

  async function decide(decision) {
    if (!state.candidate || state.busy) return;
    const body = {
      reviewer: state.reviewer,
      candidate_id: state.candidate.id,
      decision,
      note: $("note").value.trim(),
    };
    if (decision === "edit") {
      body.question = $("edit-question").value;
      body.solution = $("edit-solution").value;
      body.answer = $("edit-answer").value;
    }
    state.busy = true;
    try {
      const result = await api("api/decision", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      renderSummary(result.summary);
      const changed = result.saved.changed.length ? ` (changed: ${result.saved.changed.join(", ")})` : "";
      await loadQueue();
      setStatus(`Saved: ${DONE[decision]} ${result.saved.candidate_id}${changed}.`, "ok");
    } catch (err) {
      fail(err);
    } finally {
      state.busy = false;
    }
  }

  function skip() {
    if (!state.candidate) return;
    state.skipped.add(state.candidate.id);
    state.queue.shift();
    (state.queue.length ? showNext() : loadQueue()).catch(fail);
  }

  function revisitSkipped() {
    if (!state.skipped.size) return;
    state.skipped.clear();
    loadQueue().catch(fail);
  }

  // --- the side panel -----------------------------------------------------------------------

  function renderSummary(data) {
    const box = clear($("summary"));
    for (const warning of (state.run && state.run.warnings) || []) {
      box.append(el("p", { className: "warning", text: warning }));
    }
    const counts = [
      ["survived the filters", data.survivors], ["decided", data.decided],
      ["accepted", data.accepted], ["edited", data.edited], ["rejected", data.rejected],
    ];
    box.append(el("dl", { className: "counts", id: "summary-counts" },
      ...counts.flatMap(([label, n]) => [el("dt", { text: label }), el("dd", { dataset: { count: label }, text: n })])));
    const reviewers = Object.entries(data.reviewers || {});
    if (reviewers.length) {
      box.append(el("table", { id: "reviewers" },
        el("thead", {}, el("tr", {}, el("th", { text: "reviewer" }), el("th", { text: "acc." }),
          el("th", { text: "edit" }), el("th", { text: "rej." }))),
        el("tbody", {}, ...reviewers.map(([name, c]) => el("tr", {},
          el("th", { text: name }), el("td", { text: c.accept }), el("td", { text: c.edit }),
          el("td", { text: c.reject }))))));
    }
  }

  // --- keyboard -----------------------------------------------------------------------------

  function onKey(event) {
    if (!$("name-dialog").hidden) return; // typing a name
    const k = event.key;
    const target = event.target;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
    if (typing) {
      if (state.editing && k === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        decide("edit");
      } else if (k === "Escape") {
        event.preventDefault();
        if (state.editing) { stopEditing(); setStatus("Edit cancelled."); } else target.blur();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (!$("help").hidden) {
      if (k === "?" || k === "Escape") { toggleHelp(false); event.preventDefault(); }
      return;
    }
    const handled = () => event.preventDefault();
    switch (k) {
      case "a": case "A": decide("accept"); return handled();
      case "e": case "E": startEditing(); return handled();
      case "r": case "R": decide("reject"); return handled();
      case "s": case "S": skip(); return handled();
      case "u": case "U": revisitSkipped(); return handled();
      case "?": toggleHelp(); return handled();
      case "Escape": if (state.editing) stopEditing(); setStatus(""); return handled();
      default: return undefined;
    }
  }

  // --- start --------------------------------------------------------------------------------

  function fail(err) {
    setStatus(String(err.message || err), "error");
    if (!state.candidate) showMessage("Something went wrong", String(err.message || err));
  }

  async function start() {
    renderShortcuts();
    document.addEventListener("keydown", onKey);
    $("accept").addEventListener("click", () => decide("accept"));
    $("edit").addEventListener("click", () => startEditing());
    $("reject").addEventListener("click", () => decide("reject"));
    $("skip").addEventListener("click", () => skip());
    $("save-edit").addEventListener("click", () => decide("edit"));
    $("cancel-edit").addEventListener("click", () => { stopEditing(); setStatus("Edit cancelled."); });
    $("reviewer-button").addEventListener("click", askName);
    $("name-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const name = $("name-input").value.trim();
      if (name) setReviewer(name);
    });

    try {
      state.run = await api("api/run");
      clear($("run-info")).append(
        el("code", { text: state.run.run_id }), " · teacher ",
        el("strong", { text: state.run.teacher.split("@")[0], title: state.run.teacher }),
        ` · ${state.run.pairs} pairs, ${state.run.survivors} survived the filters`);
      renderSummary(state.run);
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
