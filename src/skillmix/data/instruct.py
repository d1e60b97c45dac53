"""Instruct-SkillMix (SPEC section 6): instruction-following data from skills a model names.

Stage 1, metacognition: ask the teacher for topics (domains of instructions), then for
each topic the instruction-following skills it needs, and for a list of query types.
Names are cleaned and deduplicated (case, punctuation, plurals, token-set near-duplicates)
and the result is a catalog (`skills_catalog.yaml`: skills with their topic as category,
topics) plus `query_types.yaml`.

Stage 2, per example, drawn from a recorded seed: a random pair of skills (from different
topics when possible) and a query type. In one conversation the teacher writes an
(instruction, response) pair needing both skills, critiques the response and rewrites
it; the record is [user: instruction, assistant: rewritten response]. A seeded fraction
of examples may instead get a low-effort "shirker" response (asked for separately) for
ablations.

Then unparseable, empty and truncated answers and near-duplicates are left out with a
reason, and the rest is exported with a data card. Every request goes through
`CallCache`: a killed run resumes without asking anything twice, a re-run is free, and
`estimate=True` walks the same steps to count what a run would send.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from skillmix.catalog.model import Catalog, Skill, Topic
from skillmix.data import instruct_prompts as ip
from skillmix.data.card import write_card
from skillmix.data.dedup import Rejection, dedupe
from skillmix.data.export import export_records
from skillmix.data.records import DataRecord
from skillmix.data.sft import EMBEDDED_WARNING
from skillmix.errors import BudgetError, SkillmixError
from skillmix.models import ChatRequest, Model, ModelError
from skillmix.models.settings import Settings
from skillmix.protocol.calls import BudgetExhausted, CallCache, CallStats
from skillmix.protocol.engine import derive_seed, gather_fail_fast
from skillmix.store import CallRecord, Store

PIPELINE = "instruct-skillmix"
REJECTION_REASONS = {
    "unparsed-pair": "no (instruction, response) pair could be read from the first turn",
    "empty-answer": "the final (refined or shirker) response is empty",
    "truncated": "the final response was cut off at --max-tokens",
    "near-duplicate": "instruction + response near-duplicate a kept example",
}
DEDUP_METHOD = (
    "MinHash-LSH over word 3-gram shingles of instruction + response, verified by exact Jaccard"
)
ROLE = "teacher"
TOPIC_CATEGORY = "domain"
NO_DEFINITION = "(the teacher gave no definition)"
NO_EXAMPLE = "(the teacher gave no example)"
FALLBACK_QUERY_TYPE = "open-ended request"
MAX_NAME_WORDS = 12  # a longer "name" is a sentence the parser picked up, not a name
# Called with (stage, done, total) as stage-1 answers ("catalog") and examples complete.
Progress = Callable[[str, int, int], None]


class InstructError(SkillmixError, RuntimeError):
    """The pipeline stopped; every answer so far is in the store and a re-run resumes."""


class InstructPaused(InstructError, BudgetError):
    """--max-cost was reached; re-running (with a new budget) continues where it stopped."""


class InstructConfig(BaseModel):
    """Everything that determines an Instruct-SkillMix dataset; its hash is the run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    teacher: str = "embedded"
    topics: int = Field(8, ge=1, description="topics (domains) to ask for")
    skills_per_topic: int = Field(10, ge=1)
    query_types: int = Field(16, ge=1)
    examples: int = Field(100, ge=0)
    shirker_fraction: float = Field(0.0, ge=0.0, le=1.0)
    dedup_threshold: float = Field(0.8, gt=0.0, le=1.0, description="shingle Jaccard")
    skill_similarity: float = Field(
        0.8, gt=0.0, le=1.0, description="token-set Jaccard at which two skill names are one"
    )
    seed: int = 0
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    list_max_tokens: int = Field(1024, ge=16, description="stage 1 answers")
    max_tokens: int = Field(2048, ge=16, description="each stage 2 turn")
    parse_attempts: int = Field(2, ge=1, description="draws before an answer is unparsed")
    structured: bool = True
    templates: str = "v1"

    def run_id(self, templates_version: str) -> str:
        blob = json.dumps(
            {**self.model_dump(mode="json"), "templates_version": templates_version},
            sort_keys=True,
        )
        return "instruct-" + hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def shirker_count(self) -> int:
        """Exactly this many examples get a shirker response (fraction x examples, rounded)."""
        return math.floor(self.shirker_fraction * self.examples + 0.5)


