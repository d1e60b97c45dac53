"""Estimate how often each skill appears in a corpus sample, and drop the common ones.

The published Skill-Mix method removed every skill found in at least 5% of a web-corpus
sample, because common skills make the test easy. A tagger model reads each passage and
says, for a batch of skills at a time, which ones the passage uses. Each (passage, batch)
is one unit of the runtime's worker pool, so the filter resumes, fails and pauses as
every other pipeline does.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from skillmix import prompts
from skillmix.catalog.model import Catalog, Skill, slug
from skillmix.catalog.sampling import stable_hash
from skillmix.errors import InputError
from skillmix.models import ChatRequest, Model
from skillmix.prompts.rubric import Criterion
from skillmix.protocol.verdicts import ParsedVerdict, parse_verdict, verdict_json_schema
from skillmix.runtime.calls import CallCache
from skillmix.runtime.pool import WorkerPool, derive_seed
from skillmix.runtime.progress import Progress


def read_passages(path: str | Path, limit: int, seed: int = 0) -> list[str]:
    """Passages of a corpus file: JSONL objects with a "text" field, or blank-line paragraphs.

    When there are more than `limit`, a seeded sample of `limit` is taken. A file that
    cannot be read as such is an `InputError` naming it (and the line).
    """
    path = Path(path)
    text = _read_text(path)
    if path.suffix == ".jsonl":
        passages = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    passages.append(str(json.loads(line)["text"]))
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise InputError(
                        f"{path}:{number}: expected a JSON object with 'text'"
                    ) from err
    else:
        passages = [" ".join(p.split()) for p in text.split("\n\n") if p.strip()]
    if not passages:
        raise InputError(
            f"{path}: no passages found",
            hint="give text with blank-line paragraphs, or .jsonl with a 'text' per line",
        )
    if len(passages) > limit:
        order = sorted(range(len(passages)), key=lambda i: stable_hash("passage", seed, i))
        passages = [passages[i] for i in sorted(order[:limit])]
    return passages


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{path}: not UTF-8 text ({err.reason})") from None
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None


def _skill_criteria(skills: list[Skill]) -> list[Criterion]:
    return [
        Criterion(f"skill:{s.id}", "skill", f"Uses {s.name}", slug(s.name), s.surface_forms)
        for s in skills
    ]


@dataclass
class FrequencyResult:
    frequencies: dict[str, float]  # skill id -> share of passages that use it
    passages: int
    unparsed: int  # (passage, batch) pairs with no parsed answer: left out of the shares


async def estimate_frequencies(
    catalog: Catalog,
    passages: list[str],
    tagger: Model,
    calls: CallCache,
    *,
    batch_size: int = 8,
    attempts: int = 3,
    seed: int = 0,
    progress: Progress | None = None,
    workers: int | None = None,
) -> FrequencyResult:
    """The share of `passages` that use each skill of `catalog`, as `tagger` sees it.

    Progress is reported as the stage "tag" (one unit per passage and batch of skills).
    A tagger that fails for good raises `RunError`; what it answered is in the store.
    """
    templates = prompts.load_templates()
    progress = progress or Progress()
    skills = list(catalog.skills)
    batches = [skills[i : i + batch_size] for i in range(0, len(skills), batch_size)]
    used: dict[str, float] = dict.fromkeys((s.id for s in skills), 0)  # a tag may be 0.5
    seen = dict.fromkeys((s.id for s in skills), 0)
    unparsed = 0

    async def tag(unit: tuple[int, str, list[Skill]]) -> None:
        nonlocal unparsed
        p_index, passage, batch = unit
        criteria = _skill_criteria(batch)
        messages = prompts.tagging(templates, passage, batch, criteria)
        schema = verdict_json_schema(criteria) if tagger.supports_structured else None
        for attempt in range(attempts):
            request = ChatRequest(
                tuple(messages),
                0.0,
                24 + 12 * len(batch),
                derive_seed(seed, "tag", p_index, batch[0].id),
                schema,
                sample=attempt,
            )
            record = await calls.call(tagger, "tagger", request)
            parsed = parse_verdict(record.response, criteria)
            if isinstance(parsed, ParsedVerdict):
                for s in batch:
                    seen[s.id] += 1
                    used[s.id] += parsed.values[f"skill:{s.id}"]
                break
        else:
            unparsed += 1
        progress.advance("tag")

    units = [(i, p, b) for i, p in enumerate(passages) for b in batches]
    progress.total("tag", len(units))
    await WorkerPool(calls, [tagger], workers).run(units, tag)
    frequencies = {sid: used[sid] / seen[sid] if seen[sid] else 0.0 for sid in used}
    return FrequencyResult(frequencies, len(passages), unparsed)


def drop_common(catalog: Catalog, frequencies: dict[str, float], threshold: float) -> Catalog:
    """The catalog without skills whose frequency is at or above `threshold`."""
    keep = {sid for sid in (s.id for s in catalog.skills) if frequencies.get(sid, 0) < threshold}
    return catalog.subset(keep, None, name=f"{catalog.name}:filtered")


def write_catalog_yaml(catalog: Catalog, path: str | Path) -> None:
    data = {
        "version": catalog.version or "filtered",
        "skills": [s.to_dict() for s in catalog.skills],
        "topics": [t.to_dict() for t in catalog.topics],
    }
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100))


def write_frequencies(result: FrequencyResult, path: str | Path) -> None:
    with Path(path).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["kind", "id", "frequency"])
        for sid, freq in sorted(result.frequencies.items()):
            writer.writerow(["skill", sid, f"{freq:.6f}"])


def read_frequencies(path: str | Path) -> tuple[dict[str, float], dict[str, float]]:
    """Skill and topic frequencies from a CSV with columns kind,id,frequency.

    A row that does not fit is an `InputError` naming its file and line.
    """
    skills: dict[str, float] = {}
    topics: dict[str, float] = {}
    rows = csv.DictReader(io.StringIO(_read_text(Path(path)), newline=""))
    for number, row in enumerate(rows, start=2):
        try:
            target = skills if row["kind"] == "skill" else topics
            target[row["id"]] = float(row["frequency"])
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(
                f"{path}:{number}: expected kind,id,frequency",
                hint="write the file with `skillmix catalog filter` (its .frequencies.csv)",
            ) from err
    return skills, topics
