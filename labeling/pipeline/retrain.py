"""The retrain job: dataset -> LFs -> L -> label model -> end model -> evaluation -> store.

Each step is a library call; this module only wires them in order, times them,
and records the run once everything succeeded (a failed run leaves nothing in
the store and no artifact folder).

Recording, in an order that a crash (kill -9 included) can interrupt anywhere:

1. the store notes the run as begun (``run_intents``, committed);
2. the models are written into ``artifacts/.RUN.partial`` and loaded back (with
   their checksums) and checked to predict as the trained ones; then the folder
   is renamed to ``artifacts/RUN``;
3. one SQLite transaction writes the run record, its documents, the candidate
   alias, the promotion decision and, when it promotes, the champion alias, and
   deletes the note of step 1.

So a run in the store always has its artifacts and its decision. What a crash can
leave, a note of a run begun with a ``.partial`` folder or a complete folder whose
run was never committed, is removed by ``sweep_orphans`` at the next retrain; runs
that lack a decision (recorded by older versions, which wrote these steps apart)
get one saying so.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..models import artifacts
from ..lf.analysis import lf_summary
from ..progress import Stages, stage_table
from ..lf.apply import apply_lfs
from ..lf.cache import project_cache_dir
from ..config import ProjectConfig
from ..data.datasets import SPLIT_NAMES, Splits, load_dataset, release_freed_memory
from ..data.schema import LabelSchema
from ..data.wrench import precomputed_lf_columns, precomputed_votes
from ..models.embeddings import EmbeddingCache
from ..models.end_model_selection import affordable_families, select_baseline, select_end_model, take_texts
from ..models.end_models import HashedCounts, make_end_model
from ..models import predictors
from ..errors import LabelingError
from .leakage import unleaked_from_verification
from .evaluate import (
    NOT_COMPUTED,
    EvalRow,
    class_recall,
    classification_metrics,
    evaluation_table,
    lf_alone_predictions,
    majority_class,
    not_computed,
    random_predictions,
    single_class_reason,
    table_score,
    vanished_classes,
    vanished_warnings,
)
from ..review.gold import (
    dev_with_gold,
    gold_class_balance,
    match_gold,
    read_only_gold,
    training_rows_with_gold,
)
from ..models.label_models import MajorityVote, fit_label_model, probs_to_preds
from ..lf.core import discover_lfs, lf_set_version, lf_version
from ..matrix import ABSTAIN, label_matrix_hash
from .monitor import reference_profile, reference_texts
from ..errors import ArtifactError, StoreError
from .predictions import PREDICTIONS_ARTIFACT, TestPredictions, save_gold_snapshot, save_test_predictions
from .run_lfs import FOLDER as LFS_FOLDER, LFSnapshot, save_lf_snapshot, snapshot_lfs
from .registry import CHAMPION, GateDecision, Registry, evaluate_candidate, settle, write_decision
from .slices import discover_slices, slice_masks, slice_metrics
from .store import RunRecord, RunStore, store_exists, writer_lock
from .results import HUMAN_BASELINE, ORACLE_BASELINE, RunResult, format_spans_summary, summary_header, new_run_id as _new_run_id
from ..data.verify import raise_on_errors, verify_splits


@contextmanager
def _timed(timings: dict[str, float], step: str, stages: Stages, rows: int | None = None):
    with stages(step, rows=rows) as stage:
        yield stage
    timings[step] = stages.stats[step].seconds


_STAGES = ("load", "discover_lfs", "apply", "label_model", "leakage", "end_model", "documents", "promotion_gate",
           "record")







def _end_model_rows(config, splits: Splits, texts_train, soft_labels, y_test, notes: str,
                    sample_weight=None, unlabelled_texts=(), unleaked=None,
                    show_progress: bool = False, feature_cache: HashedCounts | None = None) -> tuple[list[EvalRow], object, dict, np.ndarray, dict]:
    """Train (or, with ``end_model.type = "auto"``, choose on dev) the end model on the
    label model's soft labels, and the human and oracle baselines; returns ``(rows, model,
    selection, (n_test, k) end-model test probabilities, {"human"/"oracle": how each
    baseline was chosen})``.

    Each baseline is the best model its gold labels alone can train: family and C chosen
    by cross-validation on those rows only (``select_baseline``: dev for the human, gold
    train for the oracle, never test), over the end model's candidate families, trained
    on at most ``end_model.baseline_max_rows`` rows (a seeded subsample beyond that, said
    in the row's notes), so they cannot dominate the run's time. ``feature_cache``: the run's
    ``HashedCounts``, so a hashed end model's dev and test texts are analysed once for every
    candidate, the selection and the run's own predictions."""
    k, seed, classes = config.cardinality, config.seed, config.classes
    test_texts = splits.test["text"].tolist()
    feature_cache = feature_cache if feature_cache is not None else HashedCounts()
    n_train = len(splits.train)
    # Unlike a baseline the end model is what the run is for: no second class, no run,
    # but the error says it is this model and what to change.
    present = np.flatnonzero((np.asarray(soft_labels) > 0).any(axis=0)) if len(texts_train) else []
    if len(present) < 2:
        carried = f"only class {classes[int(present[0])]!r}" if len(present) else "no label"
        raise LabelingError(f"the end model cannot be trained: its {len(texts_train)} training rows (train rows some LF "
                            f"votes on, plus gold rows) carry {carried}; it needs LF votes or gold labels of at least "
                            "two classes")
    y_dev = splits.dev["label"].to_numpy()
    cache_dir = project_cache_dir(config)
    embedding_cache = EmbeddingCache(cache_dir) if cache_dir is not None else None
    selection: dict = {}
    em = config.end_model
    if em.type == "auto":
        chosen = select_end_model(
            texts_train, soft_labels, splits.dev["text"].tolist(), y_dev, classes=classes, metric=config.metric,
            families=em.candidates, sample_weight=sample_weight, unlabelled_texts=unlabelled_texts,
            embedder=em.auto_embedder, embedding_cache=embedding_cache, random_state=seed,
            progress=print if show_progress else None, max_rows=em.selection_max_rows, refit_max_rows=em.max_rows,
            costly_max_chars=em.costly_max_chars, time_budget_s=em.time_budget_s, feature_cache=feature_cache)
        end_model, selection = chosen.model, chosen.to_dict()
        trained_rows, notes = selection["rows"]["final"], f"{notes}; {selection['rows']['note']}"
    else:
        end_model = make_end_model(em, k, seed)
        end_model.embedding_cache = embedding_cache
        trained_rows = len(texts_train)
        if em.max_rows and len(texts_train) > em.max_rows:
            keep = np.sort(np.random.default_rng(seed).choice(len(texts_train), em.max_rows, replace=False))
            texts_train, soft_labels = take_texts(texts_train, keep), np.asarray(soft_labels)[keep]
            sample_weight = None if sample_weight is None else np.asarray(sample_weight)[keep]
            trained_rows, notes = em.max_rows, f"{notes}; fitted on a seeded subsample of {em.max_rows} (end_model.max_rows)"
        end_model.fit(take_texts(texts_train, None), soft_labels, sample_weight=sample_weight)

    def row(name, kind, model, train_rows, coverage, row_notes="", predicted=None):
        predicted = model.predict(test_texts) if predicted is None else predicted
        return _with_unleaked(EvalRow(name, kind, classification_metrics(y_test, predicted, classes),
                                      train_rows, coverage, row_notes), predicted, y_test, unleaked, classes)

    # scored once: the metrics, the recorded test predictions and the gate all read these
    test_proba = feature_cache.predict_proba(end_model, "test", test_texts)
    rows = [row("end model", "end_model", end_model, trained_rows, trained_rows / n_train, notes,
                predicted=test_proba.argmax(axis=1))]
    # The baselines train on labelled splits that may lack a class (a small dev set): such a
    # baseline is recorded as not computed, with the reason, and the run goes on.
    families, dropped = _baseline_families(em, selection, texts_train)
    baselines = {}
    gold = splits.train["label"].to_numpy()
    has_gold = gold >= 0
    for key, name, what, texts, y in (
            ("human", HUMAN_BASELINE, "dev", splits.dev["text"].tolist(), y_dev),
            ("oracle", ORACLE_BASELINE, "gold train", splits.train["text"][has_gold], gold[has_gold])):
        reason = single_class_reason(y, classes, "the dev split" if key == "human" else "the train split")
        labelled = int((y >= 0).sum())
        if reason:
            rows.append(not_computed(name, "baseline", classes, reason, train_rows=labelled,
                                     coverage=labelled / n_train))
            continue
        if show_progress:
            print(f"{key} baseline: cross-validating {', '.join(families)} on {labelled:,} {what} rows")
        chosen = select_baseline(texts, y, classes=classes, metric=config.metric, families=families, what=what,
                                 embedder=em.auto_embedder, embedding_cache=embedding_cache, random_state=seed,
                                 max_rows=em.baseline_max_rows, dropped=dropped)
        baselines[key] = chosen.to_dict()
        used = chosen.rows["final"]
        rows.append(row(name, "baseline", chosen.model, used, used / n_train, chosen.note()))
    return rows, end_model, selection, test_proba, baselines


def _served_predictor(config, dev_end_proba, dev_lm_proba, L_dev, y_dev, names, precomputed) -> dict:
    """Which predictor the run serves and why (``predictors.select_predictor`` on dev, or
    ``serving.predictor`` pinned), as recorded with the run's end model; with ``lf_columns``:
    which of the label matrix's columns the server computes on a served text (precomputed
    ones, e.g. WRENCH's stored weak labels, abstain there)."""
    chosen = predictors.select_predictor(dev_end_proba, dev_lm_proba, L_dev, y_dev, classes=config.classes,
                                         metric=config.metric, pinned=config.serving.predictor,
                                         random_state=config.seed).to_dict()
    chosen["lf_columns"] = {"computed": [n for n in names if n not in precomputed], "precomputed": list(precomputed)}
    if chosen["needs_lfs"] and precomputed:
        chosen["warning"] = (f"{chosen['predictor']} reads LF votes, but {len(precomputed)} of the {len(names)} LF "
                             "columns are precomputed (stored with the data): on a served text they abstain, so it "
                             "answers as scored here only for texts whose other LFs vote")
    return chosen


def _dev_class_recall(config, y_dev, L_dev, label_model, served_name: str, served_dev_pred) -> dict:
    """Per-class recall on dev of the served predictor (``served_dev_pred`` (n,) classes) and
    the label model, and the classes the label model predicts on dev (where some LF votes:
    elsewhere its prediction is the tie-break's) that the served predictor never predicts,
    each with a warning. What a metric like accuracy can hide: a class dropped entirely."""
    names = {"served": "end model" if served_name == "end_model" else f"served predictor ({served_name})",
             "reference": "label model"}
    predictions = {names["served"]: np.asarray(served_dev_pred, dtype=np.int64),
                   names["reference"]: probs_to_preds(label_model.predict_proba(L_dev),
                                                      tie_break=config.label_model.tie_break)}
    recall = class_recall(y_dev, predictions, config.classes,
                          counted={names["reference"]: (L_dev != ABSTAIN).any(axis=1)})
    return {**names, **recall, "vanished": vanished_classes(recall, names["served"], names["reference"]),
            "warnings": vanished_warnings(recall, names["served"], names["reference"], config.metric)}


def _baseline_families(em, selection: dict, texts_train) -> tuple[list[str], dict]:
    """The end-model families the baselines cross-validate, and those left out and why:
    ``end_model.candidates`` less those the end model's selection left out for their cost
    (they cost per character of every text the baselines score too); fixed settings
    (``sklearn``/``torch``) apply the same character budget to the train texts."""
    if "dropped_candidates" in selection:
        dropped = selection["dropped_candidates"]
        return [f for f in em.candidates if f not in dropped], dict(dropped)
    n = len(texts_train)
    rows = min(n, em.selection_max_rows or n)
    total = int(texts_train.str.len().sum()) if isinstance(texts_train, pd.Series) else sum(map(len, texts_train))
    chars = int(total * rows / n) if n else 0
    return affordable_families(em.candidates, rows, chars, em.costly_max_chars)


def _with_unleaked(row: EvalRow, predicted, y_test, unleaked, classes) -> EvalRow:
    """``row`` with its metrics on the test rows that repeat no train/dev text, in ``extra``."""
    if unleaked is None or not unleaked[0].any():
        return row
    mask, how = unleaked
    extra = {"unleaked": {**classification_metrics(y_test[mask], np.asarray(predicted)[mask], classes),
                          "rows": int(mask.sum()), "excluded": how}}
    return dataclasses.replace(row, extra={**row.extra, **extra})


def run_retrain(config: ProjectConfig, *, show_progress: bool = False, record: bool = True,
                lfs: Sequence | None = None, schema: LabelSchema | None = None,
                gold: pd.DataFrame | None = None) -> RunResult:
    """Run the whole pipeline for ``config`` and (by default) record it in the store.

    ``lfs``: the LFs to apply instead of those ``config.lfs.modules`` names (``reproduce``
    passes a run's own, loaded from its saved copy); only without recording. ``schema``: the
    label schema the dataset's gold is read under (default: the store's, ``load_dataset``);
    ``gold``: the store gold to use instead of the store's now (``all_gold``'s columns; ``reproduce``
    passes the run's recorded snapshot; a multi-label run's are label sets); ``schema`` single-label
    only, ``gold`` only without recording."""
    if (lfs is not None or gold is not None) and record:
        raise LabelingError("a run records the LFs and gold of its project; given LFs or gold are for record=False")
    if config.task == "spans":
        from .spans_retrain import run_spans_retrain

        return run_spans_retrain(config, record=record, lfs=lfs)
    if config.task == "multi_label":
        from ..multilabel.retrain import run_multilabel

        return run_multilabel(config, show_progress=show_progress, record=record, lfs=lfs, gold=gold)
    if config.task != "single_label":
        # Each task shape plugs its own runner in here (labeling.multilabel, labeling.spans).
        raise LabelingError(f"project.task = {config.task!r}: retrain does not run this task shape yet")
    if record and config.resolve(config.store).is_file():
        from .schema_change import project_schema

        # the run is recorded under the store's label schema: the TOML's classes must be it (a new
        # store is not created here: a failed run leaves nothing; its schema is registered later)
        project_schema(config)
    timings: dict[str, float] = {}
    stages = Stages(_STAGES, show=show_progress)
    try:
        return _run(config, show_progress, record, timings, stages, lfs, schema, gold)
    finally:
        stages.close()


def _run(config: ProjectConfig, show_progress: bool, record: bool, timings: dict, stages: Stages,
         given_lfs: Sequence | None = None, schema: LabelSchema | None = None,
         given_gold: pd.DataFrame | None = None) -> RunResult:
    k, seed, classes = config.cardinality, config.seed, config.classes
    swept = sweep_orphans(config).to_dict() if record else {}
    with _timed(timings, "load", stages) as stage:
        splits = load_dataset(config, schema)
        # Gold labels from reviews and serving feedback; gold on test rows is set aside.
        gold_read = given_gold if given_gold is not None else \
            read_only_gold(config.resolve(config.store) if config.review.use_gold else None)
        gold = match_gold(gold_read, splits)
        # Fatal data problems stop the run here, before anything is written.
        verification = raise_on_errors(verify_splits(splits, config.verify))
        release_freed_memory()
        stage.rows = sum(splits.sizes().values())
    everything = pd.concat([getattr(splits, name) for name in SPLIT_NAMES], ignore_index=True)
    precomputed = precomputed_lf_columns(config, everything)
    with _timed(timings, "discover_lfs", stages):
        # with precomputed weak-label columns (WRENCH), Python LFs are optional
        lfs = (list(given_lfs) if given_lfs is not None else
               discover_lfs(config.lfs.modules, root=config.resolve(config.lfs.root), allow_empty=bool(precomputed))
               if config.lfs.modules or not precomputed else [])
        # their sources and files as this run imported them: saved with the run, which is served with them
        lf_snapshot = snapshot_lfs(lfs, config.lfs.modules, config.resolve(config.lfs.root)) if lfs and record else None
    with _timed(timings, "apply", stages, rows=len(everything)):
        # One pass over all splits, so each distinct text is parsed by spaCy once.
        applied = (apply_lfs(lfs, everything, cardinality=k, spacy_model=config.lfs.spacy_model,
                             show_progress=show_progress, cache=project_cache_dir(config),
                             n_jobs=config.lfs.n_jobs or None, scheduler=config.lfs.scheduler or None)
                   if lfs else None)
        L_all = np.hstack([applied.L if applied else np.zeros((len(everything), 0), dtype=np.int64),
                           precomputed_votes(everything, precomputed, k)])
    # The applier keeps the text column's keys, distinct texts and scan layout for as long
    # as its Arrow array lives (a re-apply skips them): this run applies once, and they
    # stayed through every later stage (at 200k IMDB rows 470 MB of Arrow buffers, 1.8x the text).
    del everything
    release_freed_memory()
    # Keyword/regex/length LFs share one scan per text field: its time is reported as such
    # (their per-LF seconds are NaN), not split evenly as if each LF had taken it.
    if applied:
        timings.update({f"apply: {what} ({len(applied.shared_by[what])} LFs)": round(secs, 3)
                        for what, secs in applied.shared_seconds.items()})
    bounds = np.cumsum([0] + [len(getattr(splits, name)) for name in SPLIT_NAMES])
    matrices = {name: L_all[bounds[i] : bounds[i + 1]] for i, name in enumerate(SPLIT_NAMES)}
    names = [lf.name for lf in lfs] + precomputed
    L_train, L_dev, L_test = matrices["train"], matrices["dev"], matrices["test"]
    y_dev, y_test = splits.dev["label"].to_numpy(), splits.test["label"].to_numpy()
    L_extra = (apply_lfs(lfs, gold.extra, cardinality=k, spacy_model=config.lfs.spacy_model).L if len(gold.extra) and lfs
               else np.zeros((len(gold.extra), len(lfs)), dtype=np.int64))
    # served gold texts carry no precomputed votes: those columns abstain
    L_extra = np.hstack([L_extra, np.full((len(L_extra), len(precomputed)), ABSTAIN, dtype=np.int64)])
    # With gold, label-model selection and class balance read dev plus the gold rows.
    L_sel, y_sel = dev_with_gold(gold, L_train, L_dev, y_dev, L_extra, splits.dev["id"], splits.train["id"])
    balance = gold_class_balance(y_sel, k) if gold.n_rows else None

    lf_table = pd.concat(
        {
            # Train gold stays hidden: LF accuracy is measured on dev only.
            "train": lf_summary(L_train, names, seconds=applied.seconds_per_lf if applied else None,
                                rows_computed=applied.rows_computed if applied else None,
                                uncacheable=applied.uncacheable if applied else None,
                                lfs=(lfs if not precomputed else None)),
            "dev": lf_summary(L_dev, names, y=y_dev),
        },
        names=["split"],
    )

    with _timed(timings, "label_model", stages, rows=len(L_train)):
        label_model, selection = fit_label_model(config, L_train, L_sel, y_sel, balance)
        majority = MajorityVote(cardinality=k, random_state=seed).fit(L_train)
        probs_train = label_model.predict_proba(L_train)
    covered = (L_train != ABSTAIN).any(axis=1)
    tie = config.label_model.tie_break
    with _timed(timings, "leakage", stages, rows=len(splits.test)):
        # the load stage's verification searched every row's exact and near duplicates
        unleaked = unleaked_from_verification(verification, splits.test["id"].astype(str).tolist(),
                                              config.verify.near_duplicate_jaccard)
    eval_rows = [
        EvalRow("random", "baseline", classification_metrics(y_test, random_predictions(len(y_test), k, seed), classes)),
        EvalRow(f"majority class ({classes[majority_class(y_dev)]}, from dev)", "baseline",
                classification_metrics(y_test, np.full(len(y_test), majority_class(y_dev)), classes)),
    ]
    alone = lf_alone_predictions(L_test, majority_class(y_dev))
    eval_rows += [
        EvalRow(f"LF {name}", "lf", classification_metrics(y_test, alone[:, j], classes),
                notes=f"votes on {float((L_test[:, j] != ABSTAIN).mean()):.1%} of test; majority class elsewhere")
        for j, name in enumerate(names)
    ]
    uncovered_note = f"uncovered test rows: ties broken by the '{tie}' policy"
    lm_test_proba = label_model.predict_proba(L_test)
    lm_test_pred = probs_to_preds(lm_test_proba, tie_break=tie)
    eval_rows += [
        EvalRow("majority vote", "label_model", classification_metrics(y_test, probs_to_preds(majority.predict_proba(L_test), tie_break=tie), classes),
                int(covered.sum()), float(covered.mean()), uncovered_note),
        _with_unleaked(EvalRow(f"label model ({type(label_model).__name__})", "label_model",
                               classification_metrics(y_test, lm_test_pred, classes),
                               int(covered.sum()), float(covered.mean()), uncovered_note),
                       lm_test_pred, y_test, unleaked, classes),
    ]
    features = HashedCounts()  # hashed n-gram counts of the train, dev and test texts, each analysed once
    with _timed(timings, "end_model", stages, rows=len(splits.train)):
        texts_train, targets, weights = training_rows_with_gold(
            gold, splits.train["text"], probs_train, covered, k, config.review.gold_weight)
        gold_note = f" and {gold.n_rows} gold rows" if gold.n_rows else ""
        end_rows, end_model, em_selection, end_test_proba, baselines = _end_model_rows(
            config, splits, texts_train, targets, y_test,
            notes=f"trained on soft labels of the {int(covered.sum())} train rows some LF votes on{gold_note}",
            sample_weight=weights, unlabelled_texts=splits.train["text"][~covered].astype(str),
            unleaked=unleaked, show_progress=show_progress, feature_cache=features,
        )
    eval_rows += end_rows
    dev_end_proba = (features.predict_proba(end_model, "dev", splits.dev["text"].tolist()) if len(splits.dev)
                     else np.zeros((0, k)))
    del features  # the test and dev counts: nothing reads them after this
    served = _served_predictor(config, dev_end_proba, label_model.predict_proba(L_dev), L_dev, y_dev, names,
                               precomputed)
    served_test_proba = predictors.predict_proba(served["predictor"], end_test_proba, lm_test_proba, L_test,
                                                 served["params"])
    served_pred = served_test_proba.argmax(axis=1)
    eval_rows.append(_with_unleaked(EvalRow("served", "served", classification_metrics(y_test, served_pred, classes),
                                            notes=f"{served['predictor']}: {served['rule']}"),
                                    served_pred, y_test, unleaked, classes))
    evaluation = evaluation_table(eval_rows, classes)
    recall = _dev_class_recall(config, y_dev, L_dev, label_model, served["predictor"],
                               predictors.predict(served["predictor"], dev_end_proba, label_model.predict_proba(L_dev),
                                                  L_dev, served["params"]))
    with _timed(timings, "documents", stages, rows=len(splits.test)):
        test_predictions, extra_documents = _documents(config, splits, L_train, L_test, names, label_model,
                                                      end_test_proba, served_test_proba)
    documents = {"verification": verification.to_dict(), **extra_documents,
                 **({"label_schema": splits.label_schema} if splits.label_schema else {})}

    run_id = _new_run_id()
    matrix_hashes = {name: label_matrix_hash(L) for name, L in matrices.items()}
    lm_info = {"type": type(label_model).__name__, "params": label_model.to_dict().get("params", {}), "selection": selection}
    em_info = {"type": config.end_model.type, "class": type(end_model).__name__, "params": end_model.get_params(),
               "device": getattr(end_model, "device_", "cpu"), "gold": gold.summary(), "selection": em_selection,
               "baselines": baselines, "class_recall": recall, "served": served,
               "leakage": {"test_rows": len(y_test), "unleaked_rows": int(unleaked[0].sum()), "excluded": unleaked[1],
                           "metrics": {r.name: {m: r.extra["unleaked"][m] for m in ("accuracy", "macro_f1", "per_class")}
                                       for r in eval_rows if "unleaked" in r.extra}}}
    lf_versions = tuple((lf.name, lf_version(lf)) for lf in lfs) + tuple((c, "precomputed") for c in precomputed)
    result_kwargs = dict(
        run_id=run_id, project=config.name, seed=seed, dataset_version=splits.version, split_sizes=splits.sizes(),
        lf_set_version=lf_set_version(lfs), lfs=lf_versions, matrix_hashes=matrix_hashes,
        label_model=lm_info, end_model=em_info, evaluation=evaluation, lf_table=lf_table, documents=documents,
    )
    if not record:
        return RunResult(**result_kwargs, timings=timings, stages=stages.to_dict())

    store_path, root = config.resolve(config.store), config.resolve(config.artifacts)
    with _timed(timings, "promotion_gate", stages, rows=len(splits.test)):
        # The gate reads the champion now; its decision is written with the run, below. The
        # candidate is scored from the predictions made above: no model runs again.
        with Registry(store_path) as registry:
            decision = settle(evaluate_candidate(registry, config, run_id, splits.test["text"].tolist(), y_test,
                                                 candidate_model=end_model, test_ids=test_predictions.ids,
                                                 candidate_predictions=served_pred),
                              promote=config.promotion.auto)
    with _timed(timings, "record", stages), writer_lock(store_path), RunStore(store_path) as store:
        store.begin_run(run_id, root, _dt.datetime.now(_dt.timezone.utc).isoformat())
        try:
            saved = _save_artifacts(root, run_id, label_model, end_model, splits.test["text"].tolist(), test_predictions,
                                    lf_snapshot, gold_read)
            store.record_run(_run_record(config, result_kwargs, splits, lf_table, eval_rows, saved),
                             then=lambda conn: write_decision(conn, decision, candidate=True))
        except BaseException:
            artifacts.discard(root / run_id)
            with suppress(StoreError):  # the note left behind is swept by the next retrain
                store.end_intent(run_id)
            raise
    return RunResult(**result_kwargs, artifacts={n: {"path": p, "sha256": h} for n, p, h in saved},
                     store_path=str(store_path), timings=timings, promotion=decision.to_dict(), swept=swept,
                     stages=stages.to_dict())


def _documents(config: ProjectConfig, splits: Splits, L_train, L_test, names, label_model,
               end_probs: np.ndarray, served_probs: np.ndarray) -> tuple[TestPredictions, dict]:
    """What the report, the gate and the monitor need beyond the metrics: test-split
    predictions (saved as an artifact), per-slice metrics and the reference profile
    of the training data (documents). ``end_probs`` / ``served_probs`` (n_test, k): the end
    model's and the served predictor's test probabilities, computed once."""
    test = splits.test
    y_test = test["label"].to_numpy()
    lm_probs = label_model.predict_proba(L_test)
    tie = config.label_model.tie_break
    predictions = {"end model": end_probs.argmax(axis=1), "label model": probs_to_preds(lm_probs, tie_break=tie),
                   "served": served_probs.argmax(axis=1)}
    sfs = discover_slices(config.slices.modules, root=config.resolve(config.slices.root))
    slices = slice_metrics(slice_masks(sfs, test), y_test, predictions, config.classes)
    recorded = TestPredictions(test["id"].astype(str).to_numpy(), y_test, end_probs, lm_probs, served_probs)
    return recorded, {
        "test_predictions": {"artifact": PREDICTIONS_ARTIFACT, "rows": len(test)},
        "slices": slices.astype(object).where(slices.notna(), None).to_dict(orient="records"),
        "monitor_reference": reference_profile(L_train, L_test, names, reference_texts(splits.train["text"], config.seed),
                                               test["text"].tolist(), served_probs, config.classes),
    }


def _save_artifacts(root: Path, run_id: str, label_model, end_model, probe_texts: list[str],
                    test_predictions: TestPredictions, lf_snapshot: LFSnapshot | None = None,
                    gold: pd.DataFrame | None = None) -> tuple[tuple[str, str, str], ...]:
    """Write both models, the run's LFs (``run_lfs.save_lf_snapshot``), the store gold it read
    (``predictions.save_gold_snapshot``: ``reproduce`` reads it) and the test predictions
    into ``root/.RUN.partial``, check that the models load back and predict as trained, then
    rename the folder to ``root/RUN``.
    Raises ``ArtifactError`` (and leaves no folder) when the saved files do not load."""
    partial = root / f".{run_id}.partial"
    try:
        files = {
            "label_model": artifacts.save_label_model(label_model, partial / "label_model"),
            "end_model": artifacts.save_end_model(end_model, partial / "end_model"),
        }
        if lf_snapshot is not None:
            files[LFS_FOLDER] = save_lf_snapshot(lf_snapshot, partial / LFS_FOLDER)
        artifacts.load_label_model(partial / "label_model", files["label_model"])
        reloaded = artifacts.load_end_model(partial / "end_model", files["end_model"])
        probe = probe_texts[:256]
        if probe and not np.allclose(reloaded.predict_proba(probe), end_model.predict_proba(probe), atol=1e-6):
            raise ArtifactError(f"{partial / 'end_model'}: the saved end model predicts differently from the trained one")
        predictions = save_test_predictions(partial, test_predictions)
        if gold is not None:
            predictions.update(save_gold_snapshot(partial, gold))
        partial.rename(root / run_id)
    except BaseException:
        artifacts.discard(partial)
        raise
    return tuple(
        (f"{part}/{name}", str(root / run_id / part / name), digest)
        for part, listing in files.items()
        for name, digest in listing.items()
    ) + tuple((name, str(root / run_id / name), digest) for name, digest in predictions.items())


@dataclass(frozen=True)
class Sweep:
    """What ``sweep_orphans`` found: folder names removed, run ids given a decision."""

    partial: tuple[str, ...] = ()
    unrecorded: tuple[str, ...] = ()
    undecided: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {k: list(v) for k, v in self.__dict__.items() if v}


def sweep_orphans(config: ProjectConfig) -> Sweep:
    """Clean up after a retrain that died while recording (see the module docstring).

    For each run the store noted as begun but never recorded, removes its ``.RUN.partial``
    or complete ``RUN`` folder; gives each recorded run without a promotion decision an
    explicit "never gated" one (no alias moves). Folders the store never noted (another
    project's, sharing the artifact folder) are never touched. Runs under the store's
    writer lock, so a retrain recording at the same time is waited for, never swept.
    Does nothing (and creates nothing) for a project without a store yet.
    """
    store_path = config.resolve(config.store)
    if not store_exists(store_path):
        return Sweep()
    partial, unrecorded = [], []
    with writer_lock(store_path), RunStore(store_path) as store:
        runs = {row["id"] for row in store.list_runs()}
        for intent in store.intents():
            run_id, root = intent["run_id"], Path(intent["folder"])
            if run_id not in runs:
                for folder, found in ((root / f".{run_id}.partial", partial), (root / run_id, unrecorded)):
                    if folder.exists():
                        artifacts.discard(folder)
                        found.append(folder.name)
            store.end_intent(run_id)
        undecided = store.undecided_runs()
        if undecided:
            with Registry(store_path) as registry:
                champion = registry.get(CHAMPION)
                for run_id in undecided:
                    registry.record_decision(GateDecision(
                        run_id, champion, config.promotion.metric, None, None, config.promotion.margin, False,
                        f"never gated: its retrain stopped before recording a promotion decision (found by the sweep"
                        f" of {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}); run"
                        f" `labeling promote {run_id}` to gate it"))
    return Sweep(tuple(partial), tuple(unrecorded), tuple(undecided))


def _run_record(config, result: dict, splits: Splits, lf_table: pd.DataFrame, eval_rows, saved) -> RunRecord:
    stats = []
    for (split, lf), row in lf_table.iterrows():
        stats.append({
            "split": split, "lf": lf, "coverage": float(row["coverage"]), "overlaps": float(row["overlaps"]),
            "conflicts": float(row["conflicts"]),
            "accuracy": None if "accuracy" not in row or pd.isna(row["accuracy"]) else float(row["accuracy"]),
            "seconds": None if pd.isna(row.get("seconds")) else float(row["seconds"]),
        })
    metrics = tuple(
        {"name": r.name, "kind": r.kind, "accuracy": r.metrics["accuracy"], "macro_f1": r.metrics["macro_f1"],
         "train_rows": r.train_rows, "coverage": r.coverage, "per_class": r.metrics["per_class"], "notes": r.notes}
        for r in eval_rows
    )
    return RunRecord(
        id=result["run_id"], created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(), project=config.name,
        seed=config.seed, config=config.to_dict(), dataset_version=result["dataset_version"],
        dataset_source=splits.source, split_sizes=result["split_sizes"], lf_set_version=result["lf_set_version"],
        lfs=result["lfs"], matrix_hashes=result["matrix_hashes"], label_model=result["label_model"],
        end_model=result["end_model"], metrics=metrics, lf_stats=tuple(stats), artifacts=saved,
        documents=result["documents"],
    )


def _selection_lines(selection: dict | None) -> list[str]:
    if not selection:
        return []
    if selection.get("fallback"):  # dev labels too few or of one class: nothing was scored
        return [f"label model not chosen on dev: {selection['rule']}"]
    lines = [f"label model chosen on dev ({selection['metric']}, one standard error = {selection['tolerance']:.3f}):"
             f" {selection['rule']}"]
    lines += [f"  {c['dev_score']:.3f}  {c['name']}" for c in selection["candidates"]]
    return lines


def summary_notes(result: RunResult) -> list[str]:
    """Why some numbers of the summary look as they do: one line each.

    Single LFs equal to the majority class (each predicts the majority class where it
    abstains), an end model above its oracle, LFs without a dev accuracy, and how many
    gold rows the run used."""
    notes = []
    ev = result.evaluation.set_index("name")
    majority = next((n for n in ev.index if n.startswith("majority class")), None)
    lf_rows = ev[ev["kind"] == "lf"]
    if majority is not None and len(lf_rows):
        base = ev.loc[majority, "accuracy"]
        same = [n.removeprefix("LF ") for n, acc in lf_rows["accuracy"].items()
                if not pd.isna(acc) and not pd.isna(base) and np.isclose(float(acc), float(base))]
        note = ("rows 'LF <name>': that LF alone, predicting the majority class where it abstains, "
                "so an LF that votes on few test rows scores about the majority class")
        if same:
            note += f"; equal to it: {', '.join(same)}"
        notes.append(note)
    oracle = next((n for n in ev.index if n.startswith("oracle")), None)
    if oracle is not None and "end model" in ev.index and not pd.isna(ev.loc[oracle, "accuracy"]):
        end, top = float(ev.loc["end model", "accuracy"]), float(ev.loc[oracle, "accuracy"])
        if end > top:
            n_test = int(result.split_sizes.get("test", 0)) or 1
            se = float(np.sqrt(max(top * (1 - top), 1e-12) / n_test))
            notes.append(f"the end model ({end:.1%}) scores above the oracle ({top:.1%}): the oracle is the model "
                         f"cross-validation on the train split's gold labels chose, not an upper bound; on {n_test} test rows "
                         f"one standard error is {se:.1%}, so a gap of {end - top:.1%} is "
                         f"{'within noise' if end - top <= 2 * se else 'more than noise (check for leakage)'}")
    dev = result.lf_table.loc["dev"] if "dev" in result.lf_table.index.get_level_values(0) else None
    if dev is not None and "accuracy" in dev:
        blank = [str(n) for n, v in dev["accuracy"].items() if pd.isna(v)]
        if blank:
            notes.append(f"dev accuracy is blank (NaN) where an LF votes on no dev row: {', '.join(blank)}")
    gold = (result.end_model or {}).get("gold")
    if gold is not None:
        notes.append(f"gold rows used: {gold.get('train_rows', 0) + gold.get('extra_rows', 0)} "
                     f"({gold.get('train_rows', 0)} train rows, {gold.get('extra_rows', 0)} other texts; "
                     f"{gold.get('test_rows_excluded', 0)} on test rows left out)")
    else:
        notes.append("gold rows used: 0 (review.use_gold is off or the store holds no gold labels)")
    carried = (result.documents or {}).get("label_schema")
    if carried:
        moved = ", ".join(f"{k}: {n}" for k, n in carried["relabelled"].items()) or "none"
        lost = ", ".join(f"{k}: {n}" for k, n in carried["unlabelled"].items()) or "none"
        dropped = ", ".join(f"{n} {split}" for split, n in carried["dropped_from"].items() if n) or "none"
        notes.append(f"dataset gold read through label schema {carried['schema_version']}: relabelled {moved}; "
                     f"unlabelled (split or retired) {lost}; rows dropped from dev/test for it: {dropped}")
    return notes


def _end_model_lines(result: RunResult) -> list[str]:
    """How the end model was chosen (every option's dev score), where it stands against
    the label model on test, and the leakage-free test rows."""
    info, lines = result.end_model, []
    selection = info.get("selection")
    if selection and selection.get("fallback"):  # dev labels too few or of one class: no stage ran
        lines.append(f"end model not chosen on dev: {selection['rule']}")
    elif selection:
        lines.append(f"end model chosen on dev ({selection['metric']}, dev score {selection['dev_score']:.3f}): "
                     f"{selection['rule']}")
        for stage in selection["stages"]:
            # runs recorded before the paired rule hold one SE per stage
            options = ", ".join(f"{c['name']} {c['dev_score']:.3f} (SE {c.get('tolerance', stage.get('tolerance', 0)):.3f})"
                                for c in stage["candidates"])
            lines.append(f"  {stage['stage']:<13} -> {stage['chosen']}  ({options})")
        if selection.get("rows"):
            lines.append(f"  rows: {selection['rows']['note']} (end_model.selection_max_rows = "
                         f"{selection['rows']['selection_max_rows']})")
        lines += [f"  not tried: {name}: {why}" for name, why in (selection.get("dropped_candidates") or {}).items()]
    if info.get("device"):
        lines.append(f"end model {info.get('class', '')} trained on {info['device']}")
    table = result.evaluation
    end = table[table["name"] == "end model"]
    lm = table[table["kind"] == "label_model"].tail(1)
    # the project's metric, as the end-model selection used it (fixed settings: accuracy,
    # said in the line; the label-model selection always scores accuracy, so it says nothing here)
    metric = (selection or {}).get("metric", "accuracy")
    served = info.get("served")
    named = "accuracy" if metric == "accuracy" else metric.replace(":", " of ")
    if len(end) and len(lm):
        e, m = table_score(end.iloc[0], metric), table_score(lm.iloc[0], metric)
        verdict = "beats" if e > m else "ties" if e == m else "LOSES TO"
        line = f"end model {verdict} the label model on test {named} ({e:.1%} vs {m:.1%})"
        # never a verdict against the served model without naming what is served
        if served and served["predictor"] != "end_model":
            line += f"; served instead: {served['predictor']}"
        elif served and verdict == "LOSES TO":
            line += f"; served anyway, {'as pinned' if served.get('pinned') else 'as chosen on dev'}: {served['rule']}"
        lines.append(line)
    lines += _served_lines(served, table, metric, named)
    lines += [f"WARNING: {w}" for w in (info.get("class_recall") or {}).get("warnings", ())]
    for key, chosen in (info.get("baselines") or {}).items():
        lines.append(f"{key} baseline: {chosen['note']}")
    leakage = info.get("leakage")
    if leakage and len(end) and pd.notna(end["accuracy_unleaked"].iloc[0]):
        lines.append(f"test rows with no train/dev duplicate: {leakage['unleaked_rows']} of {leakage['test_rows']} "
                     f"({leakage['excluded']}); end model accuracy there {float(end['accuracy_unleaked'].iloc[0]):.1%}")
    return lines


def _served_lines(served: dict | None, table: pd.DataFrame, metric: str, named: str) -> list[str]:
    """Which predictor the run serves, why (each candidate's cross-fitted dev score), and its test score."""
    if not served:
        return []
    lines = [f"served predictor: {served['predictor']}{' (reads LF votes)' if served['needs_lfs'] else ''}: "
             f"{served['rule']}"]
    lines += [f"  {c['dev_score']:.3f} (SE {c['tolerance']:.3f})  {c['name']}" for c in served["candidates"]]
    if served.get("params"):
        lines.append(f"  parameters (fitted on dev): {served['params']}")
    if served.get("warning"):
        lines.append(f"WARNING: {served['warning']}")
    row = table[table["name"] == "served"]
    if not len(row):
        return lines
    score = table_score(row.iloc[0], metric)
    lines.append(f"served predictor on test {named}: {score:.1%}")
    simpler = table[(table["name"] == "end model") | (table["kind"] == "label_model")]
    above = [f"{r['name']} {table_score(r, metric):.1%}" for _, r in simpler.iterrows() if table_score(r, metric) > score]
    if above:
        # why: the choice reads dev alone, and majority vote is no candidate unless the label model chosen on dev is it
        dev = ", ".join(f"{c['name']} {c['dev_score']:.3f}" for c in served["candidates"])
        tied = len({round(c["dev_score"], 6) for c in served["candidates"]}) == 1
        if served.get("pinned"):
            lines.append(f"served predictor scores below {', '.join(above)} on test: it is pinned by serving.predictor "
                         f"(dev: {dev})")
        else:
            why = (f"cannot tell the candidates apart, and on a tie the rule serves the first of "
                   f"{', '.join(predictors.TIE_ORDER)} (an order derived on dev alone: models.predictors)" if tied
                   else "ranked them otherwise")
            lines.append(f"served predictor scores below {', '.join(above)} on test: it was chosen on dev ({dev}), "
                         f"which {why}; the label model and majority vote serve through label_model_backoff, with "
                         "the label model chosen on dev")
    return lines


def format_summary(result: RunResult) -> str:
    """A readable report of a run for the terminal."""
    if "entity_f1" in result.evaluation:
        return format_spans_summary(result)
    if result.documents.get("task") == "multi_label":
        from ..multilabel.retrain import format_multilabel_summary

        return format_multilabel_summary(result)
    # "coverage" in the LF table is the share of rows an LF votes on; here it is the share
    # of the train split a method learned from, so it gets its own name.
    columns = ["name", "accuracy", "macro_f1", "accuracy_unleaked", "train_rows", "coverage"]
    table = result.evaluation[[c for c in columns if c in result.evaluation]].rename(columns={"coverage": "train_share"})
    for col in ("accuracy", "macro_f1", "accuracy_unleaked", "train_share"):
        if col not in table:
            continue
        table[col] = table[col].map(lambda v: "" if pd.isna(v) else f"{v:.1%}")
    table["train_rows"] = table["train_rows"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    dev = result.lf_table.loc["dev"][["coverage", "overlaps", "conflicts", "accuracy"]]
    lf_view = result.lf_table.loc["train"][["polarity", "coverage", "overlaps", "conflicts"]].join(
        dev[["accuracy"]].rename(columns={"accuracy": "dev accuracy"})
    )
    header = summary_header(result)
    header[-1] += f"  L_train {result.matrix_hashes['train'][:16]}"
    lines = [
        *header,
        f"label model {result.label_model['type']}  end model {result.end_model['type']}",
        *_selection_lines(result.label_model.get("selection")),
        *_end_model_lines(result),
        "",
        "LF analysis (coverage = share of train rows the LF votes on; overlap/conflict on train; accuracy on dev):",
        lf_view.to_string(float_format=lambda v: f"{v:.3f}"),
        "",
        "Test split (train_rows / train_share = labelled train rows each method learned from):",
        table.to_string(index=False),
    ]
    skipped = result.evaluation[result.evaluation["notes"].astype(str).str.startswith(NOT_COMPUTED)]
    lines += [f"  {row.name}: {row.notes}" for row in skipped.itertuples()]
    lines += [f"  note: {n}" for n in summary_notes(result)]
    verification = result.documents.get("verification")
    if verification:
        lines += ["", f"data verification: {len(verification['findings'])} warning(s)"]
        lines += [f"  {f['code']} [{f['split']}]: {f['message']}" for f in verification["findings"]]
    if result.promotion:
        verdict = ("promoted to champion" if result.promotion["promoted"] else
                   "passes, not promoted (promotion.auto is false; run `.venv/bin/python -m labeling promote`)"
                   if result.promotion["passed"] else "not promoted")
        lines += [f"promotion gate: {verdict}: {result.promotion['reason']}"]
    if result.swept:
        lines += [f"swept after an interrupted retrain: {result.swept}"]
    if result.store_path:
        lines += ["", f"recorded in {result.store_path}"]
    if result.stages:
        lines += ["", "Stages:", stage_table(result.stages)]
    elif result.timings:
        lines.append("timings (s): " + ", ".join(f"{k} {v}" for k, v in result.timings.items()))
    return "\n".join(lines)


def artifacts_dir(config: ProjectConfig, run_id: str) -> Path:
    return config.resolve(config.artifacts) / run_id

