"""``--json`` output of the read commands: plain JSON, NaN as null and infinities as strings."""
from __future__ import annotations

import json
import math
import sys
from typing import Any, TextIO


def jsonable(value: Any) -> Any:
    """``value`` with NaN -> None, +-inf -> "inf"/"-inf", datetimes as ISO text, tuples as lists."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def emit_json(document: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    print(json.dumps(jsonable(document), indent=2), file=out)
