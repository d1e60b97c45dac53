"""The rows of one run as this process wrote them, kept for a report made right after the
run (`Store.keep_rows`, as `skillmix run` does), so that the report need not read back what
was just written: a 4,352-item run's items, generations, grades and ledger are some 30,000
rows.

Each row is kept as a read would return it: built from the very values written (after
their repair, see `text`), its JSON decoded as `Store` decodes it, and where a key is
written twice, the one that the database keeps (`INSERT OR REPLACE`: the last; `INSERT OR
IGNORE`: the first; the ledger: the first role, and "sent" once any use was sent). A
use's tokens are those of the stored call: when another process stored an answer first,
the commit that would have written ours finds it (`stored_first`).

They are the run's rows only if no one else wrote any: the process holds the run's lease,
so no other writes its rows meanwhile, and the store uses them only when nothing is
pending and no write failed. What was there before is the rest. Generations and grades
are written again by every run of the engine (resumed or not), so a run with others (say,
of an earlier, larger run) has more rows than are kept: the counts tell. Items and the
ledger are not: a write keeps the stored row, not ours, so those are used only for a run
this process created (`created`), which had none before.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from skillmix.store.backend import Database
from skillmix.store.rows import CallRecord, GenerationRow, GradeRow, ItemRow, UsageRow

# The columns each write sets, in the order of its values: the INSERT statements are made
# from these, and a row kept is built from exactly the values written.
ITEM_COLUMNS = ("run_id", "item_id", "position", "k", "skill_ids", "topic_id")
GENERATION_COLUMNS = (
    "run_id", "item_id", "round", "turn1_key", "turn2_key", "answer", "explanation",
    "marker_found", "sentences", "named",
)  # fmt: skip
GRADE_COLUMNS = (
    "run_id", "item_id", "gen_round", "judge", "grade_round", "status", "method", "verdicts",
    "reason", "attempts", "call_keys", "answer_hash",
)  # fmt: skip

# Each table's key within a run, and the order `Store` reads its rows in.
_ITEM_ORDER = itemgetter("k", "position")
_GENERATION_KEY = itemgetter("item_id", "round")
_GRADE_KEY = itemgetter("item_id", "gen_round", "judge", "grade_round")

_Group = tuple[str, str, str, int]  # a usage row's role, provider, model and sent


class KeptRows:
    """The rows of `run_id` one store wrote (see the module)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        # Whether the store created the run (`Store.ensure_run`) with no ledger rows yet:
        # then the items and ledger kept are all it has, if as many.
        self.created = False
        self._items: dict[str, ItemRow] = {}
        self._generations: dict[tuple[Any, ...], GenerationRow] = {}
        self._grades: dict[tuple[Any, ...], GradeRow] = {}
        # The ledger: call key -> its usage group (role, provider, model, sent) and tokens,
        # and the totals of each group; None once a use was recorded without its call.
        self._ledger: dict[str, tuple[_Group, int, int]] | None = {}
        self._totals: dict[_Group, list[int]] = {}

    def item(self, row: ItemRow) -> None:
        self._items.setdefault(row["item_id"], row)

    def generation(self, row: GenerationRow) -> None:
        self._generations[_GENERATION_KEY(row)] = row

    def grade(self, row: GradeRow) -> None:
        self._grades[_GRADE_KEY(row)] = row

    def use(self, key: str, role: str, sent: bool, call: CallRecord | None) -> None:
        if self._ledger is None:
            return
        if call is None:
            self._ledger = None
            return
        held = self._ledger.get(key)
        if held is None:
            group = (role, call.provider, call.model, int(sent))
            self._ledger[key] = (group, call.prompt_tokens, call.completion_tokens)
            self._add(group, 1, call.prompt_tokens, call.completion_tokens)
        elif sent and not held[0][3]:  # used from the cache first, then sent: paid for
            group, prompt, completion = held
            self._add(group, -1, -prompt, -completion)
            paid = (*group[:3], 1)
            self._ledger[key] = (paid, prompt, completion)
            self._add(paid, 1, prompt, completion)

    def stored_first(self, call: CallRecord) -> None:
        """The store kept `call` (another process's answer) for a use kept with this
        process's own: the ledger counts the stored call's tokens."""
        ledger = self._ledger
        if ledger is None or (held := ledger.get(call.key)) is None:
            return
        group, prompt, completion = held
        self._add(group, 0, call.prompt_tokens - prompt, call.completion_tokens - completion)
        ledger[call.key] = (group, call.prompt_tokens, call.completion_tokens)

    def _add(self, group: _Group, calls: int, prompt: int, completion: int) -> None:
        totals = self._totals.setdefault(group, [0, 0, 0])
        totals[0] += calls
        totals[1] += prompt
        totals[2] += completion

    def tables(
        self, db: Database
    ) -> tuple[list[ItemRow] | None, list[GenerationRow], list[GradeRow]] | None:
        """The run's generations and grades in the order `Store` reads them, if those kept
        are all it has, else None; with its items too when the store created the run (else
        None in their place: the caller reads them)."""
        if not (
            _count(db, "generations", self.run_id, self._generations)
            and _count(db, "grades", self.run_id, self._grades)
        ):
            return None
        items = None
        if self.created and _count(db, "items", self.run_id, self._items):
            items = sorted(self._items.values(), key=_ITEM_ORDER)
        return (
            items,
            sorted(self._generations.values(), key=_GENERATION_KEY),
            sorted(self._grades.values(), key=_GRADE_KEY),
        )

    def usage(self, db: Database) -> list[UsageRow] | None:
        """`Store.usage` of the run from the ledger kept, if the store created the run and
        the ledger kept is all it has; else None."""
        ledger = self._ledger
        if not self.created or ledger is None or not _count(db, "run_calls", self.run_id, ledger):
            return None
        return [
            {
                "role": role,
                "provider": provider,
                "model": model,
                "sent": sent,
                "calls": calls,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
            }
            # In the order of the query's ORDER BY (role, model, sent), providers apart.
            for (role, provider, model, sent), (calls, prompt, completion) in sorted(
                self._totals.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][3], kv[0][1])
            )
            if calls
        ]


def _count(db: Database, table: str, run_id: str, kept: dict[Any, Any]) -> bool:
    """Whether `table` holds as many rows of the run as were kept."""
    (count,) = db.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", (run_id,)).fetchone()
    return bool(count == len(kept))
