"""Model specs as people read them: short names, with endpoints in footnotes.

A stored spec such as `openai:meta-llama/Llama-3.1-8B-Instruct@http://gpu-node-7:8000/v1`
is exact but too long for a table cell. `ModelNames` shows it as
`meta-llama/Llama-3.1-8B-Instruct¹`, with the footnote `¹ endpoint gpu-node-7:8000/v1
(openai)` printed once below the table. Models at the same endpoint share a marker; two
specs that would still look the same keep their provider (`openai:m`, `litellm:m`).

Endpoints are shown without their scheme, so that a report never holds a clickable link
to a private server.
"""

from __future__ import annotations

from collections.abc import Iterable

_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
# Providers whose name is the whole spec, or says what runs (not where): kept in the name.
_KEEP_PROVIDER = ("embedded",)


def split_endpoint(spec: str) -> tuple[str, str]:
    """`provider:model@http://host/v1` -> (`provider:model`, `host/v1`); ("spec", "") without one.

    The endpoint starts at the last '@' before the first `://` (as `parse_spec` reads
    it), so a litellm version pin such as `vertex_ai/claude@20240620` stays in the name.
    """
    scheme_at = spec.find("://")
    if scheme_at < 0:
        return spec, ""
    at = spec.rfind("@", 0, scheme_at)
    if at < 0:
        return spec, ""
    return spec[:at], strip_scheme(spec[at + 1 :])


def strip_scheme(url: str) -> str:
    """`http://host:8000/v1` -> `host:8000/v1`."""
    for scheme in ("https://", "http://"):
        if url.startswith(scheme):
            return url[len(scheme) :]
    return url


def display_model(spec: str) -> str:
    """A spec in full for display: `openai:m@http://host:port/v1` -> `openai:m @ host:port/v1`."""
    name, endpoint = split_endpoint(spec)
    return f"{name} @ {endpoint}" if endpoint else spec


def short_model(spec: str) -> str:
    """A model spec without its endpoint: `openai:m@http://host/v1` -> `openai:m`."""
    return split_endpoint(spec)[0]


def bare_name(spec: str) -> str:
    """The model's own name: `openai:gpt-4o@http://host/v1` -> `gpt-4o`; `embedded` stays."""
    name = short_model(spec)
    provider, sep, model = name.partition(":")
    if not sep or not model or provider in _KEEP_PROVIDER:
        return name
    return model


def superscript(n: int) -> str:
    """`12` -> `¹²`."""
    return str(n).translate(_SUPERSCRIPT)


class ModelNames:
    """Short, unambiguous names for a set of model specs, and the footnotes they need.

    Give every spec a table will show up front (later ones are added as they come), take
    each cell from `name(spec)`, and print `footnotes()` below the table.
    """

    def __init__(self, specs: Iterable[str] = ()) -> None:
        self._names: dict[str, str] = {}
        self._markers: dict[tuple[str, str], int] = {}  # (provider, endpoint) -> number
        for spec in specs:
            self.name(spec)

    def name(self, spec: str) -> str:
        """The short name of `spec`, with a footnote marker when it has an endpoint."""
        if spec not in self._names:
            self._names[spec] = self._new_name(spec)
        return self._names[spec]

    __call__ = name

    def _new_name(self, spec: str) -> str:
        full, endpoint = split_endpoint(spec)
        marker = ""
        if endpoint:
            key = (full.partition(":")[0], endpoint)
            number = self._markers.setdefault(key, len(self._markers) + 1)
            marker = superscript(number)
        taken = set(self._names.values())
        for candidate in (bare_name(spec), full, display_model(spec)):
            if candidate + marker not in taken:
                return candidate + marker
        return spec

    def footnotes(self) -> list[str]:
        """One line per endpoint in use: `¹ endpoint host:8000/v1 (openai)`."""
        return [
            f"{superscript(n)} endpoint {endpoint} ({provider})"
            for (provider, endpoint), n in self._markers.items()
        ]


__all__ = [
    "ModelNames",
    "bare_name",
    "display_model",
    "short_model",
    "split_endpoint",
    "strip_scheme",
    "superscript",
]
