"""`skillmix show ITEM`: the whole story of one item, from prompt to verdict."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

from skillmix.errors import InputError
from skillmix.prompts.rubric import build_rubric
from skillmix.report.build import NOT_GRADED
from skillmix.report.names import display_model
from skillmix.scoring.results import score_run
from skillmix.store import EVALUATION, Store
from skillmix.terminal import escaped, plain

ITEM_IDS_HINT = "`skillmix report RUN` shows some item ids; items.csv in its folder lists all"


def _find_run(store: Store, item_id: str, run_id: str | None) -> str:
    if run_id:
        return str(store.get_run(run_id)["id"])
    for run in reversed(store.list_runs(EVALUATION)):
        if any(i["item_id"] == item_id for i in store.items(run["id"])):
            return str(run["id"])
    raise InputError(f"no run in {store.location} holds item '{item_id}'", hint=ITEM_IDS_HINT)


def render_item(store: Store, item_id: str, run_id: str | None, console: Console) -> None:
    """Print everything about one item of a run (the latest run holding it by default).

    An unknown run is a `StoreError`, an item no run (or not `run_id`) holds an `InputError`.
    """
    run_id = _find_run(store, item_id, run_id)
    scores = score_run(store, run_id)
    catalog = scores.catalog
    items = {i["item_id"]: i for i in store.items(run_id)}
    if item_id not in items:
        raise InputError(f"item '{item_id}' is not in run {run_id}", hint=ITEM_IDS_HINT)
    item = items[item_id]
    skills = [catalog.skill(s) for s in item["skill_ids"]]
    topic = catalog.topic(item["topic_id"])
    rubric = build_rubric(skills, topic)
    console.rule(f"item {escaped(item_id)}  (run {escaped(run_id)})")
    console.print(f"k={item['k']}  topic: [bold]{escaped(topic.name)}[/]", highlight=False)
    for s in skills:
        console.print(
            f"  • [bold]{escaped(s.name)}[/] ({escaped(s.category)}): {escaped(s.definition)}",
            highlight=False,
        )

    generations = [g for g in store.generations(run_id) if g["item_id"] == item_id]
    grades = [g for g in store.grades(run_id) if g["item_id"] == item_id]
    results = {
        (r.judge, g.gen_round): g
        for r in scores.items
        if r.item_id == item_id
        for g in r.generations
    }
    for gen in generations:
        console.rule(f"generation round {gen['round']}")
        for label, key in (("turn 1", gen["turn1_key"]), ("turn 2", gen["turn2_key"])):
            call = store.get_call(key)
            if call is None:
                continue
            prompt = call.messages[-1]["content"]
            console.print(Panel(plain(prompt), title=f"{label}: prompt", border_style="dim"))
            console.print(
                Panel(plain(call.response), title=f"{label}: reply ({escaped(call.model)})")
            )
        named = escaped(", ".join(gen["named"]) or "none")
        console.print(
            Panel(
                plain(gen["answer"] or "(empty)"),
                title=f"extracted answer: {gen['sentences']} sentence(s), "
                f"marker {'found' if gen['marker_found'] else 'missing'}, skills named: {named}",
                border_style="green",
            )
        )
        for judge in scores.judges:
            rows = [g for g in grades if g["gen_round"] == gen["round"] and g["judge"] == judge]
            if not rows:
                console.print(
                    f"judge {escaped(display_model(judge))}: {NOT_GRADED} (the run stopped "
                    "before grading this answer; re-run its command to grade it)",
                    highlight=False,
                )
                continue
            table = Table(
                "criterion",
                *(f"round {g['grade_round']}" for g in rows),
                "decided",
                title=f"judge {escaped(display_model(judge))}",
                title_justify="left",
            )
            decided = results.get((judge, gen["round"]))
            for c in rubric:
                cells = []
                for g in rows:
                    if c.kind == "length":
                        cells.append("code")
                    elif g["verdicts"] is None:
                        cells.append("[red]unparsed[/]")
                    else:
                        cells.append(str(g["verdicts"].get(c.id, "?")))
                final = "—"
                if decided is not None and decided.decided is not None:
                    final = str(decided.decided.get(c.id, "?"))
                table.add_row(plain(c.label), *cells, final)
            console.print(table)
            if decided is not None and decided.scores is not None:
                sc = decided.scores
                console.print(
                    f"full marks {sc.full_marks:.0f}  all skills {sc.all_skills:.0f}  "
                    f"skill fraction {sc.skill_fraction:.2f}"
                    + (
                        f"  (naming penalty: {escaped(', '.join(decided.penalized))})"
                        if decided.penalized
                        else ""
                    )
                )
            for g in rows:
                call_texts = [store.get_call(k) for k in g["call_keys"]]
                body = Group(*(plain(c.response) for c in call_texts if c is not None))
                console.print(
                    Panel(
                        body,
                        title=f"round {g['grade_round']}: {g['status']} via {g['method']}, "
                        f"{g['attempts']} attempt(s)"
                        + (f" — {escaped(g['reason'])}" if g["reason"] else ""),
                        border_style="dim",
                    )
                )
