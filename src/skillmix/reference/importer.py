"""Import the original Skill-Mix scripts' recorded runs into a store as skillmix runs.

`import_reference(store, DIR)` accepts a generation-round folder (`k3_s10_vdefault_r1`,
holding `<student>/records.csv`), a student folder inside one, or a root holding several
round folders. Each student x judge x grading format becomes one run; round folders that
differ only in their round number (`..._r1`, `..._r2`) become that run's generation
rounds, and the grading folders' rounds its grading rounds (both renumbered from 0 in
the order of their numbers, which the run config records).

What is stored, so that `skillmix report RUN` works as for any run:

* items: the k skills (in the order the student saw them) and the topic; the item id is
  the one our sampler gives the same combination, so imported items pair with ours;
* generations: both turns as calls (provider `reference`), and the text the judge graded
  (the `text_<i>` column that the grading folder names), with our sentence count and
  naming check;
* grades: every judge text parsed again with our parser (`parse_verdict`); a text it
  cannot read is stored as unparsed, never as 0;
* reference points: the points the original scripts recorded for each grading round,
  by criterion as their aggregation read them (by position), beside ours.

The run config says `"protocol": "reference-import"` and where the files came from.
Importing the same files again writes the same rows: nothing is duplicated.

Catalog: with `catalog_sources`, that catalog (every skill and topic of the records must
be in it). Otherwise a `skills.csv` (and `topics.txt`) found in DIR or one of its four
parent folders, as in a checkout of the original scripts; skills and topics that no file
describes are added with an empty definition and example (category "unknown"), and the
summary says which.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillmix.catalog.load import load_catalog
from skillmix.catalog.model import Catalog, Skill, Topic, slug
from skillmix.catalog.sampling import Item
from skillmix.prompts.rubric import Criterion, build_rubric
from skillmix.protocol.extract import extract_answer
from skillmix.protocol.naming import naming_penalty
from skillmix.protocol.sentences import count_sentences
from skillmix.protocol.verdicts import ParsedVerdict, Unparsed, parse_verdict
from skillmix.reference.formats import (
    GRADED,
    RECORDS,
    GenerationRow,
    GradingFolder,
    GradingRow,
    ReferenceFormatError,
    RoundFolder,
    parse_grading_folder,
    parse_round_folder,
    read_generations,
    read_gradings,
)
from skillmix.store import CallRecord, Store

PROTOCOL = "reference-import"
PROVIDER = "reference"
UNKNOWN_CATEGORY = "unknown"
_CATALOG_SEARCH_DEPTH = 4  # DIR and this many parents are searched for skills.csv


@dataclass(frozen=True)
class _Source:
    """One student's records in one generation-round folder, with its grading folders."""

    folder: Path
    round_info: RoundFolder | None
    student: str
    records: Path
    gradings: tuple[tuple[GradingFolder, Path], ...]

    @property
    def generation_round(self) -> int:
        return self.round_info.round if self.round_info else 1


@dataclass(frozen=True)
class _RunKey:
    """What makes one imported run: everything but k and the round numbers."""

    student: str
    judge: str
    column: str
    grading_format: str
    seed: int | None
    version: str


@dataclass
class ImportedRun:
    """What one run got from the import (counts are grading rounds, i.e. judge texts)."""

    run_id: str
    student: str
    judge: str
    k: list[int]
    items: int
    generation_rounds: int
    grading_rounds: int
    judge_texts: int
    distinct_judge_texts: int
    parsed: int
    unparsed: int
    existed: bool
    skipped_generations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class ImportSummary:
    source: Path
    catalog_hash: str
    runs: list[ImportedRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "catalog_hash": self.catalog_hash,
            "runs": [r.to_dict() for r in self.runs],
            "notes": self.notes,
        }


def import_reference(
    store: Store,
    source: str | Path,
    *,
    catalog_sources: Sequence[str | Path] = (),
    naming_penalty_on: bool = True,
) -> ImportSummary:
    """Read the original scripts' output under `source` into `store`; one run per student
    x judge x grading format. Raises `ReferenceFormatError` (or `CatalogError`) saying
    which file and line is wrong; nothing is written before every file has been read.
    """
    root = Path(source)
    sources = discover(root)
    generations = {s.records: read_generations(s.records) for s in sources}
    gradings = {path: read_gradings(path) for s in sources for _, path in s.gradings}
    notes = [
        f"{_relative(s.records.parent, root)}: no grading folder, so not imported"
        for s in sources
        if not s.gradings
    ]
    catalog = _catalog(root, catalog_sources, [*generations.values(), *gradings.values()], notes)
    summary = ImportSummary(source=root, catalog_hash=catalog.content_hash, notes=notes)
    groups = sorted(_group(sources).items(), key=lambda kv: _sort_key(kv[0]))
    plans = [_plan(key, members, generations, gradings, catalog) for key, members in groups]
    store.put_catalog(catalog)
    for plan in plans:
        summary.runs.append(_write(store, plan, catalog, root, catalog_sources, naming_penalty_on))
    return summary


