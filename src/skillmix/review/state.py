"""What one review app serves: the run under review, read from its store (a snapshot that
is read again only while the run can still change)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from skillmix.image.agreement import image_agreement
from skillmix.image.report import ImageReport, build_image_report
from skillmix.math.generate import StoredGenerateRun, load_generate_run
from skillmix.report.details import item_details
from skillmix.scoring.human import human_agreement
from skillmix.scoring.results import RunScores, score_run
from skillmix.store import EVALUATION, Store


@dataclass
class ReviewState:
    """What one app serves: the run, its scores and details (a snapshot), the store.

    The snapshot is indexed by (item_id, gen_round), so looking a generation up costs the
    same whatever the run's size. It is re-read only for a generation that can still
    appear: one of the run's items, a round within its generation rounds, while the run
    was not yet done when the snapshot was taken. Any other id is answered from memory.
    """

    store_path: str  # an SQLite file or a postgresql:// URL
    run_id: str
    token: str | None
    store: Store | None = None
    scores: RunScores | None = None
    details: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    item_ids: frozenset[str] = frozenset()
    complete: bool = False  # the run was done when the snapshot was taken
    static: dict[str, bytes] = field(default_factory=dict)
    kind: str = EVALUATION  # what made the run: a Skill-Mix evaluation, or `math generate`
    generated: StoredGenerateRun | None = None  # a `math generate` run, read once
    image_report: ImageReport | None = None  # an image run: read again until it is done

    @property
    def db(self) -> Store:
        if self.store is None:  # opened on the server's own thread (sqlite needs that)
            self.store = Store(self.store_path)
        return self.store

    def refresh(self) -> None:
        """Re-read scores and details (they change only while the run is still going)."""
        # The status first: if the run was done then, this snapshot holds all of it.
        self.complete = self.db.get_run(self.run_id)["status"] == "done"
        self.scores = score_run(self.db, self.run_id)
        self.item_ids = frozenset(i["item_id"] for i in self.db.items(self.run_id))
        self.details = {
            (d["item_id"], d["gen_round"]): d for d in item_details(self.db, self.scores)
        }

    def current_scores(self) -> RunScores:
        if self.scores is None:
            self.refresh()
        assert self.scores is not None
        return self.scores

    def detail(self, item_id: str, gen_round: int) -> dict[str, Any] | None:
        """One generation's details, or None when the run has no such generation."""
        rounds = int(self.current_scores().run["config"]["generation_rounds"])
        key = (item_id, gen_round)
        if key in self.details:
            return self.details[key]
        if self.complete or item_id not in self.item_ids or not 0 <= gen_round < rounds:
            return None
        self.refresh()  # a generation stored since the snapshot, while the run goes on
        return self.details.get(key)

    def generated_run(self) -> StoredGenerateRun:
        """The `math generate` run under review (done, so read once)."""
        if self.generated is None:
            self.generated = load_generate_run(self.db, self.run_id)
        return self.generated

    def image_run(self) -> ImageReport:
        """The image run under review (read again while it is still going)."""
        if self.image_report is None or self.image_report.status != "done":
            self.image_report = build_image_report(self.db, self.run_id)
        return self.image_report

    def image_row(self, item_id: str) -> dict[str, Any] | None:
        """One sample of the image run that has its image, or None."""
        rows = [r for r in self.image_run().rows if r["item"]["item_id"] == item_id]
        return rows[0] if rows and rows[0]["image"] is not None else None

    def image_agreement(self) -> dict[str, Any]:
        report = self.image_run()
        humans = self.db.human_verdicts(self.run_id)
        found = image_agreement(
            (r["grade"] for r in report.rows if r["grade"]),
            humans,
            concept_names={c["id"]: c["name"] for c in report.catalog.get("concepts", [])},
            category_names={
                c["id"]: c.get("name", c["id"]) for c in report.catalog.get("categories", [])
            },
            seed=int(report.config.get("seed", 0)),
        )
        return {
            "reviewers": sorted({h["reviewer"] for h in humans}),
            "reviewed_images": len({h["item_id"] for h in humans}),
            "agreement": None if found is None else found.to_dict(),
        }

    def agreement(self) -> dict[str, Any]:
        humans = self.db.human_verdicts(self.run_id)
        return {
            "rows": human_agreement(self.db, self.current_scores()),
            "judges": self.current_scores().judges,
            "reviewers": sorted({h["reviewer"] for h in humans}),
            "reviewed_generations": len({(h["item_id"], h["gen_round"]) for h in humans}),
        }


REVIEW = web.AppKey("review", ReviewState)
