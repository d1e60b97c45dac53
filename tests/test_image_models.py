"""Images in requests, the image store and the image generators, against real HTTP servers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path

import pytest

from image_server import ImageWorld, analyse, answer, plan, render
from skillmix.errors import InputError, SkillmixError, StoreError
from skillmix.image.diffusers_images import DiffusersImageModel, parse_size
from skillmix.image.generators import parse_generator_spec, resolve_generator
from skillmix.image.image_store import ImageStore, NotAnImage, image_ref, images_folder
from skillmix.image.openai_images import OpenAIImagesModel
from skillmix.image.vision import VisionJudge
from skillmix.models import ChatRequest, ModelError, UnknownModelError, resolve_model
from skillmix.store import Store

PNG = render(plan("Two large red round cats.", wrong_every=0))


# --- requests with images ------------------------------------------------------------------------


def test_text_requests_keep_their_exact_cache_keys():
    """Keys computed before `ChatRequest.images` existed: every stored answer still counts."""
    plain = ChatRequest(
        (
            {"role": "system", "content": "You are a judge."},
            {"role": "user", "content": "Is the cat red? Ünïcode ✓"},
        )
    )
    tuned = ChatRequest(
        ({"role": "user", "content": "Write."},),
        temperature=0.7,
        max_tokens=64,
        seed=42,
        json_schema={
            "type": "object",
            "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
        },
        sample=2,
    )
    endpoint = "openai:judge@http://127.0.0.1:8000/v1"
    assert plain.key(endpoint) == "f143fd0e9b3e034ff7d494f40cd2a1ea15112df0f088e7966df55a00844e015a"
    assert tuned.key(endpoint) == "838069be7a9ecd4a0fc536a1a8afc618567092bcf7579ce5b98261011b911d88"
    assert plain.messages_json == json.dumps(plain.messages, ensure_ascii=False)
    assert plain.wire_messages() == list(plain.messages)


def test_images_go_with_the_last_message_as_image_url_parts():
    text = ChatRequest(({"role": "system", "content": "s"}, {"role": "user", "content": "Red?"}))
    seen = ChatRequest(text.messages, images=("data:image/png;base64,AAAA",))
    assert json.loads(seen.messages_json) == [
        {"role": "system", "content": "s"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Red?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ]
    assert seen.key("m") != text.key("m")
    assert seen.settings() == text.settings()
    other = ChatRequest(text.messages, images=("data:image/png;base64,BBBB",))
    assert other.key("m") != seen.key("m")


# --- the image store ------------------------------------------------------------------------------


def test_the_image_store_keeps_images_by_hash(tmp_path: Path):
    images = ImageStore(tmp_path / "images")
    info = images.put(PNG)
    assert info.sha256 == hashlib.sha256(PNG).hexdigest()
    assert (info.width, info.height, info.mime) == (480, 480, "image/png")
    path = images.find(info.sha256)
    assert path == tmp_path / "images" / info.sha256[:2] / f"{info.sha256[2:]}.png"
    assert path is not None and path.read_bytes() == PNG
    assert images.put(PNG) == info  # idempotent
    assert images.data_url(info.sha256) == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert images.find("0" * 64) is None and images.find("../etc/passwd") is None
    assert not list((tmp_path / "images").rglob(".incoming-*"))
    with pytest.raises(NotAnImage, match="not a PNG, JPEG, WebP or GIF"):
        images.put(b"<html>no</html>")
    with pytest.raises(StoreError, match="is not in") as caught:
        images.read("ab" * 32)
    assert "put it back" in caught.value.hint


def test_images_live_beside_the_store_on_both_backends(store_at, tmp_path: Path):
    store = Store(store_at())
    folder = images_folder(store)
    assert folder == Path(f"{store.path}.images")
    if store_at.backend == "sqlite":
        assert folder == tmp_path / "store.sqlite.images"
    else:  # the same per-machine cache folder as the store's side file
        assert folder.name.startswith("postgresql-") and folder.name.endswith(".images")
    store.close()


# --- the vision judge -----------------------------------------------------------------------------


def test_the_vision_judge_sends_the_image_as_a_data_url(tmp_path: Path):
    images = ImageStore(tmp_path / "images")
    digest = images.put(PNG).sha256
    with ImageWorld("judge") as server:
        judge = VisionJudge(resolve_model(server.spec()), images)
        assert judge.identity == resolve_model(server.spec()).identity
        questions = {
            "Are the cats red?": "Yes.",
            "Are the cats blue?": "No.",
            "Are there exactly two cats?": "Yes.",
            "Are the cats round?": "Yes.",
        }

        async def ask(question: str) -> str:
            request = ChatRequest(
                ({"role": "user", "content": question},), seed=1, images=(image_ref(digest),)
            )
            try:
                return (await judge.complete(request)).text
            finally:
                await judge.aclose()

        for question, expected in questions.items():
            assert asyncio.run(ask(question)) == expected
        sent = server.requests[0]["messages"][-1]["content"]
        assert sent[1]["image_url"]["url"].startswith("data:image/png;base64,")
        assert base64.b64decode(sent[1]["image_url"]["url"].split(",", 1)[1]) == PNG


def test_a_judge_that_cannot_see_images_is_refused(tmp_path: Path):
    with pytest.raises(InputError, match="cannot be sent images") as caught:
        VisionJudge(resolve_model("embedded"), ImageStore(tmp_path))
    assert "--judge openai:MODEL@URL" in caught.value.hint


def test_the_scripted_judge_reads_pixels_not_prompts():
    """The test world itself: what it answers comes from the picture."""
    blobs = analyse(render(plan("Three tiny blue triangular kettles to the left of a lamp.", 0)))
    assert answer("Are the kettles blue?", blobs)
    assert answer("Are there exactly three kettles?", blobs)
    assert answer("Are the kettles triangular?", blobs)
    assert answer("Are the kettles tiny?", blobs)
    assert answer("Are the kettles to the left of the lamp?", blobs)
    assert not answer("Are the kettles to the right of the lamp?", blobs)
    assert not answer("Are the kettles to the left of the dog?", blobs)  # no dog drawn
    assert not answer("Do the kettles look wooden?", blobs)  # nothing it can see


# --- the OpenAI-compatible images provider -------------------------------------------------


def generate(model: OpenAIImagesModel, prompt: str, sample: int = 0) -> str:
    async def go() -> str:
        try:
            request = ChatRequest(({"role": "user", "content": prompt},), seed=3, sample=sample)
            return (await model.complete(request)).text
        finally:
            await model.aclose()

    return asyncio.run(go())


def images_model(server: ImageWorld, images: ImageStore, **kwargs) -> OpenAIImagesModel:
    return OpenAIImagesModel(
        server.model, images, size="256x256", base_url=server.base_url, backoff_s=0.0, **kwargs
    )


def test_an_image_is_generated_stored_and_named_by_its_hash(tmp_path: Path):
    images = ImageStore(tmp_path / "images")
    with ImageWorld("images") as server:
        model = images_model(server, images)
        digest = generate(model, "A red cat.")
        assert server.requests == [
            {
                "model": "scripted-images",
                "prompt": "A red cat.",
                "n": 1,
                "size": "256x256",
                "response_format": "b64_json",
            }
        ]
        assert server.drawn["A red cat."]["sha256"] == digest
    assert images.find(digest) is not None
    assert model.identity == f"openai-images:scripted-images@{server.base_url}?size=256x256"


def test_gpt_image_models_are_not_sent_a_response_format(tmp_path: Path):
    with ImageWorld("images", model="gpt-image-1") as server:
        generate(images_model(server, ImageStore(tmp_path)), "A cat.")
        assert "response_format" not in server.requests[0]


def test_rate_limits_server_errors_and_bad_answers_are_retried(tmp_path: Path):
    faults = {
        1: (429, {"error": "slow down"}, {"Retry-After": "0"}),
        2: (500, {"error": "internal"}, {}),
        3: (200, "{not json", {}),
        4: (200, {"data": [{"b64_json": base64.b64encode(b"<html>").decode()}]}, {}),
        5: (200, {"data": [{"b64_json": "%%%"}]}, {}),
    }
    with ImageWorld("images", intercept=lambda body, n: faults.get(n)) as server:
        model = images_model(server, ImageStore(tmp_path))
        digest = generate(model, "A blue cat.")
        assert len(server.requests) == 6
    assert model.retry_causes == {"429": 1, "500": 1, "malformed": 3}
    assert ImageStore(tmp_path).find(digest) is not None


def test_answers_that_cannot_pass_are_reported_at_once(tmp_path: Path):
    cases = [
        ((401, {"error": "bad key"}, {}), ModelError, "check the API key"),
        ((404, {"error": "no such model"}, {}), UnknownModelError, "unknown model"),
        ((200, {"data": [{"url": "https://x/1.png"}]}, {}), ModelError, "image URL"),
    ]
    for reply, kind, message in cases:
        with ImageWorld("images", intercept=lambda body, n, r=reply: r) as server:
            with pytest.raises(kind, match=message):
                generate(images_model(server, ImageStore(tmp_path)), "A cat.")
            assert len(server.requests) == 1


def test_a_server_that_stays_down_gives_up_with_the_cause(tmp_path: Path):
    with ImageWorld("images", intercept=lambda body, n: (503, {"error": "down"}, {})) as server:
        model = images_model(server, ImageStore(tmp_path), max_retries=2)
        with pytest.raises(ModelError, match=r"HTTP 503 .* \(gave up after 3 tries\)"):
            generate(model, "A cat.")


# --- generator specs and diffusers ---------------------------------------------------------


def test_generator_specs_are_parsed_strictly(tmp_path: Path):
    assert parse_generator_spec("openai-images:dall-e-3") == ("openai-images", "dall-e-3", "")
    assert parse_generator_spec("openai-images:m@http://127.0.0.1:9/v1") == (
        "openai-images", "m", "http://127.0.0.1:9/v1",
    )  # fmt: skip
    assert parse_generator_spec("diffusers:stabilityai/sd-turbo")[1] == "stabilityai/sd-turbo"
    for bad, message in [
        ("openai:gpt-4o", "unknown image generator"),
        ("openai-images", "unknown image generator"),
        ("openai-images:m@notaurl", "is not a base URL"),
        ("diffusers:m@http://127.0.0.1:9/v1", "takes no base URL"),
        ("openai-images:m@ftp://host/v1", "not an http"),
    ]:
        with pytest.raises(SkillmixError, match=message):
            parse_generator_spec(bad)
    model = resolve_generator("diffusers:some/model", ImageStore(tmp_path), size="64x64")
    assert model.identity == (
        "diffusers:some/model?size=64x64&guidance_scale=7.5&num_inference_steps=25"
    )


def test_diffusers_says_how_to_install_it_and_checks_its_settings(tmp_path: Path):
    """No GPU and no diffusers here: the provider must say what is missing, not crash."""
    pytest.importorskip("PIL")
    try:
        import diffusers  # noqa: F401
    except ImportError:
        model = DiffusersImageModel("some/model", ImageStore(tmp_path), size="64x64")
        request = ChatRequest(({"role": "user", "content": "A cat."},), seed=1)
        with pytest.raises(ModelError, match="needs diffusers and torch") as caught:
            asyncio.run(model.complete(request))
        assert "skillmix[images]" in caught.value.hint
    with pytest.raises(ModelError, match="unknown engine_args"):
        DiffusersImageModel("m", ImageStore(tmp_path), size="64x64", steps=4)
    with pytest.raises(ModelError, match="is not WIDTHxHEIGHT"):
        parse_size("large")
    assert parse_size("768x512") == (768, 512)