# --- finding the files -------------------------------------------------------------------------


def discover(root: Path) -> list[_Source]:
    """Every student folder under `root` (a student, round or root folder) with its gradings."""
    if not root.is_dir():
        raise ReferenceFormatError(f"{root}: not a folder")
    if (root / RECORDS).is_file():
        folders = [(root.parent, root)]
    elif any(root.glob(f"*/{RECORDS}")):
        folders = [(root, p.parent) for p in sorted(root.glob(f"*/{RECORDS}"))]
    else:
        folders = [(p.parent.parent, p.parent) for p in sorted(root.glob(f"*/*/{RECORDS}"))]
    sources = []
    for round_folder, student in folders:
        gradings = []
        for path in sorted((student / GRADED).glob(f"*/{RECORDS}")):
            info = parse_grading_folder(path.parent.name)
            if info is not None:
                gradings.append((info, path))
        sources.append(
            _Source(
                folder=round_folder,
                round_info=parse_round_folder(round_folder.name),
                student=student.name,
                records=student / RECORDS,
                gradings=tuple(gradings),
            )
        )
    if not any(s.gradings for s in sources):
        raise ReferenceFormatError(
            f"{root}: no graded records found; expected <round folder>/<student>/{RECORDS} "
            f"with <student>/{GRADED}/by_<judge>_on_<column>_<round>_<format>/{RECORDS} "
            "(pass a round folder such as test/k3_s10_vdefault_r1, or the folder above it)"
        )
    return sources


def _group(sources: list[_Source]) -> dict[_RunKey, list[tuple[_Source, GradingFolder, Path]]]:
    groups: dict[_RunKey, list[tuple[_Source, GradingFolder, Path]]] = defaultdict(list)
    for src in sources:
        info = src.round_info
        for grading, path in src.gradings:
            key = _RunKey(
                student=src.student,
                judge=grading.judge,
                column=grading.column,
                grading_format=grading.format,
                seed=info.seed if info else None,
                # A folder not named like theirs is a run of its own.
                version=info.version if info else f"folder:{src.folder}",
            )
            groups[key].append((src, grading, path))
    return groups


def _sort_key(key: _RunKey) -> tuple[str, ...]:
    return (key.student, key.judge, key.column, key.grading_format, str(key.seed), key.version)


# --- the catalog -------------------------------------------------------------------------------


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _catalog(
    root: Path,
    catalog_sources: Sequence[str | Path],
    tables: Sequence[Sequence[GenerationRow] | Sequence[GradingRow]],
    notes: list[str],
) -> Catalog:
    skills: dict[str, str] = {}
    topics: dict[str, str] = {}
    for rows in tables:
        for row in rows:
            for name in row.skills:
                skills.setdefault(_name_key(name), name)
            topics.setdefault(_name_key(row.topic), row.topic)
    base: Catalog | None = None
    if catalog_sources:
        base = load_catalog(list(catalog_sources))
    else:
        found = _reference_catalog_files(root)
        if found:
            base = load_catalog(found, partial=True)
            notes.append(f"definitions from {', '.join(map(str, found))}")
    known_skills = {_name_key(s.name): s for s in base.skills} if base else {}
    known_topics = {_name_key(t.name): t for t in base.topics} if base else {}
    missing_skills = [name for key, name in skills.items() if key not in known_skills]
    missing_topics = [name for key, name in topics.items() if key not in known_topics]
    if catalog_sources and (missing_skills or missing_topics):
        listed = ", ".join(f"'{n}'" for n in [*missing_skills, *missing_topics])
        raise ReferenceFormatError(
            f"the catalog {', '.join(map(str, catalog_sources))} lacks skills or topics the "
            f"records use: {listed}; add them, or import without --catalog"
        )
    if missing_skills:
        notes.append(
            "no definition found for skill(s) "
            + ", ".join(f"'{n}'" for n in missing_skills)
            + f"; they are in the catalog with an empty definition (category {UNKNOWN_CATEGORY})"
        )
    taken = {s.id for s in base.skills} if base else set()
    extra_skills = []
    for name in missing_skills:
        skill_id = _free_id(slug(name), taken)
        extra_skills.append(Skill(skill_id, name, UNKNOWN_CATEGORY, "", ""))
    taken_topics = {t.id for t in base.topics} if base else set()
    extra_topics = [Topic(_free_id(slug(n), taken_topics), n) for n in missing_topics]
    if base is not None and not extra_skills and not extra_topics:
        return base
    return Catalog(
        name=f"{base.name}+imported" if base else "reference-import",
        skills=(*(base.skills if base else ()), *extra_skills),
        topics=(*(base.topics if base else ()), *extra_topics),
        version=base.version if base else "",
    )