# --- parsing (pure) -----------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_BULLET = re.compile(r"^\s*(?:[-*•+]|\(?\d{1,3}[.):]|\(?[a-zA-Z][.)])\s+(?=\S)")
_MARKUP = re.compile(r"[*_`#]+")
_QUOTES = "\"'“”‘’«»"
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"\s*(:)?')
_FLAT_OBJECT = re.compile(r"\{[^{}]*\}")
_EXAMPLE = re.compile(r"\(?\s*\b(?:example|e\.g\.)\s*:\s*(.+?)\)?\s*$", re.I | re.S)
_NAME_SPLIT = re.compile(r"\s*:\s+|\s+[-–—]+\s+|\s*[–—]\s*")
_INSTRUCTION_MARK = re.compile(
    r"^[ \t#>*_]*(?:the[ \t]+)?(?:user[ \t]+)?(?:instruction|prompt)[ \t*_]*(?::|(?=\n)|$)[ \t*_]*",
    re.I | re.M,
)
_RESPONSE_MARK = re.compile(
    r"^[ \t#>*_]*(?:the[ \t]+)?(?:improved[ \t]+|revised[ \t]+|rewritten[ \t]+|final[ \t]+)?"
    r"(?:assistant[ \t]+)?(?:response|answer)[ \t*_]*(?::|(?=\n)|$)[ \t*_]*",
    re.I | re.M,
)
_PLACEHOLDER_KEYS = {
    ("topic",),
    ("skill",),
    ("skill", "name"),
    ("name",),
    ("query", "type"),
    ("type",),
}


