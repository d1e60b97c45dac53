// Skill-Mix review of an image run: a person answers the judge's yes/no questions about
// a sample of the images, without seeing the judge's answers. No framework, no external
// resources. Every piece of model or catalog text reaches the document through
// textContent (see el()), never as HTML; the image only as the data: URL the API gives.
"use strict";

(() => {
  const NAME_KEY = "skillmix.review.reviewer"; // shared with the other pages
  const SHORTCUTS = [
    ["1 – 9", "select question row"],
    ["↑ ↓ / k j", "previous / next row"],
    ["y", "yes, it is there (then next row)"],
    ["n", "no, it is not (then next row)"],
    ["Space", "toggle the selected row"],
    ["c", "clear the selected row"],
    ["Enter", "submit and go to the next image"],
    ["s", "skip this image"],
    ["u", "back to the image you answered last"],
    ["r", "bring skipped images back"],
    ["?", "show / hide this help"],
  ];

  const state = {
    reviewer: "",
    run: null,
    queue: [],
    queueInfo: null,
    skipped: new Set(),
    history: [], // item ids answered in this session, latest last
    item: null,
    answers: {},
    selected: 0,
    busy: false,
  };

  const shared = window.SkillmixReview;
  const { $, el, clear, api, setStatus, toggleHelp } = shared;
  const showMessage = (title, detail) => shared.showMessage("item", title, detail);
  const renderShortcuts = () => shared.renderShortcuts(SHORTCUTS);
  const askName = () => shared.askName(state.reviewer);

  const pct = (x) => (x === null || x === undefined ? "—" : `${Math.round(x * 100)}%`);
  const fixed = (x) => (x === null || x === undefined ? "—" : x.toFixed(2));

  // --- reviewer -----------------------------------------------------------------------------

  function setReviewer(name) {
    state.reviewer = name;
    window.localStorage.setItem(NAME_KEY, name);
    $("reviewer-name").textContent = name;
    $("name-input").blur();
    $("name-dialog").hidden = true;
    state.skipped.clear();
    state.history = [];
    loadQueue().catch(fail);
  }

  // --- queue and images ---------------------------------------------------------------------

  async function loadQueue() {
    const limit = String(Math.min(1000, 100 + state.skipped.size));
    const q = new URLSearchParams({ reviewer: state.reviewer, limit });
    const data = await api(`api/queue?${q}`);
    state.queueInfo = data;
    state.queue = data.entries.filter((e) => !state.skipped.has(e.item_id));
    renderProgress();
    await showNext();
  }

  async function showNext() {
    const entry = state.queue[0];
    if (!entry) {
      state.item = null;
      if (state.skipped.size) {
        showMessage("Only skipped images are left",
          `You skipped ${state.skipped.size}. Press r to bring them back.`);
      } else {
        showMessage("All done — thank you!",
          "Every image of this run has your answers. Press u to change the last ones.");
      }
      return;
    }
    await show(entry.item_id, false);
  }

  async function show(itemId, again) {
    const q = new URLSearchParams({ item_id: itemId, reviewer: state.reviewer });
    const item = await api(`api/item?${q}`);
    state.item = item;
    state.answers = { ...(item.human || {}) };
    state.selected = 0;
    renderItem(again);
    setStatus("");
    const image = await api(`api/image?${new URLSearchParams({ item_id: itemId })}`);
    if (state.item && state.item.item_id === itemId) {
      if (!/^data:image\/(png|jpeg|webp|gif);base64,/.test(image.data_url)) {
        throw new Error(`the image of ${itemId} is not a picture the page can show`);
      }
      $("image").src = image.data_url;
    }
  }

  function renderProgress() {
    const info = state.queueInfo;
    if (!info) return;
    clear($("progress")).append(
      el("strong", { text: info.remaining }), " left · ",
      el("strong", { text: info.reviewed }), ` of ${info.total} answered by you`,
    );
  }

  function renderItem(again) {
    const { item } = state;
    $("message").hidden = true;
    $("item").hidden = false;
    $("item-k").textContent = `k = ${item.k}`;
    $("item-again").hidden = !again;
    $("item-id").textContent = item.item_id;
    const img = $("image");
    img.removeAttribute("src");
    img.alt = `the image of sample ${item.item_id}`;
    const size = item.image.width ? ` · ${item.image.width} × ${item.image.height} px` : "";
    $("image-caption").textContent = `sample ${item.position + 1}${size}`;
    $("prompt").textContent = item.prompt || "(no prompt stored)";
    renderQuestions();
  }

  function renderQuestions() {
    const { item } = state;
    const body = clear($("questions-body"));
    item.concepts.forEach((concept, index) => {
      const value = state.answers[concept.id];
      const toggle = (v, label) => el("button", {
        type: "button",
        tabindex: "-1",
        className: `toggle ${v ? "yes" : "no"}${value === v ? " on" : ""}`,
        "aria-pressed": value === v ? "true" : "false",
        title: v ? "yes (y)" : "no (n)",
        onmousedown: (event) => event.preventDefault(),
        onclick: () => { select(index); setAnswer(v, false); },
      }, label);
      body.append(el("tr", {
        className: `${index === state.selected ? "selected" : ""}${value === undefined ? "" : " done"}`,
        dataset: { concept: concept.id },
        onclick: () => select(index),
      },
      el("td", { className: "num", text: index < 9 ? index + 1 : "" }),
      el("td", { className: "question" }, el("span", { text: concept.question }),
        el("small", { text: `${concept.category}: ${concept.name}` })),
      el("td", { className: "human" }, toggle(1, "yes"), toggle(0, "no")),
      ));
    });
  }

  function select(index) {
    if (!state.item) return;
    const n = state.item.concepts.length;
    state.selected = Math.max(0, Math.min(n - 1, index));
    renderQuestions();
  }

  function setAnswer(value, advance = true) {
    if (!state.item) return;
    const concept = state.item.concepts[state.selected];
    if (value === null) delete state.answers[concept.id];
    else state.answers[concept.id] = value;
    if (advance && state.selected < state.item.concepts.length - 1) state.selected += 1;
    renderQuestions();
  }

  async function submit() {
    if (!state.item || state.busy) return;
    const missing = state.item.concepts.filter((c) => !(c.id in state.answers));
    if (missing.length) {
      setStatus(`Answer every question first (${missing.length} left): y or n.`, "warn");
      return;
    }
    state.busy = true;
    try {
      const itemId = state.item.item_id;
      const result = await api("api/verdicts", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ reviewer: state.reviewer, item_id: itemId, verdicts: state.answers }),
      });
      state.history = state.history.filter((id) => id !== itemId).concat([itemId]);
      renderAgreement(result.agreement);
      await loadQueue();
      setStatus(`Saved ${result.saved} answer${result.saved === 1 ? "" : "s"} on ${itemId}.`, "ok");
    } catch (err) {
      fail(err);
    } finally {
      state.busy = false;
    }
  }

  function skip() {
    if (!state.item) return;
    state.skipped.add(state.item.item_id);
    state.queue = state.queue.filter((e) => e.item_id !== state.item.item_id);
    (state.queue.length ? showNext() : loadQueue()).catch(fail);
  }

  function revisitSkipped() {
    if (!state.skipped.size) return;
    state.skipped.clear();
    loadQueue().catch(fail);
  }

  function undo() {
    const last = state.history.pop();
    if (!last) { setStatus("Nothing answered yet in this session.", "warn"); return; }
    show(last, true).then(() => setStatus(`Back to ${last}: change your answers and submit again.`))
      .catch(fail);
  }

  // --- agreement panel ----------------------------------------------------------------------

  function renderAgreement(data) {
    const box = clear($("agreement"));
    const people = data.reviewers.length;
    box.append(el("p", { className: "summary", id: "agreement-summary" },
      el("strong", { text: data.reviewed_images }),
      ` image${data.reviewed_images === 1 ? "" : "s"} answered by `,
      el("strong", { text: people }), ` reviewer${people === 1 ? "" : "s"}`));
    const a = data.agreement;
    if (!a) {
      box.append(el("p", { className: "empty", text: "No answers yet: answer one image to see how the judge compares." }));
      return;
    }
    const all = a.overall;
    box.append(el("div", { className: "judge-agreement", dataset: { judge: state.run ? state.run.judge : "" } },
      el("div", { className: "judge-name", text: state.run ? state.run.judge.split("@")[0] : "judge" }),
      el("div", { className: "headline" },
        el("span", { className: "big", dataset: { group: "all" }, text: pct(all.agreement) }),
        el("span", { className: "sub", text: `agree · κ ${fixed(all.kappa)} · ${all.units} answers` })),
      el("table", { className: "mini" },
        el("tbody", {}, ...a.by_category.map((row) => {
          const bar = el("span", { className: "fill" });
          bar.style.width = `${Math.round(row.agreement * 100)}%`;
          return el("tr", { dataset: { group: row.group } },
            el("th", { className: "category", text: row.name, title: row.name }),
            el("td", { className: "bar" }, el("span", { className: "track" }, bar)),
            el("td", { className: "value", text: pct(row.agreement) }),
            el("td", { className: "kappa", text: `κ ${fixed(row.kappa)}` }),
            el("td", { className: "units", text: `n ${row.units}` }));
        })))));
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
      case "y": case "Y": setAnswer(1); return handled();
      case "n": case "N": setAnswer(0); return handled();
      case " ": {
        if (!state.item) return handled();
        const current = state.answers[state.item.concepts[state.selected].id];
        setAnswer(current === 1 ? 0 : 1, false);
        return handled();
      }
      case "c": case "Backspace": case "Delete": setAnswer(null, false); return handled();
      case "Enter": submit(); return handled();
      case "s": case "S": skip(); return handled();
      case "u": case "U": undo(); return handled();
      case "r": case "R": revisitSkipped(); return handled();
      case "?": toggleHelp(); return handled();
      case "Escape": setStatus(""); return handled();
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
    $("undo").addEventListener("click", () => undo());
    $("reviewer-button").addEventListener("click", askName);
    $("name-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const name = $("name-input").value.trim();
      if (name) setReviewer(name);
    });

    try {
      state.run = await api("api/run");
      clear($("run-info")).append(
        el("code", { text: state.run.run_id }), " · generator ",
        el("strong", { text: state.run.generator.split("@")[0], title: state.run.generator }),
        ` · ${state.run.images} images`);
      renderAgreement(await api("api/agreement"));
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
