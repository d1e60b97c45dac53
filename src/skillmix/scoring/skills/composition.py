"""The composition law: per k, the share of texts with every skill met, next to what
independent skills predict, with a bootstrap over items."""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from skillmix.scoring.skills.texts import GradedRun, GradedText
from skillmix.scoring.stats import (
    Estimate,
    bootstrap_estimate,
    estimate_dict,
    wilson_interval,
)

PSEUDO_COUNT = 1.0  # texts at the pooled rate added to each skill's rate in the prediction
RESAMPLES = 1000  # bootstrap resamples of the composition law
MIN_RESAMPLES = 200  # the fewest a cell budget may leave (see `composition_law`)
# The bootstrap goes through its resamples in chunks (the results do not depend on their
# size): about _CHUNK_CELLS cells (resamples × entries), so that a chunk's arrays stay in
# the CPU's cache (a 1,088-item run's analysis: 0.12 s in chunks of 1,000,000 cells, 0.08 s
# in chunks of 65,536), but at least _CHUNK_ROWS resamples, so that Python's work per chunk
# does not dominate on big runs, and never more than _CHUNK_MAX_CELLS held at once.
_CHUNK_CELLS = 65_536
_CHUNK_ROWS = 16
_CHUNK_MAX_CELLS = 1_000_000


@dataclass(frozen=True)
class CompositionRow:
    """All skills met at one k: observed, predicted by independence, and their ratios.

    `observed.n` counts graded texts (a Wilson interval when each item has one graded
    text, else the item bootstrap); `predicted`, `ratio` (observed / predicted) and
    `power_ratio` (observed(k) / observed(1)^k) are None at k = 1 or where they cannot be
    computed; the ratios' p tests "ratio = 1" (normal, with the bootstrap standard error).
    Where no text (or every text) met all skills, the resamples cannot vary: the observed
    rate then has a Wilson interval, and the ratios that interval divided by the
    denominator, without a test.
    """

    k: int
    items: int
    observed: Estimate
    predicted: Estimate | None
    ratio: Estimate | None
    power_ratio: Estimate | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "items": self.items,
            "texts": self.observed.n,
            "observed": estimate_dict(self.observed),
            "predicted": estimate_dict(self.predicted),
            "ratio": estimate_dict(self.ratio),
            "power_ratio": estimate_dict(self.power_ratio),
        }


@dataclass
class CompositionLaw:
    """The composition law of one run under one judge."""

    run_id: str
    student: str
    judge: str
    predicted_from: str  # where the per-skill rates of the prediction come from
    rows: list[CompositionRow]
    resamples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "student": self.student,
            "judge": self.judge,
            "predicted_from": self.predicted_from,
            "resamples": self.resamples,
            "rows": [r.to_dict() for r in self.rows],
        }


FROM_K1 = "success rates on the k = 1 texts"
FROM_SAME_K = "success rates on the other items of the same k"


@dataclass
class _Entries:
    """Items and their (item, skill) entries at one k, entries grouped by item."""

    k: int
    items: np.ndarray  # the run's indices of the items of this k
    texts: np.ndarray  # graded texts per item
    all_met: np.ndarray  # texts with every skill met, per item
    item_of: np.ndarray  # per entry: position of its item in `items`
    skill: np.ndarray  # per entry: local skill index
    met: np.ndarray  # per entry: texts that met the skill
    item_met: np.ndarray = field(init=False)  # per item: `met` summed over its entries
    # The entries as k columns of one entry per item (the j-th skill of every item).
    column_skill: np.ndarray = field(init=False)  # k x items
    column_met: np.ndarray = field(init=False)  # k x items
    # The entries sorted by skill, for sums per skill.
    sorted_item: np.ndarray = field(init=False)
    sorted_met: np.ndarray = field(init=False)
    sorted_texts: np.ndarray = field(init=False)
    starts: np.ndarray = field(init=False)  # where each present skill begins, sorted
    present: np.ndarray = field(init=False)  # the skills present, in sorted order

    def __post_init__(self) -> None:
        self.item_met = self.met.reshape(-1, self.k).sum(axis=1)
        self.column_skill = self.skill.reshape(-1, self.k).T.copy()
        self.column_met = self.met.reshape(-1, self.k).T.copy()
        order = np.argsort(self.skill, kind="stable")
        self.sorted_item = self.item_of[order]
        self.sorted_met = self.met[order]
        self.sorted_texts = self.texts[self.sorted_item]
        self.present, self.starts = np.unique(self.skill[order], return_index=True)

    def skill_sums(self, w: np.ndarray, n_skills: int) -> tuple[np.ndarray, np.ndarray]:
        """Per resample and skill: the texts (weighted by how often their item was drawn)
        that met the skill, and those that had it (resamples x n_skills each)."""
        hits, seen = np.zeros((len(w), n_skills)), np.zeros((len(w), n_skills))
        if len(self.sorted_item):
            drawn = np.take(w, self.sorted_item, axis=1)
            hits[:, self.present] = np.add.reduceat(drawn * self.sorted_met, self.starts, axis=1)
            seen[:, self.present] = np.add.reduceat(drawn * self.sorted_texts, self.starts, axis=1)
        return hits, seen


