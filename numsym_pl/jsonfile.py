"""Results on disk as JSON, written atomically: a crash or a kill never leaves half a file (a
study resumes by the files that exist)."""

from __future__ import annotations

import json
from pathlib import Path


def _plain(obj):
    """JSON for the config objects results may hold (jsonargparse Namespaces, dataclasses)."""
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    return obj.__dict__ if hasattr(obj, "__dict__") else str(obj)


def write_json(path: str | Path, data, indent: int = 1) -> Path:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent, default=_plain))
    tmp.replace(path)
    return path