def load_json(text: str) -> Any:
    """The JSON value in a reply (bare, fenced or surrounded by prose), or None."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        candidate = candidate.strip()
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
        for opener, closer in (("{", "}"), ("[", "]")):
            start, end = candidate.find(opener), candidate.rfind(closer)
            if 0 <= start < end:
                try:
                    return json.loads(candidate[start : end + 1])
                except json.JSONDecodeError:
                    continue
    return None


def _salvage_json(text: str) -> list[Any]:
    """Complete values of a truncated JSON list: flat objects, else string values."""
    objects: list[Any] = []
    for match in _FLAT_OBJECT.finditer(text):
        try:
            objects.append(json.loads(match.group(0)))
        except json.JSONDecodeError:
            continue
    if objects:
        return objects
    values: list[Any] = []
    for match in _STRING.finditer(text):
        if match.group(2):  # a key, not a value
            continue
        try:
            values.append(json.loads(f'"{match.group(1)}"'))
        except json.JSONDecodeError:
            values.append(match.group(1))
    return values


def _list_lines(text: str) -> list[str]:
    """Entries of a numbered or bulleted list; else plain lines; else comma-separated."""
    lines = [line for line in text.splitlines() if line.strip()]
    bulleted = [_BULLET.sub("", line).strip() for line in lines if _BULLET.match(line)]
    if bulleted:
        return bulleted
    plain = [line.strip() for line in lines if not line.rstrip().endswith(":")]
    if len(plain) == 1 and ("," in plain[0] or ";" in plain[0]):
        return [part.strip() for part in re.split(r"[;,]", plain[0]) if part.strip()]
    return plain


def parse_entries(text: str, key: str) -> list[Any]:
    """The entries of a list answer: `{key: [...]}` or `[...]` JSON, else list lines.

    Accepts fenced or prose-wrapped JSON, another key holding a list, JSON cut off at the
    token limit (its complete entries), numbered or bulleted lists and plain lines.
    """
    data = load_json(text)
    if isinstance(data, dict):
        lowered = {str(k).lower().replace(" ", "_"): v for k, v in data.items()}
        value = lowered.get(key)
        if not isinstance(value, list):
            value = next((v for v in data.values() if isinstance(v, list)), None)
        if isinstance(value, list):
            return value
        if data:
            return [data]  # a single entry, e.g. one skill object
    if isinstance(data, list):
        return data
    stripped = text.strip()
    if stripped.startswith(("{", "[", "```")):
        salvaged = _salvage_json(stripped)
        return [v for v in salvaged if not (isinstance(v, str) and v.lower() == key)]
    return _list_lines(text)


def clean_name(text: str) -> str:
    """`**2. Active listening.**` -> `Active listening`: no markup, numbering, quotes."""
    name = _MARKUP.sub("", text)
    name = _BULLET.sub("", name).strip()
    for _ in range(2):
        name = name.strip().strip(_QUOTES).strip().rstrip(".;:,!?").strip()
    return " ".join(name.split())


def _singular(word: str) -> str:
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def name_key(name: str) -> tuple[str, ...]:
    """What makes two names the same: lower-case alphanumeric words, singular."""
    return tuple(_singular(w) for w in re.findall(r"[a-z0-9]+", name.lower()))


def token_jaccard(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    sa, sb = set(a), set(b)
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def is_usable_name(raw: str, name: str) -> bool:
    """False for placeholders copied from the prompt and sentences posing as names."""
    if "<" in raw and ">" in raw:
        return False
    key = name_key(name)
    return bool(key) and key not in _PLACEHOLDER_KEYS and len(name.split()) <= MAX_NAME_WORDS


@dataclass(frozen=True)
class SkillDraft:
    """A skill as the teacher proposed it, before deduplication."""

    name: str
    definition: str
    example: str
    topic: str


def _text_field(entry: dict[str, Any], *keys: str) -> str:
    lowered = {str(k).lower(): v for k, v in entry.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, list):
            value = value[0] if value else ""
        if value is not None and str(value).strip():
            return " ".join(str(value).split())
    return ""


def parse_skill_entry(entry: Any, topic: str) -> tuple[SkillDraft | None, str]:
    """One skill from a JSON object or a `Name: definition Example: request` line.

    Returns (draft, "") or (None, the raw name that was dropped).
    """
    if isinstance(entry, dict):
        raw = _text_field(entry, "name", "skill", "skill_name", "title")
        definition = _text_field(entry, "definition", "description", "explanation")
        example = _text_field(entry, "example", "examples", "example_request")
    else:
        text = " ".join(str(entry).split())
        example = ""
        found = _EXAMPLE.search(text)
        if found:
            example, text = found.group(1).strip(), text[: found.start()]
        parts = _NAME_SPLIT.split(text, maxsplit=1)
        raw = parts[0]
        definition = parts[1].strip() if len(parts) > 1 else ""
    name = clean_name(raw)
    if not is_usable_name(raw, name):
        return None, raw
    definition = definition.strip().strip(_QUOTES).strip()
    example = example.strip().strip(_QUOTES).strip()
    if "<" in definition and ">" in definition:
        definition = ""
    if "<" in example and ">" in example:
        example = ""
    return SkillDraft(name, definition or NO_DEFINITION, example or NO_EXAMPLE, topic), ""


def parse_names(text: str, key: str) -> tuple[list[str], list[str]]:
    """Clean, distinct names from a list answer: (names, raw entries dropped)."""
    names: list[str] = []
    dropped: list[str] = []
    seen: set[tuple[str, ...]] = set()
    for entry in parse_entries(text, key):
        raw = entry if isinstance(entry, str) else _text_field(entry, "name", key, "type", "topic")
        raw = " ".join(str(raw).split())
        name = clean_name(raw)
        if not is_usable_name(raw, name):
            if raw:
                dropped.append(raw)
            continue
        if name_key(name) in seen:
            continue
        seen.add(name_key(name))
        names.append(name)
    return names, dropped


@dataclass(frozen=True)
class Merge:
    """A proposed skill merged into an earlier one (same name up to case, plural, order)."""

    name: str
    topic: str
    into: str
    similarity: float


def dedupe_skills(
    drafts: Sequence[SkillDraft], similarity: float = 0.8
) -> tuple[list[SkillDraft], list[Merge], dict[str, list[str]]]:
    """Keep the first of each group of same or near-same skill names.

    Two names are the same when their keys (lower-case words, singular) are equal or their
    token sets have Jaccard similarity >= `similarity`. Returns (kept drafts, merges, other
    surface forms of each kept name, to become its aliases).
    """
    kept: list[SkillDraft] = []
    keys: list[tuple[str, ...]] = []
    merges: list[Merge] = []
    aliases: dict[str, list[str]] = {}
    by_token: dict[str, list[int]] = {}
    for draft in drafts:
        key = name_key(draft.name)
        match: tuple[int, float] | None = None
        candidates = sorted({i for token in set(key) for i in by_token.get(token, ())})
        for i in candidates:
            score = 1.0 if keys[i] == key else token_jaccard(keys[i], key)
            if score >= similarity:
                match = (i, score)
                break
        if match is None:
            for token in set(key):
                by_token.setdefault(token, []).append(len(kept))
            kept.append(draft)
            keys.append(key)
            aliases[draft.name] = []
            continue
        target = kept[match[0]]
        merges.append(Merge(draft.name, draft.topic, target.name, match[1]))
        # Another wording (not just case, punctuation, plural or repetition) is an alias.
        forms = aliases[target.name]
        if tuple(dict.fromkeys(key)) != tuple(dict.fromkeys(keys[match[0]])) and all(
            draft.name.casefold() != f.casefold() for f in forms
        ):
            forms.append(draft.name)
    return kept, merges, aliases


@dataclass(frozen=True)
class ParsedPair:
    instruction: str
    response: str


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in _QUOTES:
        text = text[1:-1].strip()
    return text


def _json_text(data: Any, *keys: str) -> str | None:
    if not isinstance(data, dict):
        return None
    lowered = {str(k).lower(): v for k, v in data.items()}
    for key in keys:
        value = lowered.get(key)
        if isinstance(value, str):
            return value
    return None


_JSON_INSTRUCTION = re.compile(r'"instruction"\s*:\s*"((?:[^"\\]|\\.)*)"', re.I)
_JSON_RESPONSE_START = re.compile(r'"response"\s*:\s*"((?:[^"\\]|\\.)*)', re.I)


def _salvage_pair(text: str) -> tuple[str | None, str | None]:
    """A pair from JSON cut off inside the response (the refinement rewrites it anyway)."""
    instruction = _JSON_INSTRUCTION.search(text)
    response = _JSON_RESPONSE_START.search(text, instruction.end() if instruction else 0)
    if instruction is None or response is None:
        return None, None

    def decode(raw: str) -> str:
        try:
            return str(json.loads(f'"{raw.rstrip(chr(92))}"'))
        except json.JSONDecodeError:
            return raw

    return decode(instruction.group(1)), decode(response.group(1))


def parse_pair(text: str) -> ParsedPair | str:
    """(instruction, response) from JSON or `Instruction:` / `Response:` markers.

    Returns the pair, or a short reason why there is none. Markers may be bold, headed,
    in any case, or alone on their line.
    """
    data = load_json(text)
    instruction = _json_text(data, "instruction", "prompt", "query", "question", "input")
    response = _json_text(data, "response", "answer", "output")
    if (instruction is None or response is None) and text.lstrip().startswith("{"):
        instruction, response = _salvage_pair(text)
    if instruction is None or response is None:
        start = _INSTRUCTION_MARK.search(text)
        if start is None:
            if text.lstrip().startswith("{"):
                return "malformed or cut-off JSON, and no 'Instruction:' marker"
            return "no instruction found (neither JSON nor an 'Instruction:' marker)"
        end = _RESPONSE_MARK.search(text, start.end())
        if end is None:
            return "no response found after the instruction (no 'Response:' marker)"
        instruction = text[start.end() : end.start()]
        response = text[end.end() :]
    instruction, response = _unquote(instruction), _unquote(response)
    if not instruction:
        return "the instruction is empty"
    if not response:
        return "the response is empty"
    return ParsedPair(instruction, response)


def parse_response(text: str) -> str:
    """The rewritten (or shirker) response: JSON `response`, else the text without markers."""
    value = _json_text(load_json(text), "response", "answer", "improved_response", "output")
    if value is not None:
        return _unquote(value)
    if _INSTRUCTION_MARK.search(text):
        pair = parse_pair(text)
        if isinstance(pair, ParsedPair):
            return pair.response
    marker = _RESPONSE_MARK.match(text.lstrip())
    if marker:
        text = text.lstrip()[marker.end() :]
    return _unquote(text)


# --- catalog ------------------------------------------------------------------------------


@dataclass
class Extraction:
    """What stage 1 produced: the catalog, the query types and how they were cleaned."""

    catalog: Catalog
    query_types: list[str]
    proposed_skills: int = 0
    merges: list[Merge] = field(default_factory=list)
    dropped_names: list[str] = field(default_factory=list)
    unparsed_topics: list[str] = field(default_factory=list)  # topics with no skill parsed
    call_keys: list[str] = field(default_factory=list)

    @property
    def query_types_hash(self) -> str:
        blob = json.dumps(self.query_types, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        return {
            "topics": len(self.catalog.topics),
            "skills": len(self.catalog.skills),
            "query_types": len(self.query_types),
            "skills_proposed": self.proposed_skills,
            "skills_merged_as_duplicates": len(self.merges),
            "skill_names_dropped": len(self.dropped_names),
            "topics_without_parsed_skills": self.unparsed_topics,
            "skills_without_definition": sum(
                s.definition == NO_DEFINITION for s in self.catalog.skills
            ),
        }


def _slug(name: str) -> str:
    return "_".join(re.findall(r"[a-z0-9]+", name.lower())) or "x"


def build_catalog(
    topics: Sequence[str],
    drafts: Sequence[SkillDraft],
    similarity: float = 0.8,
    version: str = "",
) -> tuple[Catalog, list[Merge]]:
    """A catalog of the distinct skills (category: the topic that first proposed each)."""
    kept, merges, aliases = dedupe_skills(drafts, similarity)
    skills = tuple(
        Skill(
            id=_slug(d.name),
            name=d.name,
            category=d.topic,
            definition=d.definition,
            example=d.example,
            aliases=tuple(aliases[d.name]),
        )
        for d in kept
    )
    topic_rows = tuple(Topic(id=_slug(t), name=t, category=TOPIC_CATEGORY) for t in topics)
    return Catalog(PIPELINE, skills, topic_rows, version), merges


def write_catalog(catalog: Catalog, path: Path, header: str = "") -> None:
    """Write a catalog as YAML that `skillmix.catalog.load.load_catalog` reads back."""
    body = {
        "version": catalog.version,
        "skills": [s.to_dict() for s in catalog.skills],
        "topics": [t.to_dict() for t in catalog.topics],
    }
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)
    path.write_text((header + text) if header else text, encoding="utf-8")


# --- examples -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExamplePlan:
    """What one example asks for, fixed by the seed before any call is made."""

    index: int
    skills: tuple[Skill, ...]
    query_type: str
    shirker: bool
    seed: int


def pick_skills(skills: Sequence[Skill], rng: random.Random) -> tuple[Skill, ...]:
    """A random pair of distinct skills, from different topics when the catalog allows."""
    if len(skills) < 2:
        return tuple(skills)
    first = rng.choice(skills)
    others = [s for s in skills if s.category != first.category]
    if not others:
        others = [s for s in skills if s.id != first.id]
    return first, rng.choice(others)


def plan_examples(
    catalog: Catalog, query_types: Sequence[str], config: InstructConfig
) -> list[ExamplePlan]:
    """Every example's skills, query type and shirker flag, from the seed alone.

    Each example draws from its own seed, so asking for more examples keeps the first ones
    (and their cached answers). Exactly `config.shirker_count` examples are shirkers.
    """
    shirkers = set(
        random.Random(derive_seed(config.seed, PIPELINE, "shirkers", config.examples)).sample(
            range(config.examples), config.shirker_count
        )
    )
    plans = []
    for index in range(config.examples):
        seed = derive_seed(config.seed, PIPELINE, "example", index)
        rng = random.Random(seed)
        skills = pick_skills(catalog.skills, rng)
        plans.append(
            ExamplePlan(index, skills, rng.choice(list(query_types)), index in shirkers, seed)
        )
    return plans


def record_id(teacher: str, seed: int, index: int, messages: list[dict[str, str]]) -> str:
    blob = json.dumps([teacher, seed, index, messages], ensure_ascii=False, sort_keys=True)
    return "isx-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


# --- the pipeline -------------------------------------------------------------------------


@dataclass
class InstructResult:
    """What a run produced (or, in estimate mode, would send)."""

    run_id: str
    extraction: Extraction
    records: list[DataRecord]
    rejected: list[Rejection]
    stats: CallStats
    estimate: bool = False
    paths: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def _placeholder(record: CallRecord) -> str:
    """Text of the estimated length standing in for a synthetic (estimate-mode) reply."""
    return "word " * max(1, int(record.completion_tokens * 0.75))


class InstructPipeline:
    """One Instruct-SkillMix run: a config and a teacher, writing through a store."""

    def __init__(
        self,
        store: Store,
        config: InstructConfig,
        teacher: Model,
        *,
        settings: Settings | None = None,
        max_cost: float | None = None,
        estimate: bool = False,
        workers: int | None = None,
        progress: Progress | None = None,
    ):
        self.store = store
        self.config = config
        self.teacher = teacher
        self.templates = ip.load_instruct_templates(config.templates)
        self.run_id = config.run_id(self.templates.version_id)
        self.estimate = estimate
        self.calls = CallCache(
            store, run_id=self.run_id, settings=settings, max_cost=max_cost, estimate=estimate
        )
        self.workers = workers
        self.progress = progress or (lambda stage, done, total: None)
        self.structured = config.structured and teacher.supports_structured

    # --- calls ------------------------------------------------------------------------------

    async def _ask(
        self,
        messages: list[dict[str, str]],
        seed: int,
        *,
        max_tokens: int,
        schema: dict[str, Any] | None = None,
        attempt: int = 0,
    ) -> CallRecord:
        request = ChatRequest(
            tuple(messages),
            self.config.temperature,
            max_tokens,
            seed,
            schema if self.structured else None,
            sample=attempt,
        )
        return await self.calls.call(self.teacher, ROLE, request)

    async def _ask_parsed(
        self,
        messages: list[dict[str, str]],
        seed: int,
        parse: Callable[[CallRecord], Any],
        *,
        max_tokens: int,
        schema: dict[str, Any] | None = None,
        keys: list[str] | None = None,
    ) -> tuple[CallRecord, Any]:
        """Ask up to `parse_attempts` independent draws until `parse` returns a value.

        Returns the last record and the parsed value (None when every draw failed, and
        for synthetic records, which have no text).
        """
        record: CallRecord | None = None
        for attempt in range(self.config.parse_attempts):
            record = await self._ask(
                messages, seed, max_tokens=max_tokens, schema=schema, attempt=attempt
            )
            if record.synthetic:
                return record, None
            if keys is not None:
                keys.append(record.key)
            value = parse(record)
            if value is not None:
                return record, value
        assert record is not None
        return record, None

    # --- stage 1 ----------------------------------------------------------------------------

    async def extract(self) -> Extraction:
        """Topics, then each topic's skills and the query types, as a catalog."""
        cfg, t = self.config, self.templates
        total = cfg.topics + 2
        done = 0
        keys: list[str] = []

        def names_or_none(key: str) -> Callable[[CallRecord], list[str] | None]:
            return lambda record: parse_names(record.response, key)[0] or None

        record, topics = await self._ask_parsed(
            ip.topics_messages(t, cfg.topics, self.structured),
            derive_seed(cfg.seed, PIPELINE, "topics"),
            names_or_none("topics"),
            max_tokens=cfg.list_max_tokens,
            schema=ip.names_schema("topics", cfg.topics),
            keys=keys,
        )
        done += 1
        self.progress("catalog", done, total)
        if record.synthetic:
            topics = [f"topic {i + 1}" for i in range(cfg.topics)]
        elif not topics:
            raise InstructError(
                f"the teacher {cfg.teacher} named no topics in {cfg.parse_attempts} "
                f"tries; its last answer began: {record.response[:300]!r}"
            )
        topics = topics[: cfg.topics]
        dropped: list[str] = []
        total = len(topics) + 2

        async def skills_of(topic: str) -> list[SkillDraft]:
            nonlocal done

            def parse(record: CallRecord) -> list[SkillDraft] | None:
                drafts: list[SkillDraft] = []
                for entry in parse_entries(record.response, "skills"):
                    draft, raw = parse_skill_entry(entry, topic)
                    if draft is not None:
                        drafts.append(draft)
                    elif raw:
                        dropped.append(raw)
                return drafts or None

            record, drafts = await self._ask_parsed(
                ip.skills_messages(t, topic, cfg.skills_per_topic, self.structured),
                derive_seed(cfg.seed, PIPELINE, "skills", topic),
                parse,
                max_tokens=cfg.list_max_tokens,
                schema=ip.skills_schema(cfg.skills_per_topic),
                keys=keys,
            )
            done += 1
            self.progress("catalog", done, total)
            if record.synthetic:
                return [
                    SkillDraft(f"{topic} skill {j + 1}", "word " * 12, "word " * 12, topic)
                    for j in range(cfg.skills_per_topic)
                ]
            return list(drafts or [])[: cfg.skills_per_topic]

        async def query_types() -> list[str]:
            nonlocal done
            record, names = await self._ask_parsed(
                ip.query_types_messages(t, cfg.query_types, self.structured),
                derive_seed(cfg.seed, PIPELINE, "query-types"),
                names_or_none("query_types"),
                max_tokens=cfg.list_max_tokens,
                schema=ip.names_schema("query_types", cfg.query_types),
                keys=keys,
            )
            done += 1
            self.progress("catalog", done, total)
            if record.synthetic:
                return [f"query type {i + 1}" for i in range(cfg.query_types)]
            return list(names or [FALLBACK_QUERY_TYPE])[: cfg.query_types]

        per_topic, types = await asyncio.gather(
            asyncio.gather(*(skills_of(topic) for topic in topics)), query_types()
        )
        drafts = [d for topic_drafts in per_topic for d in topic_drafts]
        catalog, merges = build_catalog(
            topics, drafts, cfg.skill_similarity, version=self.templates.version_id
        )
        if not catalog.skills:
            raise InstructError(
                f"the teacher {cfg.teacher} named no usable skill for any of the topics "
                f"{', '.join(topics)}; try a stronger teacher or more --list-max-tokens"
            )
        return Extraction(
            catalog=catalog,
            query_types=list(types),
            proposed_skills=len(drafts),
            merges=merges,
            dropped_names=dropped,
            unparsed_topics=[
                topic for topic, found in zip(topics, per_topic, strict=True) if not found
            ],
            call_keys=keys,
        )

    # --- stage 2 ----------------------------------------------------------------------------

    async def example(self, plan: ExamplePlan, ex: Extraction) -> DataRecord | Rejection | None:
        """One example's conversation: pair, critique, refinement (or a shirker answer).

        Returns the record, a Rejection saying why there is none, or None in estimate mode.
        """
        cfg, t = self.config, self.templates
        skills = [(s.name, s.definition) for s in plan.skills]
        turn1 = ip.generate_messages(t, skills, plan.query_type, self.structured)
        keys: dict[str, str] = {}
        tried: list[str] = []
        pair_record, pair = await self._ask_parsed(
            turn1,
            plan.seed,
            lambda r: p if isinstance(p := parse_pair(r.response), ParsedPair) else None,
            max_tokens=cfg.max_tokens,
            schema=ip.pair_schema(),
            keys=tried,
        )
        if not pair_record.synthetic:
            keys["generate"] = pair_record.key

        def rejection(reason: str, detail: str, messages: list[dict[str, str]]) -> Rejection:
            return Rejection(self._record(plan, messages, keys, ex), reason, detail)

        if pair is None and not pair_record.synthetic:
            why = parse_pair(pair_record.response)
            cut = " (cut off at --max-tokens)" if pair_record.finish_reason == "length" else ""
            return rejection(
                "unparsed-pair",
                f"{len(tried)} draw(s): {why}{cut}",
                [*turn1, {"role": "assistant", "content": pair_record.response}],
            )
        instruction = pair.instruction if pair else _placeholder(pair_record)
        if plan.shirker:
            final = await self._ask(
                ip.shirker_messages(t, instruction), plan.seed + 3, max_tokens=cfg.max_tokens
            )
            keys["shirker"] = final.key
            response = None if final.synthetic else parse_response(final.response)
        else:
            pair_text = _placeholder(pair_record) if pair_record.synthetic else pair_record.response
            turn2 = ip.critique_messages(t, turn1, pair_text, skills, plan.query_type)
            critique = await self._ask(turn2, plan.seed + 1, max_tokens=cfg.max_tokens)
            keys["critique"] = critique.key
            critique_text = _placeholder(critique) if critique.synthetic else critique.response
            turn3 = ip.refine_messages(t, turn2, critique_text, self.structured)
            final, response = await self._ask_parsed(
                turn3,
                plan.seed + 2,
                lambda r: parse_response(r.response) or None,
                max_tokens=cfg.max_tokens,
                schema=ip.refine_schema(),
            )
            keys["refine"] = final.key
        if final.synthetic:
            return None
        messages = [
            {"role": "user", "content": instruction},
            {"role": "assistant", "content": response or ""},
        ]
        if not response:
            return rejection("empty-answer", "the final response is empty", messages)
        if final.finish_reason == "length":
            return rejection(
                "truncated", "the final response was cut off at --max-tokens", messages
            )
        return self._record(plan, messages, keys, ex)

    def _record(
        self,
        plan: ExamplePlan,
        messages: list[dict[str, str]],
        keys: dict[str, str],
        ex: Extraction,
    ) -> DataRecord:
        cfg = self.config
        return DataRecord(
            id=record_id(self.teacher.identity, cfg.seed, plan.index, messages),
            pipeline=PIPELINE,
            messages=messages,
            skills=[s.name for s in plan.skills],
            teacher=cfg.teacher,
            query_type=plan.query_type,
            k=len(plan.skills),
            shirker=plan.shirker,
            provenance={
                "run_id": self.run_id,
                "example": plan.index,
                "seed": cfg.seed,
                "example_seed": plan.seed,
                "skill_ids": [s.id for s in plan.skills],
                "skill_topics": [s.category for s in plan.skills],
                "catalog_hash": ex.catalog.content_hash,
                "query_types_hash": ex.query_types_hash,
                "templates": self.templates.version_id,
                "teacher_identity": self.teacher.identity,
                "structured": self.structured,
                "call_keys": dict(keys),
            },
        )

    def _worker_count(self, units: int) -> int:
        if self.workers:
            return max(1, min(self.workers, units))
        return max(1, min(units, 2 * self.teacher.max_concurrency, 4096))

    async def generate(
        self, ex: Extraction
    ) -> tuple[list[DataRecord], list[Rejection], BudgetExhausted | None]:
        """Every example, `workers` at a time; results in example order."""
        plans = plan_examples(ex.catalog, ex.query_types or [FALLBACK_QUERY_TYPE], self.config)
        outcomes: dict[int, DataRecord | Rejection | None] = {}
        pending: Iterator[ExamplePlan] = iter(plans)
        budget: list[BudgetExhausted] = []
        total = len(plans)
        self.progress("examples", 0, total)

        async def worker() -> None:
            for plan in pending:
                if budget:
                    return
                try:
                    outcomes[plan.index] = await self.example(plan, ex)
                except BudgetExhausted as err:
                    budget.append(err)
                    return
                self.progress("examples", len(outcomes), total)

        tasks = [asyncio.create_task(worker()) for _ in range(self._worker_count(len(plans)))]
        await gather_fail_fast(tasks)
        records: list[DataRecord] = []
        rejected: list[Rejection] = []
        for index in sorted(outcomes):
            outcome = outcomes[index]
            if isinstance(outcome, DataRecord):
                records.append(outcome)
            elif isinstance(outcome, Rejection):
                rejected.append(outcome)
        return records, rejected, budget[0] if budget else None

    # --- the whole run ----------------------------------------------------------------------

    async def run(self) -> InstructResult:
        """Stage 1 and stage 2 (without writing files; see `write_outputs`).

        Raises InstructPaused when --max-cost is reached and InstructError when the
        teacher fails; what was answered is kept and a re-run resumes. One process at a
        time runs a job: another one gets `RunLeased`, which names the process holding it.
        """
        if self.estimate:
            return await self._run()
        async with self.store.lease(self.run_id):
            return await self._run()

    async def _run(self) -> InstructResult:
        if not self.estimate:
            self.calls.check_prices([self.teacher])
        try:
            with self.store.group_commits():
                try:
                    ex = await self.extract()
                except BudgetExhausted as err:
                    raise self._paused(err) from err
                records, rejected, budget = await self.generate(ex)
        except ModelError as err:
            raise InstructError(
                f"{err}\nThe run stopped; {self.calls.stats.sent} new answers are saved in "
                f"{self.store.path}. Fix the problem and re-run the same command to resume."
            ) from err
        finally:
            await self.teacher.aclose()
        if budget is not None:
            raise self._paused(budget)
        if not self.estimate:
            self.store.put_catalog(ex.catalog)
        records, rejected = filter_records(records, rejected, self.config.dedup_threshold)
        return InstructResult(self.run_id, ex, records, rejected, self.calls.stats, self.estimate)

    def _paused(self, err: BudgetExhausted) -> InstructPaused:
        return InstructPaused(
            f"{err}. {self.calls.stats.sent} answers were bought and saved; run the same "
            "command again (with a new --max-cost) to continue."
        )


