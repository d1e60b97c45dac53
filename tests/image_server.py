"""A scripted image server and a scripted vision judge, real HTTP on 127.0.0.1.

Both share one small world of flat shapes on a plain background, written here:

- The **image server** (`/v1/images/generations`) reads the prompt for the words it knows
  (a colour, a shape, a size, a number, relations such as "to the left of a dog"), draws
  the object that many times in that colour, shape and size, and a dark square for each
  relation's second object on the side the relation puts it. Some concepts it draws wrong
  on purpose (`wrong_every`: a hash of the prompt and the word picks them), and it records
  what it really drew for each prompt (`drawn`, and one JSON line per prompt with `--log`:
  two prompts may give the very same picture, so it is the prompt that says what was
  asked of it). Words it does
  not know (textures, styles, other relations) it does not draw at all.
- The **chat server** (`/v1/chat/completions`) is the prompter, the checker and the vision
  judge: it writes prompts from the concept list (leaving one concept out of some first
  drafts, so that the check and the retry are exercised), checks prompts by looking for
  each concept's name, and answers a question about an image from the image's pixels
  alone: it finds the shapes (connected regions of one colour), their colour, outline,
  size and number, and where the dark squares are. With `garble_every` some answers are
  unreadable ("I am not sure."), so unparsed answers are exercised too.

Run by hand (see the README):

    python tests/image_server.py --port 8801 --role images --log drawn.jsonl
    python tests/image_server.py --port 8802 --role judge
    python tests/image_server.py check drawn.jsonl image-out/RUN_ID
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import hashlib
import io
import json
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

# --- the world ----------------------------------------------------------------------------------

CANVAS = 480
BACKGROUND = (250, 250, 246)
# A relation's second object is a square in a dark ink of its own: every channel in
# 16..79 (no colour of the palette is), chosen by a hash of its name.
INK_LOW, INK_SPAN = 16, 64
PLAIN = (203, 197, 181)  # the object's colour when the prompt names none
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 160, 60),
    "yellow": (240, 210, 20), "orange": (245, 130, 20), "purple": (130, 40, 170),
    "pink": (245, 140, 190), "brown": (120, 75, 35), "black": (5, 5, 5),
    "white": (255, 255, 255), "grey": (128, 128, 128), "gold": (212, 175, 55),
    "silver": (192, 192, 200), "teal": (0, 128, 128), "turquoise": (64, 224, 208),
    "navy blue": (0, 0, 110), "maroon": (128, 0, 0), "beige": (225, 210, 170),
    "lavender": (190, 170, 230), "crimson": (180, 15, 50), "olive green": (110, 120, 30),
    "magenta": (230, 0, 200), "cyan": (0, 230, 240), "indigo": (75, 0, 130),
    "coral": (255, 110, 80), "mint green": (150, 230, 180), "peach": (255, 205, 160),
    "ivory": (250, 245, 225),
}  # fmt: skip
# Words for the outlines this world can draw.
SHAPES: dict[str, str] = {
    "round": "circle", "circular": "circle", "spherical": "circle",
    "square": "square", "cube-shaped": "square",
    "triangular": "triangle", "pyramid-shaped": "triangle",
    "diamond-shaped": "diamond", "rectangular": "rectangle", "oval": "oval",
}  # fmt: skip
PLAIN_SHAPE = "plus"  # the outline when the prompt names none (no word names it)
SIZES: dict[str, str] = {
    "tiny": "small", "small": "small", "miniature": "small", "pocket-sized": "small",
    "large": "large", "huge": "large", "giant": "large", "enormous": "large",
    "oversized": "large",
}  # fmt: skip
SIDE = {"small": 28, "medium": 48, "large": 88}
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
# Where a relation puts its second object, seen from the main object.
RELATIONS = {"to the left of": "right", "to the right of": "left", "above": "below",
             "below": "above"}  # fmt: skip
OPPOSITE = {"right": "left", "left": "right", "below": "above", "above": "below"}


def _digest(*parts: object) -> int:
    return int(hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest(), 16)


def ink(name: str) -> tuple[int, int, int]:
    """The colour a second object called `name` is drawn in."""
    h = _digest("ink", name.lower())
    return tuple(INK_LOW + (h >> (8 * i)) % INK_SPAN for i in range(3))  # type: ignore[return-value]


def is_ink(colour: tuple[int, int, int]) -> bool:
    return all(INK_LOW <= c < INK_LOW + INK_SPAN for c in colour)


def _words(vocabulary: dict[str, Any], text: str) -> list[str]:
    """The vocabulary's words in `text` as whole words, longest first, without overlaps."""
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for word in sorted(vocabulary, key=len, reverse=True):
        for match in re.finditer(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text):
            span = match.span()
            if not any(a < span[1] and span[0] < b for a, b in taken):
                taken.append(span)
                found.append((span[0], word))
    return [word for _, word in sorted(found)]


