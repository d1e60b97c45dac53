"""Image generation in this process with Hugging Face `diffusers` (a GPU is best).

Spec: `diffusers:MODEL`, where MODEL is a Hugging Face id or a local folder of a
text-to-image pipeline (`stabilityai/sd-turbo`, `stabilityai/sdxl-turbo`, ...). Needs the
`images` extra (`pip install 'skillmix[images]'`: diffusers, transformers, accelerate,
torch, Pillow). torch and diffusers are imported on the first image, not before.

The pipeline is `diffusers.AutoPipelineForText2Image.from_pretrained(MODEL)`, loaded once
per process, in float16 on CUDA when a GPU is there and float32 on the CPU otherwise, and
run one image at a time in a worker thread (so the event loop keeps serving the judge's
calls meanwhile). Settings come from `engine_args` in skillmix.toml:

```toml
[models."diffusers:stabilityai/sd-turbo"]
engine_args = { num_inference_steps = 1, guidance_scale = 0.0, device = "cuda", dtype = "float16" }
```

`num_inference_steps` (default 25) and `guidance_scale` (default 7.5) and the image size
are part of the model's identity, so a change makes new cache keys. Each image's torch
generator is seeded from the request's seed and sample, so an image is reproducible on
the same hardware and library versions (diffusion on GPUs is not bit-exact across them).

Not tested in this repository's CI (it has no GPU): the test suite covers the
OpenAI-compatible provider against a scripted image server.
"""

from __future__ import annotations

import asyncio
import io
import threading
from typing import Any

from skillmix.image.image_store import ImageStore
from skillmix.models.base import ChatRequest, ChatResponse, ModelError, UnknownModelError

PROVIDER = "diffusers"
INSTALL_HINT = "pip install 'skillmix[images]' (diffusers, transformers, accelerate, torch)"
DEFAULTS: dict[str, Any] = {"num_inference_steps": 25, "guidance_scale": 7.5}
# Keys of `engine_args` that choose where and how the pipeline runs, not what it draws.
PLACEMENT = ("device", "dtype")

# One pipeline per (model, device, dtype) per process: it holds most of a GPU's memory.
_PIPELINES: dict[tuple[str, str, str], Any] = {}
_LOCK = threading.Lock()


def parse_size(size: str) -> tuple[int, int]:
    """`"512x512"` -> (512, 512), or `ModelError` naming the problem."""
    width, sep, height = size.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or min(int(width), int(height)) < 8:
        raise ModelError(f"image size {size!r} is not WIDTHxHEIGHT (e.g. 512x512)")
    return int(width), int(height)


class DiffusersImageModel:
    """A diffusers text-to-image pipeline in this process (see the module docstring)."""

    provider = PROVIDER
    max_concurrency = 1  # one image at a time on the device
    supports_structured = False

    def __init__(self, name: str, images: ImageStore, *, size: str, **engine_args: Any):
        if not name:
            raise UnknownModelError(
                "the diffusers provider needs a model: diffusers:MODEL (a Hugging Face id or "
                "a local folder)"
            )
        self.name = name
        self.images = images
        self.size = size
        self.width, self.height = parse_size(size)
        unknown = set(engine_args) - set(DEFAULTS) - set(PLACEMENT)
        if unknown:
            raise ModelError(
                f"{self.spec}: unknown engine_args {sorted(unknown)} (known: "
                f"{', '.join([*DEFAULTS, *PLACEMENT])})"
            )
        self.options = {**DEFAULTS, **{k: v for k, v in engine_args.items() if k in DEFAULTS}}
        self.device = str(engine_args.get("device") or "")
        self.dtype = str(engine_args.get("dtype") or "")

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def identity(self) -> str:
        """The model, the image size and every setting that changes the picture."""
        options = "&".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.spec}?size={self.size}&{options}"

    async def complete(self, request: ChatRequest) -> ChatResponse:
        prompt = request.messages[-1]["content"]
        seed = ((request.seed or 0) + 7919 * request.sample) % (2**31 - 1)
        digest = await asyncio.to_thread(self._generate, prompt, seed)
        return ChatResponse(text=digest, finish_reason="stop")

    def _generate(self, prompt: str, seed: int) -> str:
        torch, pipeline, device = self._pipeline()
        generator = torch.Generator(device=device).manual_seed(seed)
        with _LOCK:  # one image at a time on the device, whatever calls it
            result = pipeline(
                prompt=prompt,
                width=self.width,
                height=self.height,
                generator=generator,
                **self.options,
            )
        buffer = io.BytesIO()
        result.images[0].save(buffer, format="PNG")
        return self.images.put(buffer.getvalue()).sha256

    def _pipeline(self) -> tuple[Any, Any, str]:
        try:
            import torch
            from diffusers import AutoPipelineForText2Image
        except ImportError as err:
            raise ModelError(
                f"{self.spec} needs diffusers and torch ({err.name} is missing)",
                hint=INSTALL_HINT,
            ) from err
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype_name = self.dtype or ("float16" if device.startswith("cuda") else "float32")
        dtype = getattr(torch, dtype_name, None)
        if not isinstance(dtype, torch.dtype):
            raise ModelError(f"{self.spec}: unknown dtype {dtype_name!r} (float16, float32, ...)")
        key = (self.name, device, dtype_name)
        with _LOCK:
            if key not in _PIPELINES:
                try:
                    pipeline = AutoPipelineForText2Image.from_pretrained(
                        self.name, torch_dtype=dtype
                    )
                except (OSError, ValueError) as err:
                    raise ModelError(
                        f"{self.spec}: cannot load the pipeline: {err}",
                        hint="give a Hugging Face id of a text-to-image model, or a local "
                        "folder saved with save_pretrained",
                    ) from err
                pipeline.set_progress_bar_config(disable=True)
                _PIPELINES[key] = pipeline.to(device)
            return torch, _PIPELINES[key], device

    async def aclose(self) -> None:
        """Nothing to close: the pipeline stays loaded for reuse in this process."""