def _free_id(wanted: str, taken: set[str]) -> str:
    candidate, n = wanted, 2
    while candidate in taken:
        candidate, n = f"{wanted}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _reference_catalog_files(root: Path) -> list[Path]:
    """skills.csv (and topics.txt beside it) in `root` or the nearest parent that has one."""
    for folder in [root, *root.resolve().parents][: _CATALOG_SEARCH_DEPTH + 1]:
        skills = folder / "skills.csv"
        if skills.is_file():
            topics = folder / "topics.txt"
            return [skills, topics] if topics.is_file() else [skills]
    return []


# --- planning one run --------------------------------------------------------------------------


@dataclass(frozen=True)
class _PlannedItem:
    item_id: str
    k: int
    skill_ids: tuple[str, ...]
    topic_id: str


@dataclass(frozen=True)
class _PlannedGrade:
    item: _PlannedItem
    gen_round: int
    grade_round: int
    generation: GenerationRow
    grading: GradingRow
    skill_ids: tuple[str, ...]  # in the order this grading round listed them


@dataclass
class _Plan:
    key: _RunKey
    items: list[_PlannedItem]
    grades: list[_PlannedGrade]
    generation_rounds: list[int]  # their round numbers, in order
    grading_rounds: list[int]
    folders: list[Path]
    skipped_generations: int


def _plan(
    key: _RunKey,
    members: list[tuple[_Source, GradingFolder, Path]],
    generations: dict[Path, list[GenerationRow]],
    gradings: dict[Path, list[GradingRow]],
    catalog: Catalog,
) -> _Plan:
    skill_ids = {_name_key(s.name): s.id for s in catalog.skills}
    topic_ids = {_name_key(t.name): t.id for t in catalog.topics}
    gen_numbers = sorted({src.generation_round for src, _, _ in members})
    grade_numbers = sorted({grading.round for _, grading, _ in members})
    items: dict[str, _PlannedItem] = {}
    grades: list[_PlannedGrade] = []
    graded: set[tuple[Path, int]] = set()

    def identify(row: GenerationRow | GradingRow, occurrence: int) -> _PlannedItem:
        ids = tuple(skill_ids[_name_key(s)] for s in row.skills)
        topic_id = topic_ids[_name_key(row.topic)]
        item_id = Item(k=row.k, skill_ids=tuple(sorted(ids)), topic_id=topic_id).id
        if occurrence:  # the same combination twice in one round folder
            item_id = f"{item_id}-{occurrence + 1}"
        return items.setdefault(item_id, _PlannedItem(item_id, row.k, ids, topic_id))

    for src, grading, path in members:
        by_content: dict[tuple[Any, ...], list[GenerationRow]] = defaultdict(list)
        for gen in generations[src.records]:
            by_content[_content(gen)].append(gen)
        seen: dict[tuple[Any, ...], int] = defaultdict(int)
        for row in gradings[path]:
            content = _content(row)
            occurrence = seen[content]
            seen[content] += 1
            candidates = by_content.get(content, [])
            if occurrence >= len(candidates):
                raise ReferenceFormatError(
                    f"{row.file}:{row.line}: no row of {src.records} has these skills and "
                    f"topic ({', '.join(row.skills)}; {row.topic})"
                )
            generation = candidates[occurrence]
            if not generation.turns:
                raise ReferenceFormatError(
                    f"{generation.file}:{generation.line}: no conversation turns found"
                )
            generation.column(grading.column)  # the graded text must be there
            graded.add((src.records, generation.line))
            grades.append(
                _PlannedGrade(
                    item=identify(generation, occurrence),
                    gen_round=gen_numbers.index(src.generation_round),
                    grade_round=grade_numbers.index(grading.round),
                    generation=generation,
                    grading=row,
                    skill_ids=tuple(skill_ids[_name_key(s)] for s in row.skills),
                )
            )
    records = {src.records for src, _, _ in members}
    skipped = sum(
        1 for path in records for gen in generations[path] if (path, gen.line) not in graded
    )
    return _Plan(
        key=key,
        items=list(items.values()),
        grades=grades,
        generation_rounds=gen_numbers,
        grading_rounds=grade_numbers,
        folders=sorted({src.folder for src, _, _ in members}),
        skipped_generations=skipped,
    )


