"""Results on disk as JSON, written atomically: a crash or a kill never leaves half a file (a
study resumes by the files that exist). A path ending in ``.gz`` is gzip-compressed JSON (a published
study's ``results.json.gz``); ``read_json`` of ``X.json`` reads ``X.json.gz`` where only that exists."""

from __future__ import annotations

import gzip
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
    text = json.dumps(data, indent=indent, default=_plain)
    if path.suffix == ".gz":  # mtime 0: the same data gives the same bytes
        tmp.write_bytes(gzip.compress(text.encode(), mtime=0))
    else:
        tmp.write_text(text)
    tmp.replace(path)
    return path


def json_path(path: str | Path) -> Path | None:
    """``path`` if it is a file, else its gzip-compressed form ``<path>.gz`` if that is; else None."""
    path = Path(path)
    zipped = path.with_name(path.name + ".gz")
    return path if path.is_file() else zipped if zipped.is_file() else None


def as_json(data):
    """``data`` as ``write_json`` stores it and ``read_json`` gives it back (tuples as lists, ...)."""
    return json.loads(json.dumps(data, default=_plain))


def read_json(path: str | Path, field: str = "file"):
    """The JSON in ``path``; a missing file or one that is not JSON (e.g. cut off by a full disk)
    raises a ConfigError naming ``field`` and the file."""
    from numsym_pl.errors import ConfigError

    path = json_path(path) or Path(path)
    try:
        return json.loads(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"{field}: no such file {path}") from err
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError) as err:
        raise ConfigError(f"{field}: {path} is not valid JSON ({err}); rerun the step that writes it "
                          "(a study rewrites results.json when it is run again)") from err
