"""Data: files and built-in datasets in, validated frames and splits out.

Enters: a CSV/TSV/JSONL/parquet file, a built-in dataset (YouTube Spam, IMDB) or a WRENCH
folder. Leaves: ``Splits`` (train/dev/test frames with ``text``, ``label`` and ids), their
content hashes, and a ``VerificationReport`` (schema, empties, duplicates, leakage).
"""

import lazy_loader

# Names are imported from their module on first use: importing one stage never
# pulls in the others (or torch, FastAPI, Dask) before they are needed.
#: module -> the public names it gives this stage (``labeling`` exports them all too)
EXPORTS = {
    "datasets": ["DATA_DIR_ENV", "Splits", "canonicalize", "fetch_youtube_spam", "frame_hash", "load_dataset", "load_imdb", "load_youtube_spam", "read_batches", "read_table", "split_random", "youtube_tutorial_split"],
    "verify": ["Finding", "VerificationReport", "raise_on_errors", "verify_dataset", "verify_splits"],
    "wrench": ["load_wrench"],
    "schema": ["LabelSchema", "SchemaChange", "apply_change"],
}

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=EXPORTS)