def _content(row: GenerationRow | GradingRow) -> tuple[Any, ...]:
    return (row.k, frozenset(_name_key(s) for s in row.skills), _name_key(row.topic))


# --- writing -------------------------------------------------------------------------------------


def _write(
    store: Store,
    plan: _Plan,
    catalog: Catalog,
    root: Path,
    catalog_sources: Sequence[str | Path],
    naming_penalty_on: bool,
) -> ImportedRun:
    key = plan.key
    ks = sorted({item.k for item in plan.items})
    per_k = [sum(1 for item in plan.items if item.k == k) for k in ks]
    identity = {
        "student": key.student,
        "judge": key.judge,
        "column": key.column,
        "format": key.grading_format,
        "seed": key.seed,
        "version": key.version,
        "rounds": sorted({(g.item.k, plan.generation_rounds[g.gen_round]) for g in plan.grades}),
        "grading_rounds": plan.grading_rounds,
        "catalog": catalog.content_hash,
        "naming_penalty": naming_penalty_on,
    }
    blob = json.dumps(identity, sort_keys=True)
    run_id = "ref-" + hashlib.sha256(blob.encode()).hexdigest()[:12]
    unknown = {"temperature": None, "max_tokens": None}
    config = {
        "protocol": PROTOCOL,
        "source": {
            "dir": str(root.resolve()),
            "folders": [_relative(f, root) for f in plan.folders],
            "student": key.student,
            "grading": f"by_{key.judge}_on_{key.column}_<round>_{key.grading_format}",
        },
        "reference": {
            "generation_rounds": plan.generation_rounds,
            "grading_rounds": plan.grading_rounds,
            "prompt_version": key.version,
            "grading_format": key.grading_format,
            "graded_column": key.column,
        },
        "student": key.student,
        "judges": [key.judge],
        "k": ks,
        "items": max(per_k, default=0),
        "generation_rounds": len(plan.generation_rounds),
        "grading_rounds": len(plan.grading_rounds),
        "seed": key.seed if key.seed is not None else 0,
        "catalog": [str(s) for s in catalog_sources] or [catalog.name],
        "templates": f"reference:{key.version}/{key.grading_format}",
        # The original scripts did not record their decoding settings with the files.
        "student_decoding": unknown,
        "judge_decoding": unknown,
        "structured": False,
        "parse_attempts": 1,
        "naming_penalty": naming_penalty_on,
        "split": None,
    }
    existed = store.ensure_run(run_id, config, catalog.content_hash, PROTOCOL)
    positions: dict[int, int] = defaultdict(int)
    rows = []
    for item in plan.items:
        rows.append((positions[item.k], item.item_id, item.k, item.skill_ids, item.topic_id))
        positions[item.k] += 1
    store.put_items(run_id, rows)

    parsed_cache: dict[tuple[str, tuple[str, ...]], ParsedVerdict | Unparsed] = {}
    judge_keys: set[str] = set()
    parsed = 0
    with store.transaction():
        written: set[tuple[str, int]] = set()
        for grade in plan.grades:
            item = grade.item
            gen_key = (item.item_id, grade.gen_round)
            answer = _graded_text(grade.generation, key.column)
            if gen_key not in written:
                written.add(gen_key)
                _put_generation(store, run_id, grade, answer, catalog, key.student, root)
            skills = [catalog.skill(s) for s in grade.skill_ids]
            rubric = build_rubric(skills, catalog.topic(item.topic_id))
            messages = _messages(grade.grading.system, [grade.grading.prompt])
            call = _call(
                key.judge, "judge", messages, grade.grading.reply, _where(grade.grading, root)
            )
            store.put_call(call)
            store.record_use(run_id, call.key, "judge", False)
            judge_keys.add(call.key)
            cache_key = (grade.grading.reply, tuple(c.id for c in rubric))
            if cache_key not in parsed_cache:
                parsed_cache[cache_key] = parse_verdict(grade.grading.reply, rubric)
            verdict = parsed_cache[cache_key]
            fields: dict[str, Any]
            if isinstance(verdict, ParsedVerdict):
                parsed += 1
                fields = {
                    "status": "parsed",
                    "method": f"text:{verdict.method}",
                    "verdicts": verdict.values,
                    "reason": None,
                }
            else:
                fields = {
                    "status": "unparsed",
                    "method": "none",
                    "verdicts": None,
                    "reason": verdict.reason,
                }
            store.put_grade(
                run_id,
                item.item_id,
                grade.gen_round,
                key.judge,
                grade.grade_round,
                attempts=1,
                call_keys=[call.key],
                **fields,
            )
            points, given = their_points(grade.grading, rubric)
            store.put_reference_points(
                run_id,
                item.item_id,
                grade.gen_round,
                key.judge,
                grade.grade_round,
                points=points,
                given=given,
                raw=grade.grading.points_cell,
                sentences=grade.grading.sentence_count,
                source=_where(grade.grading, root),
            )
    store.set_run_status(run_id, "done")
    return ImportedRun(
        run_id=run_id,
        student=key.student,
        judge=key.judge,
        k=ks,
        items=len(plan.items),
        generation_rounds=len(plan.generation_rounds),
        grading_rounds=len(plan.grading_rounds),
        judge_texts=len(plan.grades),
        distinct_judge_texts=len(judge_keys),
        parsed=parsed,
        unparsed=len(plan.grades) - parsed,
        existed=existed,
        skipped_generations=plan.skipped_generations,
    )


