from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pysbd.lang.english import English

from skillmix.protocol.sentences import count_sentences, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # abbreviations in mid-sentence
        ("Use tools, e.g. a smoker, i.e. a can. Then wait.", 2),
        ("We met Dr. Smith and Mr. Jones at the hive. They were late.", 2),
        ("Bring gloves, veils, etc. to the hive. It helps.", 2),
        ("The U.S. has many beekeepers. They are busy.", 2),
        ("The U.S.A. is big. Canada too.", 2),
        ("It weighs approx. 3 kg. Fine.", 2),
        ("cf. the hive. Fine.", 2),
        # initials and decimals
        ("J. R. R. Tolkien wrote books. He liked bees.", 2),
        ("The hive weighed 3.5 kg on average. It was heavy.", 2),
        ("Honey costs $3.50 per jar. Buy it.", 2),
        # ellipses
        ("Wait... the bees are back.", 1),
        ("I wonder... Maybe not.", 2),
        ("I wonder… Maybe not.", 2),
        ("Bees. . . are good.", 1),
        # quotes
        ('"Stop!" she said.', 1),
        ('He said "go." Then he left.', 2),
        ("He said “go.” Then he left.", 2),
        ("I said ‘go.’ Then left.", 2),
        ('"The bees hum." "They fly."', 2),
        ('The end." Next one.', 2),
        # several sentences inside one quotation each count
        ('He said, "It rains. We stay. Bring tea."', 3),
        ("He said, “It rains. We stay. Bring tea.”", 3),
        ('"It rains. We stay," she said.', 2),
        ('The sign read "No entry. Staff only." We left.', 3),
        ('She said "Dr. Smith is here. Come in."', 2),
        ('He said "it rains. we stay."', 2),
        ('He said "we met at 5 p.m. then left."', 1),
        ('He shouted "Stop! Now!" and ran.', 2),
        ('A 5" board. A 6" board.', 2),
        # terminators
        ("Is it? Yes! Fine.", 3),
        ("Hello!!! World. Yes.", 3),
        ("The bees hummed.Then they slept.", 2),
        ("See www.Example.com today.", 1),
        # lowercase starts
        ("the bees hummed. then the keeper smiled.", 2),
        ("We left at 5 p.m. then we ate.", 1),
        # newlines
        ("First line without period\nSecond line", 2),
        ("First line.\nSecond line.", 2),
        ("Para one.\n\nPara two.", 2),
        ("The bees hummed.\r\nThe keeper smiled.", 2),
        ("The bees hummed over\nthe meadow.", 1),
        ("Roses are red,\nViolets are blue.", 1),
        ("---\nThe bees hum.\n---", 1),
        # lists and headings
        ("- item one\n- item two\n- item three", 3),
        ("1. First point\n2. Second point", 2),
        ("* Bees fly\n* Bees sting", 2),
        ("## Title\nThe bees hum. They fly.", 3),
        ("A. Smith kept bees.\nB. Jones did not.", 2),
        # nothing to count
        ("", 0),
        ("   ", 0),
        ("\n\n", 0),
        ("...", 0),
        ('"', 0),
    ],
)
def test_count_sentences(text: str, expected: int) -> None:
    assert count_sentences(text) == expected


def test_split_sentences_returns_original_text() -> None:
    text = "He said “go.” Then he left.\n\n- The bees. . . hummed.\n* Dr. Who? No idea."
    assert split_sentences(text) == [
        "He said “go.”",
        "Then he left.",
        "The bees. . . hummed.",
        "Dr. Who?",
        "No idea.",
    ]


def test_quoted_sentences_are_split_where_they_end() -> None:
    text = 'The keeper smiled, "The hive is strong. The queen is laying." Then rain came.'
    assert split_sentences(text) == [
        'The keeper smiled, "The hive is strong.',
        'The queen is laying."',
        "Then rain came.",
    ]


def test_soft_wrapped_sentence_keeps_its_line_break() -> None:
    assert split_sentences("The bees hummed over\nthe meadow. Then rain.") == [
        "The bees hummed over\nthe meadow.",
        "Then rain.",
    ]


_ABBREVIATIONS = {a.lower() for a in English.Abbreviation.ABBREVIATIONS} | {
    "approx", "appx", "ca", "cf", "eg", "ie", "fig", "figs", "no", "nos", "vol", "vols", "pp",
    "ch", "sec", "eq", "art", "ref", "vs", "viz", "esp", "incl", "est", "op", "etc",
}  # fmt: skip

_words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=9)


@st.composite
def _sentence(draw: st.DrawFn) -> str:
    words = draw(st.lists(_words, min_size=2, max_size=8))
    assume(words[-1] not in _ABBREVIATIONS)
    terminator = draw(st.sampled_from([".", "!", "?"]))
    return words[0].capitalize() + " " + " ".join(words[1:]) + terminator


@given(
    st.lists(_sentence(), min_size=0, max_size=8),
    st.sampled_from([" ", "  ", "\n", "\n\n", " \n"]),
)
def test_joined_simple_sentences_are_counted(sentences: list[str], separator: str) -> None:
    assert count_sentences(separator.join(sentences)) == len(sentences)
    assert split_sentences(separator.join(sentences)) == sentences


@given(st.text(max_size=400))
def test_sentences_are_stripped_slices_in_order(text: str) -> None:
    position = 0
    for sentence in split_sentences(text):
        assert sentence
        assert sentence == sentence.strip()
        found = text.find(sentence, position)
        assert found >= 0
        position = found + len(sentence)


@given(st.text(max_size=400))
def test_count_is_deterministic(text: str) -> None:
    assert count_sentences(text) == count_sentences(text) == len(split_sentences(text))


@given(st.text(alphabet=st.sampled_from(list("ab .!?\n'\"()…,;-")), max_size=40))
def test_fast_path_agrees_with_the_segmenter(text):
    assert count_sentences(text) == len(split_sentences(text))


@given(
    st.lists(_sentence(), min_size=1, max_size=5),
    st.sampled_from(["He said, ", "The note read ", ""]),
    st.sampled_from([('"', '"'), ("“", "”")]),
)
def test_each_quoted_sentence_counts(quoted: list[str], lead: str, marks: tuple[str, str]) -> None:
    text = f"{lead}{marks[0]}{' '.join(quoted)}{marks[1]}"
    assert count_sentences(text) == len(quoted)