# --- the image server: prompt -> what to draw (with planted errors) -> PNG ------------------------


@dataclass
class Drawing:
    """What the image shows, and per concept word whether it is what the prompt asked."""

    colour: tuple[int, int, int] = PLAIN
    shape: str = PLAIN_SHAPE
    size: str = "medium"
    count: int = 1
    others: list[tuple[str, str]] = field(default_factory=list)  # (name, side) per relation
    record: dict[str, dict[str, Any]] = field(default_factory=dict)


def plan(prompt: str, wrong_every: int) -> Drawing:
    """What the server draws for `prompt`; every `wrong_every`-th concept (by hash) wrong."""
    text = prompt.lower()
    relations = [
        (m.start(), m.group(1), m.group(2))
        for m in re.finditer(
            rf"(?<![\w-])({'|'.join(map(re.escape, RELATIONS))})\s+(?:a|an|the)\s+([\w-]+)", text
        )
    ]
    main = text[: relations[0][0]] if relations else text
    drawing = Drawing()

    def wrong(word: str) -> bool:
        return wrong_every > 0 and _digest(prompt, word) % wrong_every == 0

    def note(word: str, category: str, asked: object, drew: object) -> None:
        drawing.record[word] = {
            "category": category, "asked": asked, "drew": drew, "correct": asked == drew,
        }  # fmt: skip

    if colours := _words(PALETTE, main):
        word = colours[0]
        names = list(PALETTE)
        drew = names[(names.index(word) + 1) % len(names)] if wrong(word) else word
        drawing.colour = PALETTE[drew]
        note(word, "colour", word, drew)
    if shapes := _words(SHAPES, main):
        word = shapes[0]
        outlines = sorted(set(SHAPES.values()))
        asked = SHAPES[word]
        drew = outlines[(outlines.index(asked) + 1) % len(outlines)] if wrong(word) else asked
        drawing.shape = drew
        note(word, "shape", asked, drew)
    if sizes := _words(SIZES, main):
        word = sizes[0]
        asked = SIZES[word]
        drew = {"small": "large", "large": "small"}[asked] if wrong(word) else asked
        drawing.size = drew
        note(word, "size", asked, drew)
    if numbers := _words(NUMBERS, main):
        word = numbers[0]
        asked_n = NUMBERS[word]
        drawing.count = asked_n + 1 if wrong(word) else asked_n
        note(word, "number", asked_n, drawing.count)
    for _, phrase, other in relations:
        side = RELATIONS[phrase]
        drew = OPPOSITE[side] if wrong(phrase) else side
        drawing.others.append((other, drew))
        note(phrase, "spatial", side, drew)
    return drawing


