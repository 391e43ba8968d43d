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


def as_json(data):
    """``data`` as ``write_json`` stores it and ``read_json`` gives it back (tuples as lists, ...)."""
    return json.loads(json.dumps(data, default=_plain))


def read_json(path: str | Path, field: str = "file"):
    """The JSON in ``path``; a missing file or one that is not JSON (e.g. cut off by a full disk)
    raises a ConfigError naming ``field`` and the file."""
    from numsym_pl.errors import ConfigError

    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"{field}: no such file {path}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{field}: {path} is not valid JSON ({err}); rerun the step that writes it "
                          "(a study rewrites results.json when it is run again)") from err
