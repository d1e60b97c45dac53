"""Image generators, addressed as `provider:MODEL[@BASE_URL]` and imported lazily.

- `openai-images:MODEL[@BASE_URL]`: an OpenAI-compatible `/images/generations` endpoint
  (`openai_images`); hosted APIs and local servers.
- `diffusers:MODEL`: a diffusers pipeline in this process (`diffusers_images`, the
  `images` extra, a GPU).

A generator implements the chat `Model` interface, so that its calls go through the
runtime's `CallCache` like every other call (cached, resumed, counted per role): the
request's last message is the prompt, and the answer is the SHA-256 of the image, which
the generator has put into the image store. `GENERATOR_ROLE` is its role in the ledger.
"""

from __future__ import annotations

from skillmix.image.image_store import ImageStore
from skillmix.models import Model, Settings, UnknownModelError
from skillmix.models.settings import check_base_url

GENERATORS = ("openai-images", "diffusers")
GENERATOR_ROLE = "generator"
SPEC_FORMS = (
    "openai-images:MODEL, openai-images:MODEL@BASE_URL (any OpenAI-compatible images API), "
    "diffusers:MODEL (in-process, the `images` extra)"
)


def parse_generator_spec(spec: str) -> tuple[str, str, str]:
    """(provider, model, base URL or "") of a generator spec, or `UnknownModelError`."""
    provider, _, rest = spec.strip().partition(":")
    provider = provider.strip().lower()
    if provider not in GENERATORS or not rest:
        raise UnknownModelError(
            f"unknown image generator {spec!r}: use {SPEC_FORMS}",
            hint="chat models (openai:MODEL) write prompts and judge; --generator needs an "
            "image model",
        )
    scheme = rest.find("://")
    if scheme < 0:
        if "@" in rest:
            raise UnknownModelError(
                f"image generator {spec!r}: {rest.partition('@')[2]!r} after '@' is not a "
                "base URL (http://HOST:PORT/v1)"
            )
        return provider, rest, ""
    at = rest.rfind("@", 0, scheme)
    if at < 0:
        raise UnknownModelError(f"image generator {spec!r}: the base URL must follow an '@'")
    if provider == "diffusers":
        raise UnknownModelError(
            f"image generator {spec!r}: diffusers runs in this process and takes no base URL"
        )
    name, base_url = rest[:at], rest[at + 1 :]
    check_base_url(base_url, f"the base URL of {provider}:{name}")
    return provider, name, base_url


def resolve_generator(
    spec: str, images: ImageStore, *, size: str, settings: Settings | None = None
) -> Model:
    """The image generator `spec` names, writing its images to `images`."""
    provider, name, base_url = parse_generator_spec(spec)
    model_settings = (settings or Settings()).for_model(spec)
    if provider == "openai-images":
        from skillmix.image.openai_images import OpenAIImagesModel

        generator = OpenAIImagesModel(
            name, images, size=size, base_url=base_url or None, settings=model_settings
        )
        check_base_url(generator.base_url, f"the base URL of {generator.spec}")
        return generator
    from skillmix.image.diffusers_images import DiffusersImageModel

    return DiffusersImageModel(name, images, size=size, **model_settings.engine_args)
