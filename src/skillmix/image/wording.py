"""How a concept reads in a sample: its phrase for the prompt writer and its yes/no question.

Templates are `str.format` strings with these placeholders:

    {concept}        the concept's name                 red, to the left of
    {object}         the main object                    cat
    {objects}        its plural                         cats
    {the_object}     "the" + the object, plural when there are several   the cat / the cats
    {a_object}       "a"/"an" + the object              a cat, an owl
    {reference}      the reference object of a relation dog
    {the_reference}  "the" + the reference object       the dog
    {a_reference}    "a"/"an" + the reference object    a dog
    {be}             "is" or "are" (agrees with the_object)
    {does}           "does" or "do"
    {has}            "has" or "have"

A question's first letter is capitalised. The reference placeholders are for relation
categories only (the loader checks every template against these rules).
"""

from __future__ import annotations

import string

from skillmix.image.concepts import DEFAULT_PHRASES, DEFAULT_QUESTIONS, Category, Concept

PLACEHOLDERS = (
    "concept", "object", "objects", "the_object", "a_object", "reference", "the_reference",
    "a_reference", "be", "does", "has",
)  # fmt: skip
REFERENCE_PLACEHOLDERS = ("reference", "the_reference", "a_reference")


def plural(concept: Concept) -> str:
    """The object's plural: its `plural` field, else the regular English one."""
    if concept.plural:
        return concept.plural
    name = concept.name
    if name.endswith(("s", "x", "z", "ch", "sh")):
        return name + "es"
    if len(name) > 1 and name.endswith("y") and name[-2] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


def article(concept: Concept) -> str:
    """ "a" or "an" before the object: its `article` field, else by its first letter."""
    if concept.article:
        return concept.article
    return "an" if concept.name[:1].lower() in "aeiou" else "a"


def placeholders(template: str) -> set[str]:
    """The placeholder names a template uses (`ValueError` if it is malformed)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def fill(
    template: str,
    concept: Concept,
    main: Concept,
    *,
    count: int = 1,
    reference: Concept | None = None,
) -> str:
    """`template` for `concept` about `main` (shown `count` times, next to `reference`)."""
    several = count != 1
    values = {
        "concept": concept.name,
        "object": main.name,
        "objects": plural(main),
        "the_object": f"the {plural(main) if several else main.name}",
        "a_object": f"{article(main)} {main.name}",
        "be": "are" if several else "is",
        "does": "do" if several else "does",
        "has": "have" if several else "has",
        "reference": reference.name if reference else "",
        "the_reference": f"the {reference.name}" if reference else "",
        "a_reference": f"{article(reference)} {reference.name}" if reference else "",
    }
    return " ".join(template.format(**values).split())


def question_template(concept: Concept, category: Category) -> str:
    return concept.question or category.question or DEFAULT_QUESTIONS.get(category.role, "")


def phrase_template(concept: Concept, category: Category) -> str:
    return concept.phrase or category.phrase or DEFAULT_PHRASES.get(category.role, "")


def question(
    concept: Concept,
    category: Category,
    main: Concept,
    *,
    count: int = 1,
    reference: Concept | None = None,
) -> str:
    """The yes/no question that checks `concept` in an image: "Is the cat red?"."""
    text = fill(
        question_template(concept, category), concept, main, count=count, reference=reference
    )
    return text[:1].upper() + text[1:]


def phrase(
    concept: Concept,
    category: Category,
    main: Concept,
    *,
    count: int = 1,
    reference: Concept | None = None,
) -> str:
    """How the prompt writer is told about `concept`: "red", "to the left of a dog"."""
    return fill(phrase_template(concept, category), concept, main, count=count, reference=reference)
