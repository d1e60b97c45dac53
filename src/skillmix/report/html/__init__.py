"""The HTML report: one self-contained page from the store alone, for people to look at.

Warnings, leaderboard, plots, heatmaps, agreement, usage, and every item with both turns
and every verdict. The page makes no network request (inline CSS, inline SVG, a little
inline JS). Everything a model wrote travels as JSON inside a <script
type="application/json"> tag, with "<", ">" and "&" written as \\u escapes so that no text
can close the tag, and the script puts it on the page with textContent only; everything
else is escaped by the templates. The Content-Security-Policy allows only the page's own
script and style sheet (by their SHA-256 hashes), so markup that ever slipped past
escaping could neither run nor restyle. Rendering never calls a model.

`view` turns reports into plain data, `page` renders it through `templates/` with the
files of `assets/` inlined.
"""

from skillmix.report.html.page import (
    build_page,
    content_security_policy,
    render_html,
    write_page,
)

__all__ = ["build_page", "content_security_policy", "render_html", "write_page"]
