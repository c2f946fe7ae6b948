"""A spans project's data for retrain, review and the promotion gate: the train/dev/test
splits (``load_span_splits``: ``spans_json`` folders or a JSONL file with character spans)
and the store's gold spans placed against them (``read_span_gold``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import pandas as pd

from ..config import ProjectConfig
from ..errors import ConfigError, DatasetError, LabelError
from ..spans.data import SpanDataset, load_spans_json, span_problem
from ..spans.lfs import char_spans_to_tokens, token_offsets
from ..store.connection import store_exists, table_names
from ..store.gold_spans import gold_span_texts

SPLITS = ("train", "dev", "test")
_JSON_FILES = {"train": "train.json", "dev": "valid.json", "test": "test.json"}


@dataclass(frozen=True)
class SpanSplit:
    """One split in token space (``data``) and the texts the LFs and the server read."""

    data: SpanDataset
    texts: tuple[str, ...]


def _weak_names(config: ProjectConfig):
    names = config.dataset.weak_label_names
    if not names:
        return None
    return "lf_rec" if tuple(names) == ("lf_rec",) else list(names)


def _from_jsonl(config: ProjectConfig) -> dict[str, SpanSplit]:
    ds = config.dataset
    path = config.resolve(ds.path)
    if ds.split != "column" or not ds.split_field or not ds.label_field:
        raise ConfigError("task = 'spans' with a file source needs dataset.split = 'column', split_field and "
                          "label_field (the gold spans)")
    try:
        frame = pd.read_json(path, lines=True, dtype=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path} as JSONL: {exc}") from exc
    for column in (ds.text_field, ds.label_field, ds.split_field):
        if column not in frame.columns:
            raise DatasetError(f"{path}: column {column!r} not found; columns are {list(frame.columns)}")
    types = list(config.classes)
    ids = frame[ds.id_field].astype(str) if ds.id_field else pd.Series(frame.index.astype(str))
    out = {}
    for split in SPLITS:
        rows = frame[frame[ds.split_field] == split]
        texts, tokens, gold = [], [], []
        for row_id, text, spans in zip(ids[rows.index], rows[ds.text_field], rows[ds.label_field]):
            if not isinstance(text, str) or not isinstance(spans, list):
                raise DatasetError(f"{path} row {row_id!r}: {ds.text_field!r} must be text and {ds.label_field!r} "
                                   "a list of [start, end, type]")
            offsets = token_offsets(text)
            checked = []
            for s in spans:
                problem = span_problem(s, text, types)
                if problem:
                    raise DatasetError(f"{path} row {row_id!r}: {problem}")
                checked.append((s[0], s[1], types.index(s[2])))
            texts.append(text)
            tokens.append(tuple(text[a:b] for a, b in offsets))
            gold.append(tuple(char_spans_to_tokens(checked, offsets)))
        ids_here = tuple(ids[rows.index])
        out[split] = SpanSplit(SpanDataset(ids_here, tuple(tokens), tuple(gold), tuple(() for _ in ids_here), (),
                                           tuple(types)), tuple(texts))
    return out


def load_span_splits(config: ProjectConfig) -> dict[str, SpanSplit]:
    """The train, dev and test splits of a spans project (see the module docstring)."""
    if config.dataset.source == "spans_json":
        folder = config.resolve(config.dataset.path)
        out = {}
        for split, name in _JSON_FILES.items():
            data = load_spans_json(folder / name, weak_label_names=_weak_names(config), types=config.classes)
            out[split] = SpanSplit(data, tuple(" ".join(t) for t in data.tokens))
        return out
    if config.dataset.source == "file":
        return _from_jsonl(config)
    raise ConfigError(f"task = 'spans' reads dataset.source 'spans_json' or 'file', not {config.dataset.source!r}")


@dataclass(frozen=True)
class SpanGold:
    """Gold spans from the store placed against the splits (token spans, type indices):
    ``dev``/``train``: doc index -> spans that replace that document's gold (on train: its
    end-model targets); ``extra``: (tokens, spans) of reviewed texts in no split; ``summary``:
    what was read, recorded with the run."""

    dev: dict
    train: dict
    extra: tuple
    summary: dict


def _no_gold(reason: str) -> SpanGold:
    return SpanGold({}, {}, (), {"texts_read": 0, "spans_read": 0, "train_rows": 0, "dev_rows": 0, "extra_rows": 0,
                                 "test_rows_excluded": 0, "unmatched": 0, "sha256": "", "note": reason})


def read_span_gold(config: ProjectConfig, splits: dict[str, SpanSplit]) -> SpanGold:
    """The store's gold spans (``store.gold_spans.gold_span_texts``: reviewed tasks and span
    feedback) matched to ``splits`` by the text's sha256. On dev or train documents they replace
    their gold, a text also on test is left out (counted: test is never trained or selected on), a text in no split is an extra
    training document, and one kept only as a hash matches nothing (counted). Raises
    ``LabelError`` for a stored type that is not in ``project.classes``."""
    if not config.review.use_gold:
        return _no_gold("review.use_gold is off")
    path = config.resolve(config.store)
    if not store_exists(path) or not {"gold_spans", "feedback"} & table_names(path):
        return _no_gold("the store holds no gold spans")
    items = gold_span_texts(path, config.name)
    types = list(config.classes)
    where: dict[str, list] = {}  # text sha256 -> every (split, document) holding that text
    for split in SPLITS:
        for d, text in enumerate(splits[split].texts):
            where.setdefault(hashlib.sha256(text.encode("utf-8")).hexdigest(), []).append((split, d))
    placed = {"dev": {}, "train": {}}
    extra, counts = [], dict.fromkeys(("test_rows_excluded", "unmatched"), 0)
    for item in items:
        bad = sorted({label for _, _, label in item.spans} - set(types))
        if bad:
            raise LabelError(f"gold spans of {item.source} {item.key!r} have type(s) {bad}, not in project.classes "
                             f"{types}; put them back in project.classes or set review.use_gold = false")
        spans = [(s, e, types.index(label)) for s, e, label in item.spans]
        found = where.get(item.text_sha256, [])
        if any(split == "test" for split, _ in found):  # a text on test is never trained or selected on
            counts["test_rows_excluded"] += 1
        elif found:
            for split, d in found:
                offsets = token_offsets(splits[split].texts[d], splits[split].data.tokens[d])
                placed[split][d] = tuple(char_spans_to_tokens(spans, offsets))
        elif item.text is None:
            counts["unmatched"] += 1
        else:
            offsets = token_offsets(item.text)
            extra.append((tuple(item.text[a:b] for a, b in offsets), tuple(char_spans_to_tokens(spans, offsets))))
    digest = hashlib.sha256(json.dumps([[g.text_sha256, [list(s) for s in g.spans]] for g in items]).encode())
    summary = {"texts_read": len(items), "spans_read": sum(len(g.spans) for g in items),
               "train_rows": len(placed["train"]), "dev_rows": len(placed["dev"]), "extra_rows": len(extra), **counts,
               "sources": sorted({g.source for g in items}), "sha256": digest.hexdigest()[:16]}
    return SpanGold(placed["dev"], placed["train"], tuple(extra), summary)


def span_dev_split(config: ProjectConfig) -> SpanDataset:
    """The dev split the promotion gate scores on: the dataset's, with the store's gold spans."""
    splits = load_span_splits(config)
    return with_gold(splits["dev"].data, read_span_gold(config, splits).dev)


def with_gold(d: SpanDataset, gold: dict) -> SpanDataset:
    """``d`` with the documents of ``gold`` (index -> token spans) relabelled."""
    if not gold:
        return d
    return SpanDataset(d.ids, d.tokens, tuple(gold.get(i, g) for i, g in enumerate(d.gold)), d.weak, d.lf_names,
                       d.types)