# --- filtering and output -------------------------------------------------------------------


def dedup_text(record: DataRecord) -> str:
    """What near-duplicate removal compares: the instruction and the response."""
    return "\n".join(m["content"] for m in record.messages)


def filter_records(
    records: list[DataRecord], rejected: list[Rejection], threshold: float
) -> tuple[list[DataRecord], list[Rejection]]:
    """Drop near-duplicates (instruction + response) after the earlier rejections."""
    kept, duplicates = dedupe(records, threshold, key=dedup_text)
    return kept, [*rejected, *duplicates]


def write_outputs(
    result: InstructResult, pipeline: InstructPipeline, out_dir: Path, formats: Sequence[str]
) -> dict[str, Path]:
    """Write the catalog, query types, records, rejections and data card into `out_dir`.

    Files: skills_catalog.yaml (loadable with `load_catalog`), query_types.yaml,
    extraction.json (every merged or dropped name), the export formats, rejected.jsonl
    (each left-out example with its reason), card.md and card.json.
    """
    ex, cfg = result.extraction, pipeline.config
    # Export first: a missing optional package fails before any file is written.
    paths: dict[str, Path] = dict(
        export_records(
            result.records,
            out_dir,
            formats,
            description=f"Instruct-SkillMix examples written by {cfg.teacher} ({result.run_id})",
        )
    )
    catalog_path = out_dir / "skills_catalog.yaml"
    write_catalog(
        ex.catalog,
        catalog_path,
        header=(
            f"# Instruct-SkillMix skills named by {cfg.teacher} (run {result.run_id}).\n"
            f"# Content hash {ex.catalog.content_hash}; category = the topic that named it.\n"
        ),
    )
    paths["catalog"] = catalog_path
    types_path = out_dir / "query_types.yaml"
    types_path.write_text(
        yaml.safe_dump(
            {"hash": ex.query_types_hash, "query_types": ex.query_types},
            sort_keys=False,
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    paths["query_types"] = types_path
    extraction_path = out_dir / "extraction.json"
    extraction_path.write_text(
        json.dumps(
            {
                **ex.summary(),
                "merges": [asdict(m) for m in ex.merges],
                "dropped_names": sorted(ex.dropped_names),
                "call_keys": sorted(ex.call_keys),
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    paths["extraction"] = extraction_path
    rejected_path = out_dir / "rejected.jsonl"
    with rejected_path.open("w", encoding="utf-8") as f:
        for r in result.rejected:
            row = {"reason": r.reason, "detail": r.detail, **r.record.to_dict()}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    paths["rejected"] = rejected_path
    result.meta = card_meta(result, pipeline)
    paths["card"], paths["card_json"] = write_card(
        result.records, result.rejected, result.meta, out_dir
    )
    result.paths = paths
    return paths


def card_meta(result: InstructResult, pipeline: InstructPipeline) -> dict[str, Any]:
    """What the data card says about how the data was made."""
    ex, cfg = result.extraction, pipeline.config
    warnings = []
    if cfg.teacher.split(":")[0] == "embedded":
        warnings.append(EMBEDDED_WARNING.format(role="Teacher", model=cfg.teacher))
    if len(ex.catalog.skills) < 2:
        warnings.append("The catalog has fewer than two skills: examples use a single skill.")
    if ex.query_types == [FALLBACK_QUERY_TYPE]:
        warnings.append(
            f"The teacher named no query types; every example uses '{FALLBACK_QUERY_TYPE}'."
        )
    usage: dict[str, dict[str, int]] = {}
    for row in pipeline.store.usage(result.run_id):
        entry = usage.setdefault(
            row["role"], {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0}
        )
        for name in entry:
            entry[name] += int(row[name] or 0)
    return {
        "pipeline": PIPELINE,
        "run_id": result.run_id,
        "teacher": cfg.teacher,
        "templates": pipeline.templates.version_id,
        "k": sorted({r.k for r in [*result.records] if r.k is not None}) or [2],
        "dedup_threshold": cfg.dedup_threshold,
        "dedup_method": DEDUP_METHOD,
        "catalog": {
            "name": "skills_catalog.yaml",
            "hash": ex.catalog.content_hash,
            "skills": len(ex.catalog.skills),
            "topics": len(ex.catalog.topics),
        },
        "skill_categories": {s.name: s.category for s in ex.catalog.skills},
        "usage": usage,
        "warnings": warnings,
        "query_types": ex.query_types,
        "query_types_hash": ex.query_types_hash,
        "extraction": ex.summary(),
        "examples_requested": cfg.examples,
        "shirker_fraction": cfg.shirker_fraction,
        "shirkers_planned": cfg.shirker_count,
        "seed": cfg.seed,
        "teacher_decoding": {
            "temperature": cfg.temperature,
            "max_tokens": cfg.max_tokens,
            "list_max_tokens": cfg.list_max_tokens,
            "structured": pipeline.structured,
            "parse_attempts": cfg.parse_attempts,
        },
        "rejection_reasons": {
            reason: REJECTION_REASONS.get(reason, reason)
            for reason in sorted({r.reason for r in result.rejected})
        },
    }
