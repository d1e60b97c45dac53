"""The cache key of a request is its content: it must never change for a request that was
cached before (every stored answer is found by it)."""

from __future__ import annotations

import hashlib
import json

from hypothesis import given
from hypothesis import strategies as st

from skillmix.models import ChatRequest

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)
messages = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": st.text()}),
    min_size=1,
    max_size=3,
)


def reference_key(request: ChatRequest, identity: str) -> str:
    """The key as it was first defined: one json.dumps of the whole object."""
    settings = json.dumps(
        {"model": identity, **request.settings()}, sort_keys=True, separators=(",", ":")
    )
    blob = f"{settings}\n{json.dumps(request.messages, ensure_ascii=False)}"
    return hashlib.sha256(blob.encode()).hexdigest()


@given(
    messages=messages,
    temperature=st.none() | st.floats(0, 2),
    max_tokens=st.integers(1, 4096),
    seed=st.none() | st.integers(0, 2**31),
    schema=st.none() | st.dictionaries(st.text(), json_values, max_size=4),
    sample=st.integers(0, 9),
    identity=st.text(),
)
def test_the_key_is_the_one_every_stored_answer_was_filed_under(
    messages, temperature, max_tokens, seed, schema, sample, identity
):
    request = ChatRequest(tuple(messages), temperature, max_tokens, seed, schema, sample)
    assert request.key(identity) == reference_key(request, identity)
    assert json.loads(request.settings_json) == request.settings()


@given(earlier=messages, later=messages, images=st.lists(st.text(), max_size=2))
def test_a_turn_that_reuses_the_earlier_turns_json_has_the_same_key(earlier, later, images):
    """A conversation's next turn takes the JSON of the messages it shares with the turn
    before (`following`): the key is the one it would have on its own."""
    first = ChatRequest(tuple(earlier), seed=1, images=tuple(images[:1]))
    first.key("m")
    alone = ChatRequest(tuple(earlier + later), seed=2, images=tuple(images[1:]))
    second = ChatRequest(alone.messages, seed=2, images=alone.images).following(first)
    assert second.messages_json == alone.messages_json
    assert second.key("m") == alone.key("m")
    if not alone.images:
        assert second.key("m") == reference_key(alone, "m")


def test_a_known_key_is_unchanged():
    """Pinned: the key this request had when it was first stored (schema and all)."""
    schema = {"type": "object", "properties": {"b": {"type": "integer"}, "a": {}}}
    request = ChatRequest(
        ({"role": "user", "content": "Write one sentence."},), 0.7, 64, 3, schema, 1
    )
    assert request.key("openai:m@http://h/v1") == (
        "719fb92a32cda1cb2f8da85eff30d86aea934cfb6726254fa67f5fae6746f880"
    )
