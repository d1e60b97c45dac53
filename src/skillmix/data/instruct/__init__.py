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
reason, and the rest is exported with a data card. Both stages run on the runtime's
worker pool and every request goes through `CallCache`: a killed run resumes without
asking anything twice, a re-run is free, --max-cost pauses it as it does an evaluation,
and `estimate=True` walks the same steps to count what a run would send.

Modules, one job each: `config` (the typed config), `prompts` (templates, messages and
JSON schemas), `parse` (reading the teacher's replies), `catalog` (stage 1's skills
merged into a catalog), `plan` (each example's skills, query type and shirker flag, from
the seed), `pipeline` (both stages on the worker pool) and `outputs` (records, the
near-duplicate filter, the data card's facts and the files).
"""

from skillmix.data.instruct.catalog import (
    TOPIC_CATEGORY,
    Extraction,
    Merge,
    build_catalog,
    dedupe_skills,
)
from skillmix.data.instruct.config import PIPELINE, InstructConfig
from skillmix.data.instruct.outputs import (
    DEDUP_METHOD,
    REJECTION_REASONS,
    InstructResult,
    card_meta,
    dedup_text,
    example_record,
    filter_records,
    record_id,
    write_catalog,
    write_outputs,
)
from skillmix.data.instruct.parse import (
    NO_DEFINITION,
    NO_EXAMPLE,
    ParsedPair,
    SkillDraft,
    clean_name,
    is_usable_name,
    load_json,
    name_key,
    parse_entries,
    parse_names,
    parse_pair,
    parse_response,
    parse_skill_entry,
    token_jaccard,
)
from skillmix.data.instruct.pipeline import InstructError, InstructPipeline
from skillmix.data.instruct.plan import (
    FALLBACK_QUERY_TYPE,
    ExamplePlan,
    pick_skills,
    plan_examples,
)

__all__ = [
    "DEDUP_METHOD",
    "FALLBACK_QUERY_TYPE",
    "NO_DEFINITION",
    "NO_EXAMPLE",
    "PIPELINE",
    "REJECTION_REASONS",
    "TOPIC_CATEGORY",
    "ExamplePlan",
    "Extraction",
    "InstructConfig",
    "InstructError",
    "InstructPipeline",
    "InstructResult",
    "Merge",
    "ParsedPair",
    "SkillDraft",
    "build_catalog",
    "card_meta",
    "clean_name",
    "dedup_text",
    "dedupe_skills",
    "example_record",
    "filter_records",
    "is_usable_name",
    "load_json",
    "name_key",
    "parse_entries",
    "parse_names",
    "parse_pair",
    "parse_response",
    "parse_skill_entry",
    "pick_skills",
    "plan_examples",
    "record_id",
    "token_jaccard",
    "write_catalog",
    "write_outputs",
]
