"""The retrain job for ``project.task = "spans"``: texts or token lists -> span LFs ->
token votes -> aggregation selected on dev -> spaCy NER end model -> entity metrics -> store.

Sources: ``dataset.source = "spans_json"`` (``dataset.path``: a folder of ``train.json``,
``valid.json`` (dev), ``test.json`` and ``meta.json`` in the CHMM/WRENCH span format, with
their precomputed LFs, ``dataset.weak_label_names`` keeping a subset), or
``dataset.source = "file"`` with a JSONL file (``dataset.split = "column"``): the text in
``text_field``, gold spans ``[[start, end, type], ...]`` (character offsets, end exclusive)
in ``label_field`` and the split (train/dev/test) in ``split_field``. Python span LFs
(``SpanLF`` objects in ``lfs.modules``) are applied to every text, their votes cached per
LF version, and stand beside the precomputed ones.

Every choice (the aggregator, short forms, the end model's checkpoint) is made on dev;
test is scored once, at the end. The run is recorded as single-label runs are
(``run_intents`` note, ``.RUN.partial`` folder checked and renamed, one transaction),
with the end model saved by spaCy's ``to_disk`` and its files' sha256 in the record.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import json
import sys
import time
from contextlib import suppress
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import ProjectConfig
from ..errors import ArtifactError, ConfigError, StoreError
from ..lf.cache import project_cache_dir
from ..models import artifacts
from ..spans.aggregate import TokenMajorityVote, select_span_aggregator
from ..spans.analysis import span_lf_summary
from ..spans.data import SpanDataset
from ..spans.doclevel import add_abbreviations
from ..spans.end_model import SpacyNER, make_doc
from ..spans.lfs import SpanLF, apply_span_lfs, char_spans_to_tokens, token_offsets
from ..spans.metrics import entity_scores
from ..spans.tags import vote_tensor
from ..store.runs import RunRecord, RunStore
from .monitor import span_reference_profile
from .registry import Registry, evaluate_span_candidate, settle, write_decision
from .results import RunResult, new_run_id
from .schema_change import project_schema
from .spans_data import SPLITS, SpanSplit, load_span_splits, read_span_gold, with_gold
from .store import writer_lock


def discover_span_lfs(modules, root: Path) -> tuple[SpanLF, ...]:
    """The module-level ``SpanLF`` objects of ``modules`` (importable from ``root``), in
    module then definition order; raises ``ConfigError`` for a name used twice."""
    found, seen = [], {}
    sys.path.insert(0, str(root))
    try:
        for module_name in modules:
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise ConfigError(f"cannot import span LF module {module_name!r}: {exc}") from exc
            for value in vars(module).values():
                if isinstance(value, SpanLF):
                    if value.name in seen:
                        raise ConfigError(f"duplicate span LF name {value.name!r} in {module_name!r} and "
                                          f"{seen[value.name]!r}")
                    seen[value.name] = module_name
                    found.append(value)
    finally:
        with suppress(ValueError):
            sys.path.remove(str(root))
    return tuple(found)


def _with_lf_votes(split: SpanSplit, applied, types) -> SpanDataset:
    """The split with the Python LFs' spans (characters -> tokens) after its own weak spans."""
    d = split.data
    index = {t: i for i, t in enumerate(types)}
    weak = []
    for doc_id, text, tokens, own, lf_spans in zip(d.ids, split.texts, d.tokens, d.weak, applied):
        offsets = token_offsets(text, tokens)
        mapped = tuple(tuple((s, e, index[label]) for s, e, label in char_spans_to_tokens(spans, offsets)
                             if label in index) for spans in lf_spans)
        weak.append(tuple(own) + mapped)
    return SpanDataset(d.ids, d.tokens, d.gold, tuple(weak), d.lf_names, d.types)


def _gold_note(summary: dict) -> str:
    n = summary["train_rows"] + summary["extra_rows"]
    return f" ({summary['train_rows']} with gold spans instead, plus {summary['extra_rows']} other gold texts)" if n else ""


def _metric_row(name: str, kind: str, gold, pred, types, notes: str = "") -> dict:
    s = entity_scores(gold, pred, types=range(len(types)))
    return {"name": name, "kind": kind, "entity_precision": s["entity_precision"], "entity_recall": s["entity_recall"],
            "entity_f1": s["entity_f1"], "support": s["support"],
            "per_class": {types[t]: {k: v for k, v in m.items()} for t, m in s["per_type"].items()}, "notes": notes}


ORACLE_NAME = "oracle (spaCy NER on gold train spans)"


