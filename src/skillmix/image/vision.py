"""A vision judge: a chat model that is sent the images its requests refer to.

A grading request refers to its image by hash (`sha256:<hex>` in `ChatRequest.images`),
so the request's cache key and the call stored in the `calls` table are small and change
exactly when the image does. `VisionJudge.complete` swaps each reference for the image's
`data:` URL from the image store just before the request is sent, and the OpenAI-compatible
provider sends it as an `image_url` content part. The judge keeps the wrapped model's
provider, name, spec and identity, so caching, prices and the ledger treat it as that model.

Only the `openai` provider sends images (it sends `ChatRequest.messages_json`); others
would silently drop them, so they are refused here.
"""

from __future__ import annotations

from dataclasses import replace

from skillmix.errors import InputError
from skillmix.image.image_store import REF_PREFIX, ImageStore
from skillmix.models import ChatRequest, ChatResponse, Model

VISION_PROVIDERS = ("openai",)


class VisionJudge:
    """`model` answering questions about images from `images` (see the module docstring)."""

    def __init__(self, model: Model, images: ImageStore):
        if model.provider not in VISION_PROVIDERS:
            raise InputError(
                f"the judge {model.spec} cannot be sent images: a vision judge must be an "
                "OpenAI-compatible chat model",
                hint="use --judge openai:MODEL@URL (a vision model: gpt-4o, Qwen2-VL on vLLM, "
                "llava on llama.cpp or Ollama, ...)",
            )
        self.model = model
        self.images = images
        self.provider = model.provider
        self.name = model.name
        self.max_concurrency = model.max_concurrency

    @property
    def spec(self) -> str:
        return self.model.spec

    @property
    def identity(self) -> str:
        return self.model.identity

    @property
    def supports_structured(self) -> bool:
        return self.model.supports_structured

    @property
    def retrying(self) -> object:
        """The wrapped client's retries in progress (for the progress line)."""
        return getattr(self.model, "retrying", {})

    def resolve(self, request: ChatRequest) -> ChatRequest:
        """`request` with every image reference replaced by the image's data URL."""
        urls = tuple(
            self.images.data_url(url.removeprefix(REF_PREFIX))
            if url.startswith(REF_PREFIX)
            else url
            for url in request.images
        )
        return replace(request, images=urls)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        return await self.model.complete(self.resolve(request))

    async def aclose(self) -> None:
        await self.model.aclose()
