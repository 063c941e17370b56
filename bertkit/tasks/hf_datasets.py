"""Task data from the `datasets` world: .parquet, .arrow, a folder saved by `Dataset.save_to_disk`,
or a `datasets.Dataset` object, read into plain rows for the task readers.

ClassLabel columns come back as their names (SST-2's 0/1 as "negative"/"positive", CoNLL's tag ids
as IOB tags), since bertkit keeps labels as strings and saves the label set with the model. Rows
whose class label is -1 (SNLI's pairs without a gold label) are dropped and counted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bertkit.errors import BertkitError, InputFileError
from bertkit.log import get_logger

logger = get_logger(__name__)

SUFFIXES = (".parquet", ".arrow")
SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def is_dataset(source: Any) -> bool:
    """Whether `source` is read through `datasets` (a Dataset object, a .parquet/.arrow file, a saved folder)."""
    if not isinstance(source, (str, os.PathLike)):
        return hasattr(source, "features") and hasattr(source, "column_names")
    path = Path(source)
    if path.suffix.lower() in SUFFIXES:
        return True
    return path.is_dir() and any((path / m).is_file() for m in SAVED_MARKERS)


def source_name(source: Any) -> str | Path:
    """How messages name the source: its path, or the Dataset's repr in short."""
    if isinstance(source, (str, os.PathLike)):
        return Path(source)
    return f"Dataset({', '.join(getattr(source, 'column_names', []))})"


def _datasets() -> Any:
    try:
        import datasets  # lazy: optional extra [datasets]
    except ImportError:
        raise BertkitError(
            "reading .parquet / .arrow files and saved datasets needs the datasets package: "
            "pip install 'bertkit[datasets]'"
        ) from None
    return datasets


def open_dataset(source: Any) -> Any:
    """The datasets.Dataset behind `source` (read in place: nothing is written to a cache)."""
    if not isinstance(source, (str, os.PathLike)):
        return source
    path = Path(source)
    datasets = _datasets()
    if not path.exists():
        raise InputFileError(path, "file not found (check the path)")
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq  # lazy: optional extra [datasets]

            return datasets.Dataset(pq.read_table(path))
        if path.suffix.lower() == ".arrow":
            return datasets.Dataset.from_file(str(path))
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:  # pyarrow and datasets raise many types for a damaged file
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise InputFileError(path, f"not a readable {path.suffix or 'saved dataset'} ({reason})") from None
    if not hasattr(loaded, "column_names") or isinstance(loaded.column_names, dict):
        splits = ", ".join(getattr(loaded, "keys", lambda: [])())
        raise InputFileError(path, f"holds several splits ({splits}); give one of them, e.g. {path}/train")
    return loaded


def _names(feature: Any) -> list[str] | None:
    """The class names of a ClassLabel feature, or of a list of ClassLabels; else None."""
    inner = getattr(feature, "feature", feature)
    names = getattr(inner, "names", None)
    return list(names) if isinstance(names, list) and hasattr(inner, "int2str") else None


def dataset_rows(source: Any) -> list[tuple[int, dict[str, Any]]]:
    """(row number from 1, row) with ClassLabel ids as names; rows labelled -1 dropped and counted."""
    dataset = open_dataset(source)
    labels = {col: names for col, feat in dataset.features.items() if (names := _names(feat)) is not None}
    rows, dropped = [], 0
    for i, row in enumerate(dataset.to_list(), 1):
        unlabelled = False
        for col, names in labels.items():
            value = row.get(col)
            if isinstance(value, list):
                row[col] = [_name(names, v, source, i) for v in value]
            elif value is not None:
                unlabelled = unlabelled or value == -1
                row[col] = None if value == -1 else _name(names, value, source, i)
        if unlabelled:
            dropped += 1
            continue
        rows.append((i, row))
    if dropped:
        logger.info(f"{source_name(source)}: dropped {dropped} of {len(dataset)} rows without a gold label (-1)")
    if not rows:
        raise InputFileError(source_name(source), "no examples (the dataset is empty or has no labelled row)")
    return rows


def _name(names: list[str], value: Any, source: Any, row: int) -> str:
    if not isinstance(value, int) or not 0 <= value < len(names):
        raise InputFileError(
            source_name(source), f"class id {value!r} is outside its ClassLabel's {len(names)} names", row
        )
    return names[value]