def _entries_by_k(
    texts: Sequence[GradedText], skill_index: Mapping[str, int]
) -> dict[int, _Entries]:
    per_item: dict[int, tuple[int, tuple[str, ...], list[int], list[int]]] = {}
    for t in texts:
        _, _, counts, met = per_item.setdefault(t.item, (t.k, t.skills, [0, 0], [0] * t.k))
        counts[0] += 1
        counts[1] += all(t.met)
        for j, m in enumerate(t.met):
            met[j] += m
    by_k: dict[int, list[int]] = defaultdict(list)
    for item, (k, *_) in per_item.items():
        by_k[k].append(item)
    out = {}
    for k, items in sorted(by_k.items()):
        out[k] = _Entries(
            k=k,
            items=np.array(items),
            texts=np.array([per_item[i][2][0] for i in items], dtype=float),
            all_met=np.array([per_item[i][2][1] for i in items], dtype=float),
            item_of=np.repeat(np.arange(len(items)), k),
            skill=np.array([skill_index[s] for i in items for s in per_item[i][1]], dtype=np.intp),
            met=np.array([m for i in items for m in per_item[i][3]], dtype=float),
        )
    return out


def _observed(e: _Entries, w: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w @ e.all_met) / (w @ e.texts)


def _k1_rates(e: _Entries, w: np.ndarray, n_skills: int) -> np.ndarray:
    """Each skill's success rate on the k = 1 texts, shrunk towards the pooled rate."""
    hits, seen = e.skill_sums(w, n_skills)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = hits.sum(axis=1) / seen.sum(axis=1)
        return (hits + PSEUDO_COUNT * pooled[:, None]) / (seen + PSEUDO_COUNT)


def _k1_products(e: _Entries, rates: np.ndarray) -> np.ndarray:
    """Per resample and item: the product of its skills' k = 1 rates (`_k1_rates`)."""
    product = np.take(rates, e.column_skill[0], axis=1)
    for skills in e.column_skill[1:]:
        product *= np.take(rates, skills, axis=1)
    return product


def _same_k_products(e: _Entries, w: np.ndarray, n_skills: int) -> np.ndarray:
    """Per resample and item: the product of its skills' rates on the other items of the
    same k (shrunk the same way towards the pooled rate of those items).

    An item's own texts count in its skills' sums once per draw of the item, and leave
    them as such; the pooled rate of the other items depends on the item alone, not on
    which of its skills. All counts are whole numbers, so every sum is exact.
    """
    hits, seen = e.skill_sums(w, n_skills)
    item_hits = w * e.item_met  # the item's met skills, over its k entries
    item_seen = w * e.texts  # the item's texts, as each of its entries counts them
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (item_hits.sum(axis=1)[:, None] - item_hits) / (
            e.k * item_seen.sum(axis=1)[:, None] - e.k * item_seen
        )
        rates = (
            (np.take(hits, skills, axis=1) - w * met + PSEUDO_COUNT * pooled)
            / (np.take(seen, skills, axis=1) - item_seen + PSEUDO_COUNT)
            for skills, met in zip(e.column_skill, e.column_met, strict=True)
        )
        product = next(rates)
        for rate in rates:
            product *= rate
    return product


def _predicted(e: _Entries, w: np.ndarray, products: np.ndarray) -> np.ndarray:
    """The mean over texts of the product of their skills' rates (`products`: per
    resample and item)."""
    weights = w * e.texts
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights * products).sum(axis=1) / weights.sum(axis=1)


