from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skillmix.catalog.load import BUILTIN, load_catalog
from skillmix.catalog.model import Skill
from skillmix.protocol.naming import _inflections, _variants, find_named_skill, naming_penalty

_BUILTIN = load_catalog([BUILTIN]).skills


@pytest.mark.parametrize(
    ("form", "answer", "expected"),
    [
        ("metaphor", "A metaphor hides here.", "metaphor"),
        ("metaphor", "Metaphors abound.", "Metaphors"),
        ("metaphor", "A metaphorical hive.", "metaphorical"),
        ("metaphor", "Speaking metaphorically, bees are clerks.", "metaphorically"),
        ("Metaphor", "A METAPHOR.", "METAPHOR"),
        ("red herring", "Two red herrings swam by.", "red herrings"),
        ("red herring", "A red-herring argument.", "red-herring"),
        ("red herring", "A red\nherring.", "red\nherring"),
        ("hyperbole", "Hyperbolic claims about honey.", "Hyperbolic"),
        ("irony", "How ironic.", "ironic"),
        ("irony", "Ironically, the bees left.", "Ironically"),
        ("irony", "Such ironies.", "ironies"),
        ("ad hominem", "An ad-hominem attack.", "ad-hominem"),
        ("ad hominem", "Ad hominem arguments.", "Ad hominem"),
        ("pun", "A pun on honey.", "pun"),
        ("pun", "Puns everywhere.", "Puns"),
        ("pun", "Stop punning.", "punning"),
        ("sarcasm", "She said it sarcastically.", "sarcastically"),
        ("euphemism", "A euphemistic phrase.", "euphemistic"),
        ("analogy", "An analogous case.", "analogous"),
        ("hypothesis", "A hypothetical hive.", "hypothetical"),
        ("personification", "The hive, personified.", "personified"),
        ("exaggeration", "An exaggerated claim.", "exaggerated"),
        ("fallacy", "A fallacious claim.", "fallacious"),
        ("satire", "A satirical piece.", "satirical"),
        ("devil's advocate", "Playing devil’s advocate.", "devil’s advocate"),
        ("straw man (fallacy)", "That is a straw man.", "straw man"),
        ("modus ponens (MP)", "By modus ponens (MP), yes.", "modus ponens (MP)"),
        ("C++ (language)", "Written in C++ today.", "C++"),
    ],
)
def test_named(form: str, answer: str, expected: str) -> None:
    assert find_named_skill(answer, [form]) == expected


@pytest.mark.parametrize(
    ("form", "answer"),
    [
        ("metaphor", "metaphorpig"),
        ("metaphor", "A simile, not the other thing."),
        ("pun", "A punch to the hive."),
        ("pun", "The bees spun silk."),
        ("pun", "A puny bee."),
        ("pun", "The Punic Wars."),
        ("pun", "Punishment."),
        ("irony", "She was ironing."),
        ("irony", "An iron gate."),
        ("red herring", "A herring, red and small."),
        ("red herring", "A red bee chased a herring."),
        ("ad hominem", "An ad for hominem."),
        ("hyperbole", "A hyper bee."),
        ("statistical syllogism", "A syllogism."),
        ("", "Anything at all."),
    ],
)
def test_not_named(form: str, answer: str) -> None:
    assert find_named_skill(answer, [form]) is None


def test_any_alias_names_the_skill_and_the_earliest_match_wins() -> None:
    forms = ["self-serving bias", "self-serving attribution"]
    answer = "A self-serving attribution, a self-serving bias."
    assert find_named_skill(answer, forms) == "self-serving attribution"


def test_naming_penalty_maps_skill_ids_to_matches() -> None:
    skills = [
        Skill("metaphor", "Metaphor", "literary", "d", "e"),
        Skill("red_herring", "Red herring", "rhetorical", "d", "e", aliases=("distraction",)),
        Skill("pun", "Pun", "literary", "d", "e"),
    ]
    answer = "The hive, metaphorically a fortress, ignored every distraction."
    assert naming_penalty(answer, skills) == {
        "metaphor": "metaphorically",
        "red_herring": "distraction",
    }
    assert naming_penalty("Bees hum.", skills) == {}


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=10)


@given(st.lists(_word, min_size=1, max_size=3), _word, _word, st.sampled_from([" ", "-"]))
def test_a_form_is_found_between_words(
    form_words: list[str], before: str, after: str, joiner: str
) -> None:
    form = " ".join(form_words)
    answer = f"{before} {joiner.join(form_words).upper()} {after}."
    found = find_named_skill(answer, [form])
    assert found is not None
    assert found in answer


@given(st.lists(_word, min_size=1, max_size=3), st.text(alphabet="abcxyz", min_size=1))
def test_a_form_glued_to_a_longer_word_is_not_found(form_words: list[str], glue: str) -> None:
    form = " ".join(form_words)
    assert find_named_skill(f"{glue}{form}", [form]) is None


@given(st.text(max_size=200), st.lists(st.text(max_size=30), max_size=4))
def test_never_raises_and_returns_a_slice(answer: str, forms: list[str]) -> None:
    found = find_named_skill(answer, forms)
    assert found is None or found in answer


def _every_pattern(answer: str, forms: list[str]) -> str | None:
    """`find_named_skill` without its needles: every variant's pattern, compiled."""
    best = None
    for form in forms:
        for variant in _variants(form):
            match = variant.pattern.search(answer) if variant.pattern else None
            if match and (best is None or (match.start(), -match.end()) < best):
                best = (match.start(), -match.end())
    return None if best is None else answer[best[0] : -best[1]]


def test_the_needles_never_hide_a_named_skill():
    """Every inflected or derived form of every skill of the built-in catalog, in any
    case, with either apostrophe, inside an answer: found as with every pattern compiled."""
    checked = 0
    for skill in _BUILTIN:
        for form in skill.surface_forms:
            last = re.split(r"[\s\-‐‑–]+", form.strip())[-1].lower()
            head = form.strip()[: len(form.strip()) - len(last)]
            for written in sorted(_inflections(last))[:12]:
                named = head + written
                for text in (named, named.upper(), named.replace("'", "’")):
                    answer = f"So, {text}: it was there."
                    expected = _every_pattern(answer, list(skill.surface_forms))
                    assert find_named_skill(answer, skill.surface_forms) == expected
                    checked += expected is not None
    assert checked > 1000


@given(st.text(max_size=120), st.sampled_from([f for s in _BUILTIN for f in s.surface_forms]))
def test_the_needles_agree_with_every_pattern_on_any_text(answer: str, form: str) -> None:
    assert find_named_skill(answer, [form]) == _every_pattern(answer, [form])
    assert find_named_skill(answer + form.upper(), [form]) == _every_pattern(
        answer + form.upper(), [form]
    )


def test_an_answer_without_the_needle_compiles_no_pattern():
    form = "synecdoche (figure of speech)"
    assert find_named_skill("Bees hum over the clover.", [form]) is None
    assert all("pattern" not in vars(v) for v in _variants(form))  # never compiled
    assert find_named_skill("A synecdochic hive.", [form]) == "synecdochic"
