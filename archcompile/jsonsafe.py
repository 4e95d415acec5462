"""JSON that is always valid: ``NaN`` and infinities become ``null``, and the
document says which values they were (``"nonfinite": ["loss"]``)."""

from __future__ import annotations

import json
import math
from typing import Any


def _clean(value: Any, path: str, found: list[str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        found.append(path or "value")
        return None
    if isinstance(value, dict):
        return {k: _clean(v, f"{path}.{k}" if path else str(k), found) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def finite(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with non-finite numbers as None, listed under ``nonfinite``."""
    found: list[str] = []
    cleaned = _clean(record, "", found)
    if found:
        cleaned["nonfinite"] = found
    return cleaned


def dumps(record: dict[str, Any], indent: int | None = None) -> str:
    """Valid JSON for ``record`` (never ``NaN``), see :func:`finite`."""
    return json.dumps(finite(record), indent=indent, allow_nan=False)