def their_points(row: GradingRow, rubric: Sequence[Criterion]) -> tuple[dict[str, float], int]:
    """The original scripts' point per criterion id, read as their aggregation read it.

    By position: the rubric's k skills in the order the row lists them, then topic, sense
    and sentence limit; a short list is filled with 0 and a long one cut; the last value
    is replaced by their own sentence-limit point. Also returns how many values were given.
    """
    values = list(row.points[: len(rubric)])
    given = len(values)
    values += [0.0] * (len(rubric) - given)
    if row.sentence_point is not None:
        values[-1] = row.sentence_point
    return {c.id: float(v) for c, v in zip(rubric, values, strict=True)}, given


def _graded_text(row: GenerationRow, column: str) -> str:
    """The text the judge saw: their `text_<i>` column, else our extraction of that turn."""
    text = row.column(column)
    if column.startswith("text_"):
        return text
    return extract_answer(text).answer


def _put_generation(
    store: Store,
    run_id: str,
    grade: _PlannedGrade,
    answer: str,
    catalog: Catalog,
    student: str,
    root: Path,
) -> None:
    row = grade.generation
    history: list[str] = []
    keys = []
    for turn in row.turns[:2]:
        messages = _messages(row.system, [*history, turn.user])
        call = _call(student, "student", messages, turn.assistant, _where(row, root))
        store.put_call(call)
        store.record_use(run_id, call.key, "student", False)
        keys.append(call.key)
        history += [turn.user, turn.assistant]
    extracted = extract_answer(row.turns[min(len(row.turns), 2) - 1].assistant)
    skills = [catalog.skill(s) for s in grade.item.skill_ids]
    store.put_generation(
        run_id,
        grade.item.item_id,
        grade.gen_round,
        turn1_key=keys[0],
        turn2_key=keys[-1],
        answer=answer,
        explanation=extracted.explanation,
        marker_found=extracted.marker_found,
        sentences=count_sentences(answer),
        named=naming_penalty(answer, skills),
    )


def _messages(system: str, turns: list[str]) -> list[dict[str, str]]:
    """Alternating user and assistant messages, after the system prompt if there was one."""
    messages = [{"role": "system", "content": system}] if system.strip() else []
    for i, content in enumerate(turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": content})
    return messages


def _call(
    model: str,
    role: str,
    messages: list[dict[str, str]],
    response: str,
    where: str,
) -> CallRecord:
    """A recorded call, addressed by its content (the same text imported twice is one call)."""
    blob = json.dumps(
        {"provider": PROVIDER, "model": model, "messages": messages, "response": response},
        sort_keys=True,
        ensure_ascii=False,
    )
    return CallRecord(
        key="ref-" + hashlib.sha256(blob.encode()).hexdigest(),
        provider=PROVIDER,
        model=model,
        role=role,
        messages=messages,
        settings={"imported_from": where},
        response=response,
        prompt_tokens=0,
        completion_tokens=0,
        structured="",
        finish_reason="",
        latency_s=0.0,
    )


def _where(row: GenerationRow | GradingRow, root: Path) -> str:
    """`file:line` of a row, the file relative to the imported folder."""
    return f"{_relative(Path(row.file), root)}:{row.line}"


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve())) or "."
    except ValueError:
        return str(path)
