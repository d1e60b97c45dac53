"""Prompt templates as data: template sets of `.txt` files with `$field` placeholders.

A run names its set with `--templates`: a built-in set (`v2`, the default; `v1`, kept so
old runs still report and re-run), any folder in the same layout, or the original
Skill-Mix scripts' JSON prompt files (`--templates-from-reference DIR`). Every result
records `TemplateSet.version_id`: the set's name plus a hash of its files, so an edited
template can never be confused with the published one.

Layout of a set (one file per template):

- `generate_turn1.txt`, `generate_turn2.txt` (and `generate_turn3.txt`, ...): the
  student's user turns; the answer to the last one is graded;
- `skill_block.txt`: how one skill is listed (`$name`, `$definition`, `$example`);
- `grade.txt`: the judge's prompt;
- `format_json.txt`, `format_text.txt`, `format_table.txt`: how the judge is asked to
  write its verdict (JSON for constrained decoding, one line per criterion, or the
  published table);
- optional: `naming_instruction.txt` (`--tell-not-to-name`), `skill_definition.txt` and
  `skill_entry.txt` (other layouts of one skill).

Fields of the student's turns and the judge's prompt: `$topic`, `$k`, `$k_words`,
`$skill_names` ("a, b and c"), `$skill_list` ("a, b, c"), `$skill_block`,
`$skill_definitions`, `$skill_entries`, `$max_sentences` (2), `$sentence_word`,
`$sentence_limit` ("two sentences"), `$naming_instruction`; the judge's prompt also has
`$answer`, `$rubric` (numbered criteria, or one `rubric_line.txt` each: `$number`,
`$label`), `$rubric_items` (comma-separated criteria) and `$format_instructions`. A skill
template may also use `$number` (its place in the list).

`prompts.variants` generates format variants of a set (separators, casing, list markers,
rubric layout, verdict format, order) for `skillmix spread`: `variant:<choices>:<set>`.
"""

from __future__ import annotations

from skillmix.prompts._messages import (
    Message,
    generation_turn1,
    generation_turn2,
    grading,
    student_turns,
    tagging,
    task_fields,
)
from skillmix.prompts._reference import load_reference_templates
from skillmix.prompts._sets import (
    DEFAULT_TEMPLATES,
    DEFAULT_VERSION,
    EXTRA_TEMPLATE_NAMES,
    OPTIONAL_TEMPLATE_NAMES,
    REFERENCE_PREFIX,
    TEMPLATE_NAMES,
    VARIANT_PREFIX,
    JudgeFormat,
    TemplateError,
    TemplateSet,
    builtin_names,
    builtin_subset,
    load_templates,
    template_spec,
)

__all__ = [
    "DEFAULT_TEMPLATES",
    "DEFAULT_VERSION",
    "EXTRA_TEMPLATE_NAMES",
    "OPTIONAL_TEMPLATE_NAMES",
    "REFERENCE_PREFIX",
    "TEMPLATE_NAMES",
    "VARIANT_PREFIX",
    "JudgeFormat",
    "Message",
    "TemplateError",
    "TemplateSet",
    "builtin_names",
    "builtin_subset",
    "generation_turn1",
    "generation_turn2",
    "grading",
    "load_reference_templates",
    "load_templates",
    "student_turns",
    "tagging",
    "task_fields",
    "template_spec",
]
