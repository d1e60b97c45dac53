"""Values made safe for JSON that a browser (or any strict reader) reads: every report, the
page and the review app write through `finite`."""

from __future__ import annotations

import math
from typing import Any


def finite(value: Any) -> Any:
    """`value` with every NaN and infinity (nested in dicts, lists and tuples) as None.

    JSON has no NaN: Python writes a bare `NaN`, which browsers refuse to parse. Tuples
    become lists, as JSON would have them anyway.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value
