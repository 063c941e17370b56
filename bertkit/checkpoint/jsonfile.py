"""Reading the small JSON files of a checkpoint folder (config.json, bert_config.json, the shard index).

One reader, so that every way such a file can be wrong ends in the same kind of one-line error
naming the file: missing, not UTF-8, not JSON (with its line), nested too deep for the parser, or
not a JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bertkit.errors import InputFileError


def read_json_object(path: Path, missing_hint: str = "") -> dict[str, Any]:
    """The JSON object in `path`; `missing_hint` says where the file should come from."""
    if not path.is_file():
        raise InputFileError(path, "missing" + (f"; {missing_hint}" if missing_hint else ""))
    data = path.read_bytes()
    try:
        values = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputFileError(path, "not UTF-8 text; save it as UTF-8 JSON", line) from None
    except json.JSONDecodeError as err:
        raise InputFileError(path, f"not valid JSON ({err.msg}); re-export the file", err.lineno) from None
    except RecursionError:
        raise InputFileError(path, "JSON nested too deeply to be a config; the file is damaged") from None
    if not isinstance(values, dict):
        raise InputFileError(path, f"must hold a JSON object, not a {type(values).__name__}")
    return values