def _law_statistics(
    by_k: Mapping[int, _Entries], weights: Mapping[int, np.ndarray], n_skills: int
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per k: observed, predicted and observed(1)^k, one value per resample. `weights[k]`
    (resamples × items of that k) says how often each item was drawn."""
    base = by_k.get(1)
    k1_rates = _k1_rates(base, weights[1], n_skills) if base else None
    k1_observed = _observed(base, weights[1]) if base else None
    out = {}
    for k, e in by_k.items():
        wk = weights[k]
        observed = _observed(e, wk)
        nan = np.full(len(wk), np.nan)
        if k == 1:
            out[k] = (observed, nan, nan)
            continue
        if k1_rates is not None:
            products = _k1_products(e, k1_rates)
        else:
            products = _same_k_products(e, wk, n_skills)
        power = k1_observed**k if k1_observed is not None else nan
        out[k] = (observed, _predicted(e, wk, products), power)
    return out


def composition_law(
    graded: GradedRun,
    *,
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
    cell_budget: int | None = None,
) -> CompositionLaw | None:
    """The composition law of one run under one judge (None: nothing graded).

    `cell_budget` bounds the work (resamples × entries) for callers that must stay fast
    on big runs, such as every report: the resamples drop to fit it, never below
    `MIN_RESAMPLES`. The law records how many it used.
    """
    if not graded.texts:
        return None
    skill_index = {s: i for i, s in enumerate(sorted({s for t in graded.texts for s in t.skills}))}
    by_k = _entries_by_k(graded.texts, skill_index)
    n_skills = len(skill_index)
    point = _law_statistics(
        by_k, {k: np.ones((1, len(e.items))) for k, e in by_k.items()}, n_skills
    )
    # One random stream per k: resample r of each k is the same whatever the chunk size.
    rngs = {k: np.random.default_rng([seed, k]) for k in by_k}
    entries = sum(len(e.skill) + len(e.items) for e in by_k.values())
    if cell_budget is not None:
        resamples = min(resamples, max(MIN_RESAMPLES, cell_budget // max(1, entries)))
    per_row = max(1, entries)
    chunk_rows = min(max(_CHUNK_ROWS, _CHUNK_CELLS // per_row), _CHUNK_MAX_CELLS // per_row)
    chunk = max(1, min(resamples, chunk_rows))
    draws: dict[int, list[np.ndarray]] = {k: [] for k in by_k}
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        weights = {k: _resample_weights(rngs[k], len(e.items), size) for k, e in by_k.items()}
        for k, stats in _law_statistics(by_k, weights, n_skills).items():
            draws[k].append(np.stack(stats))
    rows = []
    for k, e in by_k.items():
        sample = np.concatenate(draws[k], axis=1)  # observed, predicted, power × resamples
        observed, predicted, power = (float(v[0]) for v in point[k])
        texts, hits = int(e.texts.sum()), int(e.all_met.sum())
        boundary = hits in (0, texts)  # every resample alike: the bootstrap cannot vary
        if boundary or np.all(e.texts == 1):
            low, high = wilson_interval(hits, texts, level=level)
            observed_estimate = Estimate(observed, low, high, float("nan"), texts)
        else:
            observed_estimate = _rate(observed, sample[0], texts, level)
        has_prediction = k > 1 and math.isfinite(predicted)
        ratios: list[Estimate | None] = [None, None]
        if has_prediction:
            with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 resamples: nan
                ratios = [
                    _ratio(observed_estimate, base, sample[0] / d, level, len(e.items), boundary)
                    for base, d in ((predicted, sample[1]), (power, sample[2]))
                ]
        rows.append(
            CompositionRow(
                k=k,
                items=len(e.items),
                observed=observed_estimate,
                predicted=_rate(predicted, sample[1], texts, level) if has_prediction else None,
                ratio=ratios[0],
                power_ratio=ratios[1],
            )
        )
    return CompositionLaw(
        run_id=graded.run_id,
        student=graded.student,
        judge=graded.judge,
        predicted_from=FROM_K1 if 1 in by_k else FROM_SAME_K,
        rows=rows,
        resamples=resamples,
    )


def _resample_weights(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """How often each of `n` items is drawn in each resample of n draws with replacement
    (resamples × n)."""
    # floor(uniform × n): as uniform as rng.integers and several times faster here
    draws = (rng.random((resamples, n)) * n).astype(np.intp)
    draws += np.arange(resamples)[:, None] * n
    return np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n).astype(float)


def _rate(value: float, draws: np.ndarray, n: int, level: float) -> Estimate:
    """A rate with its bootstrap interval (no test: p is nan)."""
    return dataclasses.replace(bootstrap_estimate(value, draws, n, level=level), p=float("nan"))


def _ratio(
    observed: Estimate,
    denominator: float,
    draws: np.ndarray,
    level: float,
    n: int,
    boundary: bool,
) -> Estimate | None:
    """observed / denominator with its bootstrap interval and the test of ratio = 1.

    At a `boundary` (no text, or every text, met all skills) the resamples cannot vary:
    the interval is then the observed rate's (Wilson) interval over the denominator, and
    there is no test. None where the denominator is not positive (nan: not computed).
    """
    if not denominator > 0:
        return None
    value = observed.value / denominator
    if boundary:
        return Estimate(
            value, observed.low / denominator, observed.high / denominator, float("nan"), n
        )
    return bootstrap_estimate(value, draws, n, null=1.0, level=level)