def _outline(draw: ImageDraw.ImageDraw, shape: str, box: tuple[int, int, int, int], ink: Any):
    x0, y0, x1, y1 = box
    cx, cy, s = (x0 + x1) // 2, (y0 + y1) // 2, x1 - x0
    if shape == "circle":
        draw.ellipse(box, fill=ink)
    elif shape == "square":
        draw.rectangle(box, fill=ink)
    elif shape == "triangle":
        draw.polygon([(x0, y1), (x1, y1), (cx, y0)], fill=ink)
    elif shape == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=ink)
    elif shape == "rectangle":
        draw.rectangle((x0, cy - s // 4, x1, cy + s // 4), fill=ink)
    elif shape == "oval":
        draw.ellipse((x0, cy - s * 3 // 10, x1, cy + s * 3 // 10), fill=ink)
    else:  # plus
        bar = s // 6
        draw.rectangle((x0, cy - bar, x1, cy + bar), fill=ink)
        draw.rectangle((cx - bar, y0, cx + bar, y1), fill=ink)


def render(drawing: Drawing) -> bytes:
    """The PNG of a drawing: the objects in a grid at the centre, second objects around."""
    image = Image.new("RGB", (CANVAS, CANVAS), BACKGROUND)
    draw = ImageDraw.Draw(image)
    side, gap = SIDE[drawing.size], 12
    columns = min(drawing.count, 3)
    rows = -(-drawing.count // 3)
    width, height = columns * side + (columns - 1) * gap, rows * side + (rows - 1) * gap
    left, top = (CANVAS - width) // 2, (CANVAS - height) // 2
    for i in range(drawing.count):
        x = left + (i % 3) * (side + gap)
        y = top + (i // 3) * (side + gap)
        _outline(draw, drawing.shape, (x, y, x + side, y + side), drawing.colour)
    placed: Counter[str] = Counter()
    totals = Counter(where for _, where in drawing.others)
    for other, where in drawing.others:  # one second object per side at the middle, two apart
        offset = 0 if totals[where] == 1 else (-60, 60)[placed[where] % 2]
        placed[where] += 1
        centre = CANVAS // 2 + offset
        x, y = {
            "left": (40, centre), "right": (CANVAS - 40, centre),
            "above": (centre, 40), "below": (centre, CANVAS - 40),
        }[where]  # fmt: skip
        draw.rectangle((x - 20, y - 20, x + 20, y + 20), fill=ink(other))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# --- the judge: PNG -> what it shows -> answers -----------------------------------------------


@dataclass(frozen=True)
class Blob:
    colour: tuple[int, int, int]
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (inclusive)
    outline: str

    @property
    def side(self) -> int:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1]) + 1


def classify(mask: np.ndarray) -> str:
    """The outline of one filled region (a boolean array cropped to its bounding box)."""
    h, w = mask.shape
    fill = mask.sum() / (w * h)
    aspect = w / h
    top, middle, bottom = (mask[r].sum() / w for r in (0, h // 2, h - 1))
    if aspect >= 1.4:
        return "rectangle" if fill > 0.9 else "oval" if 0.7 < fill < 0.86 else "unknown"
    if not 0.8 <= aspect <= 1.25:
        return "unknown"
    if fill > 0.92:
        return "square"
    if 0.72 < fill <= 0.9:
        return "circle"
    if bottom > 0.8 and top < 0.3:
        return "triangle"
    if top < 0.3 and bottom < 0.3 and middle > 0.8:
        return "diamond"
    if 0.2 < top < 0.5 and 0.2 < bottom < 0.5 and middle > 0.9:
        return "plus"
    return "unknown"


def analyse(png: bytes) -> list[Blob]:
    """The flat shapes of an image: connected regions of one colour that is not background."""
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int64)
    keys = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    background = (BACKGROUND[0] << 16) | (BACKGROUND[1] << 8) | BACKGROUND[2]
    blobs = []
    for key in np.unique(keys):
        if key == background:
            continue
        labels, _ = ndimage.label(keys == key)
        for index, region in enumerate(ndimage.find_objects(labels), start=1):
            mask = labels[region] == index
            ys, xs = region
            colour = (int(key >> 16), int(key >> 8 & 255), int(key & 255))
            box = (xs.start, ys.start, xs.stop - 1, ys.stop - 1)
            blobs.append(Blob(colour, box, classify(mask)))
    return blobs


def beyond(side: str, group: tuple[int, ...], box: tuple[int, ...]) -> bool:
    """Whether `box` lies wholly on `side` of `group` (both x0, y0, x1, y1)."""
    x0, y0, x1, y1 = group
    return {
        "right": box[0] > x1, "left": box[2] < x0, "below": box[1] > y1, "above": box[3] < y0,
    }[side]  # fmt: skip


def answer(question: str, blobs: list[Blob]) -> bool:
    """A yes/no question about the picture, answered from its shapes alone."""
    text = question.lower()
    main = [b for b in blobs if not is_ink(b.colour)]
    if not main:
        return False
    for phrase, side in RELATIONS.items():
        if found := re.search(rf"(?<![\w-]){re.escape(phrase)} the ([\w-]+)", text):
            others = [b for b in blobs if b.colour == ink(found.group(1))]
            group = (
                min(b.box[0] for b in main), min(b.box[1] for b in main),
                max(b.box[2] for b in main), max(b.box[3] for b in main),
            )  # fmt: skip
            return any(beyond(side, group, b.box) for b in others)
    if match := re.search(r"exactly (\w+)", text):
        return NUMBERS.get(match.group(1)) == len(main)
    if shapes := _words(SHAPES, text):
        return all(b.outline == SHAPES[shapes[0]] for b in main)
    if sizes := _words(SIZES, text):
        want = SIZES[sizes[0]]
        return all((b.side <= 34) if want == "small" else (b.side >= 72) for b in main)
    if colours := _words(PALETTE, text):
        return all(b.colour == PALETTE[colours[0]] for b in main)
    return False  # nothing this world can see: textures, styles, other relations


# --- the chat server: prompter, checker, judge ---------------------------------------------


def write_prompt(messages: list[dict[str, Any]]) -> str:
    """A prompt from the concept list of a prompt-writing conversation."""
    task = messages[1]["content"]
    noun = re.search(r"^Object: (.+)$", task, flags=re.M).group(1).strip()
    lines = re.findall(r"^- ([^:\n]+): (.+)$", task, flags=re.M)
    first_draft = len(messages) == 2
    if first_draft and lines and _digest(task) % 3 == 0:
        lines = lines[:-1]  # a draft that forgets one concept: the check must catch it
    by: dict[str, list[str]] = {}
    for category, phrase in lines:
        by.setdefault(category.strip(), []).append(phrase.strip())
    head = "A"
    numbers = by.get("number", [])
    if numbers:
        words = numbers[0].split()
        if words[0] == "exactly":
            head = "Exactly one"
        else:
            head, noun = words[0].capitalize(), " ".join(words[1:])
    elif noun[:1] in "aeiou":
        head = "An"
    adjectives = [p for c in ("size", "colour", "shape", "texture") for p in by.get(c, [])]
    text = " ".join([head, *adjectives, noun])
    if relations := by.get("spatial relation"):
        text += " " + " and ".join(relations)
    if styles := by.get("style"):
        text += ", " + styles[0]
    return text + "."


def check_prompt(content: str) -> dict[str, int]:
    """Concept id -> 1 when the checked prompt contains the concept's name."""
    prompt = content.split("<prompt>", 1)[1].split("</prompt>", 1)[0].lower()
    concepts = re.findall(r'^- ([\w-]+): [^"\n]*"([^"]+)":', content, flags=re.M)
    return {
        cid: int(bool(re.search(rf"(?<![\w-]){re.escape(name.lower())}(?![\w-])", prompt)))
        for cid, name in concepts
    }


def decode_data_url(url: str) -> bytes:
    header, _, payload = url.partition(",")
    if not header.startswith("data:image/") or ";base64" not in header:
        raise ValueError(f"not a base64 image data URL: {url[:40]!r}")
    return base64.b64decode(payload)


# --- the HTTP server ---------------------------------------------------------------------------


ROLES = ("images", "judge")
# A test's own answer to the n-th request (status, JSON value or raw text, headers), or None.
Intercept = Callable[[dict[str, Any], int], "tuple[int, Any, dict[str, str]] | None"]


class ImageWorld:
    """Start with `with ImageWorld("images") as server:`; `base_url` ends in /v1.

    `requests` holds every request body, `drawn` what the image of each prompt shows,
    `hold_from(n)` holds the n-th request and all later ones (see tests/conftest.py).
    """

    def __init__(
        self,
        role: str,
        *,
        model: str = "",
        port: int = 0,
        wrong_every: int = 3,
        garble_every: int = 0,
        log: Path | None = None,
        intercept: Intercept | None = None,
    ):
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        self.role = role
        self.model = model or f"scripted-{role}"
        self.wrong_every = wrong_every
        self.garble_every = garble_every
        self.log = log
        self.intercept = intercept
        self.requests: list[dict[str, Any]] = []
        self.drawn: dict[str, dict[str, Any]] = {}
        self.garbled = 0
        self._seen: dict[str, list[Blob]] = {}
        self._lock = threading.Lock()
        self._hold_from: int | None = None
        self.holding = threading.Event()
        self._released = threading.Event()
        world = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with world._lock:
                    world.requests.append(body)
                    count = len(world.requests)
                    held = world._hold_from is not None and count >= world._hold_from
                if held:
                    world.holding.set()
                    world._released.wait(120)
                scripted = world.intercept(body, count) if world.intercept else None
                status, payload, headers = scripted or (*world.handle(self.path, body), {})
                data = (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            request_queue_size = 128
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    super().handle_error(request, client_address)

        self.httpd = Server(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    # -- answering
    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        endpoint = "/images/generations" if self.role == "images" else "/chat/completions"
        if not path.endswith(endpoint):
            return 404, {"error": {"message": f"this {self.role} server has no {path}"}}
        if body.get("model") != self.model:
            return 404, {"error": {"message": f"model {body.get('model')} not found"}}
        if self.role == "images":
            return 200, {"created": 0, "data": [{"b64_json": self.generate(body["prompt"])}]}
        return 200, self.chat(body)

    def generate(self, prompt: str) -> str:
        drawing = plan(prompt, self.wrong_every)
        png = render(drawing)
        digest = hashlib.sha256(png).hexdigest()
        entry = {"sha256": digest, "prompt": prompt, "drawn": drawing.record}
        with self._lock:
            if prompt not in self.drawn and self.log is not None:
                with self.log.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(entry) + "\n")
            self.drawn[prompt] = entry
        return base64.b64encode(png).decode()

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        messages = body["messages"]
        content = messages[-1]["content"]
        structured = bool(body.get("response_format"))
        if isinstance(content, list):
            text = next(p["text"] for p in content if p["type"] == "text")
            png = decode_data_url(
                next(p for p in content if p["type"] == "image_url")["image_url"]["url"]
            )
            reply = self.judge(text.splitlines()[0], png, body, structured)
        elif "<prompt>" in content:
            verdict = check_prompt(content)
            reply = json.dumps(verdict) if structured else "\n".join(
                f"{k}: {v}" for k, v in verdict.items()
            )  # fmt: skip
        else:
            reply = write_prompt(messages)
        return {
            "id": "x",
            "object": "chat.completion",
            "model": self.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": reply},
                 "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25},
        }  # fmt: skip

    def judge(self, question: str, png: bytes, body: dict[str, Any], structured: bool) -> str:
        if (
            self.garble_every
            and _digest(question, body.get("seed"), len(png)) % self.garble_every == 0
        ):
            with self._lock:
                self.garbled += 1
            return "I am not sure."
        digest = hashlib.sha256(png).hexdigest()
        with self._lock:
            blobs = self._seen.get(digest)
        if blobs is None:
            blobs = analyse(png)
            with self._lock:
                self._seen[digest] = blobs
        yes = answer(question, blobs)
        if structured:
            return json.dumps({"answer": "yes" if yes else "no"})
        return "Yes." if yes else "No."

    # -- test control
    def hold_from(self, n: int) -> None:
        """Answer requests 1..n-1; hold the n-th and every later one until `release()`."""
        self._hold_from = n

    def release(self) -> None:
        self._hold_from = None
        self._released.set()

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def spec(self) -> str:
        provider = "openai-images" if self.role == "images" else "openai"
        return f"{provider}:{self.model}@{self.base_url}"

    def __enter__(self) -> ImageWorld:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()


# --- checking a run against what was drawn -------------------------------------------------------


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"


def expected_verdicts(drawn: dict[str, dict[str, Any]], prompt: str) -> Callable[[str], int]:
    """Concept id -> 1 if the image of `prompt` really shows it (0: drawn wrong or not at all)."""
    record = {slug(word): entry["correct"] for word, entry in drawn[prompt]["drawn"].items()}
    return lambda concept_id: int(record.get(concept_id, False))


def check_run(log: Path, report: Path) -> int:
    """Compare a run's verdicts (answers.csv, images.csv in `report`) with the drawing log."""
    drawn = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        drawn[entry["prompt"]] = entry
    with (report / "images.csv").open(encoding="utf-8") as f:
        prompts = {row["item_id"]: row["prompt"] for row in csv.DictReader(f)}
    checked = planted = 0
    mismatches = []
    with (report / "answers.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            prompt = prompts[row["item_id"]]
            truth = expected_verdicts(drawn, prompt)(row["concept"])
            planted += int(any(
                slug(w) == row["concept"] and not e["correct"]
                for w, e in drawn[prompt]["drawn"].items()
            ))  # fmt: skip
            checked += 1
            if str(truth) != row["decided"]:
                mismatches.append(
                    f"{row['item_id']} {row['concept']}: run {row['decided']!r}, drawn {truth}"
                )
    for line in mismatches:
        print(line)
    print(
        f"{checked - len(mismatches)} of {checked} verdicts match what the server drew "
        f"({planted} concepts were drawn wrong on purpose)"
    )
    return 1 if mismatches else 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["check"]:
        parser = argparse.ArgumentParser(prog="image_server.py check")
        parser.add_argument("log", type=Path, help="the --log file of the images server")
        parser.add_argument("report", type=Path, help="the run's report folder (image-out/RUN)")
        parsed = parser.parse_args(args[1:])
        return check_run(parsed.log, parsed.report)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--role", choices=ROLES, required=True)
    parser.add_argument("--model", default="", help="model name (scripted-images/scripted-judge)")
    parser.add_argument("--wrong-every", type=int, default=3, help="draw 1 concept in N wrong")
    parser.add_argument("--log", type=Path, help="append what each image shows (JSON lines)")
    parsed = parser.parse_args(args)
    world = ImageWorld(
        parsed.role, model=parsed.model, port=parsed.port, wrong_every=parsed.wrong_every,
        log=parsed.log,
    )  # fmt: skip
    print(f"{parsed.role} server: {world.spec()}", flush=True)
    with world, contextlib.suppress(KeyboardInterrupt):
        world.thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
