"""Render the page: the view model through the Jinja2 templates, with the style sheet and
the script inlined, and a Content-Security-Policy that allows exactly those two.

Autoescape is on and undefined names are errors, so every string of the view model is
escaped and a template that names a missing field fails loudly. Only our own text is
marked safe: the assets, the policy and the SVG charts (escaped by `svg.py`). The item
data go in as the bytes `encode.script_json_bytes` made of them, so that nothing in them
can end their <script> element, in the place the template marks (`_page_parts`).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from functools import cache
from importlib import metadata, resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from skillmix.errors import InputError
from skillmix.models.settings import Settings
from skillmix.report.build import Report, build_report
from skillmix.report.html.encode import script_json
from skillmix.report.html.view import page_view
from skillmix.report.html.view.items import ItemSource
from skillmix.scoring.metrics import Aggregation
from skillmix.store import Store

_PACKAGE = __name__.rpartition(".")[0]
# What would end the element an asset is inlined into, or open a comment in it.
_CLOSERS = {".css": "</style", ".js": "</script"}


def render_html(
    store: Store,
    run_ids: Sequence[str],
    path: str | Path,
    aggregation: Aggregation = "max",
    *,
    settings: Settings | None = None,
) -> Path:
    """Write the report of `run_ids` (ids or unique prefixes) to `path`; return the path.

    Reads only the store: rendering never calls a model.
    """
    if not run_ids:
        raise ValueError("render_html needs at least one run id")
    reports: dict[str, Report] = {}
    for run_id in run_ids:
        report = build_report(store, run_id, aggregation, settings=settings)
        reports.setdefault(report.run_id, report)
    return write_page(store, list(reports.values()), path)


def write_page(
    store: Store,
    reports: Sequence[Report],
    path: str | Path,
    item_source: ItemSource | None = None,
) -> Path:
    """Write the page of already built reports to `path` (its folder is made); return it.

    `item_source`: their item data, being built by another process (as `skillmix run`
    does). A path that cannot be written is an `InputError` that names it.
    """
    out = Path(path)
    head, items, tail = _page_parts(store, reports, item_source)
    try:
        if out.parent and not out.parent.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("wb") as f:
            f.write(head.encode("utf-8"))
            f.write(items)
            f.write(tail.encode("utf-8"))
    except OSError as err:
        raise InputError(f"cannot write {out}: {err.strerror or err}") from err
    return out


def build_page(
    store: Store, reports: Sequence[Report], item_source: ItemSource | None = None
) -> str:
    """The whole HTML document for already built reports (see `render_html`)."""
    head, items, tail = _page_parts(store, reports, item_source)
    return head + items.decode("utf-8") + tail


def _page_parts(
    store: Store, reports: Sequence[Report], item_source: ItemSource | None
) -> tuple[str, bytes, str]:
    """The page in three parts: its text up to the item data, the item data as the UTF-8
    bytes they were encoded as (`ItemData.script`: most of a large run's page), and the
    text after them. The template renders a mark of its own in their place."""
    style, script = asset("report.css"), asset("dom.js") + asset("report.js")
    template = _environment().get_template("page.html.j2")
    page = page_view(store, reports, item_source)
    mark = f"skillmix-item-data-{secrets.token_hex(16)}"  # in no text the page could hold
    head, found, tail = template.render(
        page=page,
        item_data=Markup(mark),
        version=skillmix_version(),
        csp=Markup(content_security_policy(script, style)),  # hashes and keywords only
        style=Markup(style),
        script=Markup(script),
    ).partition(mark)
    if not found:
        raise RuntimeError("page.html.j2 has no place for the item data ({{ item_data }})")
    return head, page.items.script, tail


def content_security_policy(script: str, style: str) -> str:
    """The report's CSP: nothing from the network, and only the inline script and style
    sheet whose exact text is given (hashed), so no other inline code or style applies."""
    return (
        f"default-src 'none'; script-src {_csp_hash(script)}; style-src {_csp_hash(style)}; "
        "base-uri 'none'; form-action 'none'"
    )


def _csp_hash(source: str) -> str:
    """A CSP hash source: the browser hashes the element's text as UTF-8, as here."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def asset(name: str) -> str:
    """The text inlined for one of the report's asset files (`report.css`, `report.js`,
    `dom.js`, the helpers every page's script starts with)."""
    return package_asset(_PACKAGE, "assets", name)


@cache
def package_asset(package: str, folder: str, name: str) -> str:
    """The text inlined for a style sheet or script of `package` (in `folder`): the file
    after a newline, so the element's first line stays free. The CSP hashes exactly this
    text; a file that could end its element or open a comment is refused."""
    text = (resources.files(package) / folder / name).read_text(encoding="utf-8")
    closer = _CLOSERS[name[name.rindex(".") :]]
    if closer in text.lower() or "<!--" in text:
        raise ValueError(f"{folder}/{name} contains {closer!r} or '<!--': it would break the page")
    return "\n" + text


def _environment() -> jinja2.Environment:
    return environment()


@cache
def environment(*packages: str) -> jinja2.Environment:
    """The Jinja2 environment of skillmix pages: autoescaped, strict, with `script_json`.

    Templates are looked up in each package's `templates` folder first (another page, such
    as the math page, names its own package), then in the report's.
    """
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [jinja2.PackageLoader(package, "templates") for package in (*packages, _PACKAGE)]
        ),
        autoescape=True,
        # Compiled templates kept in the temp folder (per user, checked against the source):
        # compiling the page's templates took a tenth of a second of every report.
        bytecode_cache=jinja2.FileSystemBytecodeCache(),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["script_json"] = script_json
    return env


def skillmix_version() -> str:
    """The installed skillmix version, for a page's footer and generator tag."""
    try:
        return metadata.version("skillmix")
    except metadata.PackageNotFoundError:
        return "unknown"