def _train_ner(config: ProjectConfig, tokens, spans, dev: SpanDataset) -> SpacyNER:
    model = SpacyNER(config.classes, max_steps=config.end_model.ner_max_steps, random_state=config.seed)
    vocab = model.blank().vocab
    return model.fit([make_doc(vocab, t, p, config.classes) for t, p in zip(tokens, spans)],
                     [make_doc(vocab, t, g, config.classes) for t, g in zip(dev.tokens, dev.gold)])


def run_spans_retrain(config: ProjectConfig, *, record: bool = True, lfs=None):
    """Run the spans pipeline for ``config``; returns a ``RunResult`` whose ``evaluation``
    has one row per method with ``entity_precision``, ``entity_recall``, ``entity_f1``."""
    from ..lf.core import lf_set_version

    timings = {}
    t0 = time.perf_counter()
    splits = load_span_splits(config)
    types = config.classes
    gold = read_span_gold(config, splits)
    timings["load"] = time.perf_counter() - t0
    lfs = tuple(lfs) if lfs is not None else (
        discover_span_lfs(config.lfs.modules, config.resolve(config.lfs.root)) if config.lfs.modules else ())
    t0 = time.perf_counter()
    data, applied_info = {}, None
    for split in SPLITS:
        if lfs:
            applied = apply_span_lfs(lfs, splits[split].texts, cache=project_cache_dir(config))
            applied_info = applied
            data[split] = _with_lf_votes(splits[split], applied.spans, types)
        else:
            data[split] = splits[split].data
    names = list(splits["train"].data.lf_names) + [lf.name for lf in lfs]
    if not names:
        raise ConfigError("a spans project needs span LFs (lfs.modules) or precomputed ones (spans_json)")
    timings["apply"] = time.perf_counter() - t0
    data["dev"] = with_gold(data["dev"], gold.dev)
    data["train"] = with_gold(data["train"], gold.train)
    train, dev, test = data["train"], data["dev"], data["test"]
    k = len(types)
    V = {s: d.votes() for s, d in data.items()}
    t0 = time.perf_counter()
    selection = select_span_aggregator(V["train"], train.lengths, V["dev"], dev.lengths, dev.gold, k,
                                       dev_tokens=dev.tokens, random_state=config.seed)
    timings["label_model"] = time.perf_counter() - t0

    def aggregate(d: SpanDataset, votes):
        pred = selection.model.predict_spans(votes, d.lengths)
        return [add_abbreviations(t, p) for t, p in zip(d.tokens, pred)] if selection.abbreviations else pred

    lf_table = pd.concat({"train": span_lf_summary(V["train"], train.weak, names, types),
                          "dev": span_lf_summary(V["dev"], dev.weak, names, types, gold=dev.gold)}, names=["split"])
    t0 = time.perf_counter()
    # gold spans (review, feedback) replace the label model's on their train texts, and reviewed
    # texts in no split are trained on as they are
    train_pred = [gold.train.get(i, p) for i, p in enumerate(aggregate(train, V["train"]))]
    extra_tokens, extra_spans = [t for t, _ in gold.extra], [g for _, g in gold.extra]
    end_model = _train_ner(config, [*train.tokens, *extra_tokens], [*train_pred, *extra_spans], dev)
    timings["end_model"] = time.perf_counter() - t0
    # the oracle: the same pipeline trained on gold train spans, where train has any
    oracle = None
    if any(train.gold):
        t0 = time.perf_counter()
        oracle = _train_ner(config, train.tokens, train.gold, dev)
        timings["oracle"] = time.perf_counter() - t0

    # test: scored once, every choice above made on dev
    rows = [_metric_row(f"LF {n}", "lf", test.gold, [doc[j] for doc in test.weak], types,
                        notes=f"labels {float((V['test'][:, j] >= 0).mean()):.1%} of test tokens")
            for j, n in enumerate(names)]
    majority = TokenMajorityVote(k).fit(V["train"], train.lengths)
    rows.append(_metric_row("majority vote", "label_model", test.gold, majority.predict_spans(V["test"], test.lengths),
                            types, notes="token vote; entities are runs of one type"))
    rows.append(_metric_row(f"label model ({selection.name})", "label_model", test.gold, aggregate(test, V["test"]),
                            types, notes=f"selected on dev entity F1 (one SE = {selection.tolerance:.4f})"))
    rows.append(_metric_row("end model (spaCy NER)", "end_model", test.gold, end_model.predict_token_spans(test.tokens),
                            types, notes=f"trained on the label model's spans of {len(train.ids)} train documents"
                                         f"{_gold_note(gold.summary)}; "
                                         f"best checkpoint and lexicon ruler on dev (entity F1 {end_model.dev_f1_:.4f})"))
    if oracle is not None:
        rows.append(_metric_row(ORACLE_NAME, "baseline", test.gold, oracle.predict_token_spans(test.tokens), types,
                                notes=f"the same NER trained on the gold spans of {len(train.ids)} train documents; "
                                      f"chosen on dev (entity F1 {oracle.dev_f1_:.4f})"))
    evaluation = pd.DataFrame(rows)

    lf_versions = tuple((n, "precomputed") for n in splits["train"].data.lf_names) + (
        tuple(zip(applied_info.names, applied_info.versions)) if applied_info else ())
    digest = hashlib.sha256(json.dumps([list(d.ids) for d in data.values()] + [list(d.tokens) for d in data.values()]
                                       + [list(d.gold) for d in data.values()]).encode()).hexdigest()[:16]
    matrix_hashes = {s: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()[:16] for s, v in V.items()}
    run_id = new_run_id()
    result = dict(
        run_id=run_id, project=config.name, seed=config.seed, dataset_version=digest,
        split_sizes={s: len(d.ids) for s, d in data.items()}, lf_set_version=lf_set_version(lfs) if lfs else digest,
        lfs=lf_versions, matrix_hashes=matrix_hashes,
        label_model={"type": selection.name, "abbreviations": selection.abbreviations,
                     "selection": {"scores": dict(selection.scores), "tolerance": selection.tolerance}},
        end_model={"type": "spacy_ner", "class": "SpacyNER", "params": {**end_model.get_params(),
                                                                        "types": list(types)},
                   "dev_entity_f1": end_model.dev_f1_, "gold": gold.summary, "ruler": end_model.ruler_},
        evaluation=evaluation, lf_table=lf_table,
        documents={"span_lf_analysis": lf_table.reset_index().drop(columns="level_1", errors="ignore")
                   .to_dict(orient="records"),
                   # what `labeling monitor` compares served entities with: this NER on dev, through the served path
                   "monitor_reference": span_reference_profile(
                       splits["dev"].texts, end_model.predict_text(list(splits["dev"].texts)), types)},
    )
    if not record:
        return RunResult(**result, timings=timings)
    store_path, root = config.resolve(config.store), config.resolve(config.artifacts)
    root.mkdir(parents=True, exist_ok=True)
    # the run, its predictions and feedback are stamped with the store's label schema: the
    # TOML's types must be it (registered from them in a new store)
    project_schema(config)
    # the gate (entity F1 on dev against the champion), written with the run as single-label's is
    with Registry(store_path) as registry:
        decision = settle(evaluate_span_candidate(registry, config, run_id, dev, candidate_model=end_model),
                          promote=config.promotion.auto)
    with writer_lock(store_path), RunStore(store_path) as store:
        store.begin_run(run_id, root, _dt.datetime.now(_dt.timezone.utc).isoformat())
        partial = root / f".{run_id}.partial"
        try:
            files = end_model.save(partial / "end_model")
            reloaded = SpacyNER.load(partial / "end_model", files)
            probe = list(test.tokens[:32])
            if reloaded.predict_token_spans(probe) != end_model.predict_token_spans(probe):
                raise ArtifactError(f"{partial / 'end_model'}: the saved model predicts differently from the trained one")
            partial.rename(root / run_id)
            saved = tuple((f"end_model/{n}", str(root / run_id / "end_model" / n), h) for n, h in files.items())
            metrics = tuple({"name": r["name"], "kind": r["kind"], "accuracy": None, "macro_f1": None,
                             "train_rows": len(train.ids), "coverage": None,
                             "per_class": {**r["per_class"], "entity_precision": r["entity_precision"],
                                           "entity_recall": r["entity_recall"], "entity_f1": r["entity_f1"]},
                             "notes": r["notes"]} for r in rows)
            store.record_run(RunRecord(
                id=run_id, created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(), project=config.name,
                seed=config.seed, config=config.to_dict(), dataset_version=digest,
                dataset_source=str(config.dataset.source), split_sizes=result["split_sizes"],
                lf_set_version=result["lf_set_version"], lfs=lf_versions, matrix_hashes=matrix_hashes,
                label_model=result["label_model"], end_model=result["end_model"], metrics=metrics, lf_stats=(),
                artifacts=saved, documents={**result["documents"], "task": "spans"}),
                then=lambda conn: write_decision(conn, decision, candidate=True))
        except BaseException:
            artifacts.discard(partial)
            artifacts.discard(root / run_id)
            with suppress(StoreError):
                store.end_intent(run_id)
            raise
    return RunResult(**result, artifacts={n: {"path": p, "sha256": h} for n, p, h in saved},
                     store_path=str(store_path), timings=timings, promotion=decision.to_dict())
