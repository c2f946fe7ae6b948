"""The multi-label retrain: dataset -> LFs -> vote tensor -> label model -> end model -> evaluation.

``run_retrain`` hands a ``project.task = "multi_label"`` project to ``run_multilabel``.
The LF stage is the single-label one (discovery, compiled scans, the vote cache,
workers): LF returns are encoded as ints (``votes``) and decoded into the (n, m, k)
vote tensor. Everything chosen here is chosen on dev: the label model (one standard
error rule over cross-fitted dev scores), each model's per-class thresholds, the end
model's family. Test is only scored.

The evaluation table has one row per method, as the single-label one, with the
columns ``micro_f1``, ``macro_f1``, ``samples_f1``, ``subset_accuracy`` and
``hamming_loss`` (``metrics.METRICS``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..data.datasets import SPLIT_NAMES
from ..errors import ConfigError
from ..lf.apply import apply_lfs
from ..lf.cache import project_cache_dir
from ..lf.core import discover_lfs, lf_set_version, lf_version
from ..matrix import label_matrix_hash
from ..models.artifacts import discard, write_json, write_manifest
from ..pipeline.monitor import reference_profile, reference_texts
from ..pipeline.predictions import gold_snapshot_bytes, save_gold_snapshot
from ..pipeline.registry import Registry, evaluate_candidate, settle, write_decision
from ..pipeline.results import HUMAN_BASELINE, ORACLE_BASELINE, RunResult, new_run_id, summary_header
from ..pipeline.run_lfs import FOLDER as LFS_FOLDER, save_lf_snapshot, snapshot_lfs
from ..pipeline.store import RunRecord, RunStore, writer_lock
from ..progress import Stages, stage_table
from ..review.gold import dev_with_gold, gold_outside_dev
from ..review.multilabel import StoreGoldSets, match_gold_sets, sets_to_gold, store_gold_sets
from .end_models import MULTILABEL_FAMILIES, multilabel_end_model, save_multilabel_end_model
from .gold import load_multilabel_dataset
from .label_models import (
    ExclusiveLabelModel,
    MultiLabelMajorityVote,
    PerClassLabelModel,
    choose_thresholds,
)
from .metrics import METRICS, multilabel_metrics, score
from .votes import YES, apply_cardinality, decode_votes, multilabel_lfs, votes_summary

__all__ = ["MULTILABEL_METRICS", "comparison_lines", "default_multilabel_candidates", "format_multilabel_summary", "run_multilabel",
           "select_multilabel_label_model"]

MULTILABEL_METRICS = ("micro_f1", "macro_f1", "samples_f1")
_STAGES = ("load", "discover_lfs", "apply", "label_model", "end_model", "baselines", "record")
_FOLDS = 5


def _metric(config) -> str:
    """The dev score that chooses: ``project.metric`` (micro/macro/samples F1); "accuracy",
    the single-label default, reads as macro-F1 here (subset accuracy ranks rare classes at nothing)."""
    if config.metric in MULTILABEL_METRICS:
        return config.metric
    if config.metric == "accuracy":
        return "macro_f1"
    raise ConfigError(f"project.metric = {config.metric!r}: a multi-label project takes one of {MULTILABEL_METRICS}")


def default_multilabel_candidates(config) -> list:
    """The label models tried on dev, simplest first."""
    lm, seed = config.label_model, config.seed
    return [
        MultiLabelMajorityVote(random_state=seed),
        ExclusiveLabelModel("majority_vote", tie_break=lm.tie_break, random_state=seed),
        PerClassLabelModel("weighted_mv", random_state=seed),
        PerClassLabelModel("dawid_skene", random_state=seed),
        PerClassLabelModel("snorkel", n_epochs=min(lm.n_epochs, 200), lr=lm.lr, l2=lm.l2, random_state=seed),
    ]


def _name(model) -> str:
    p = model.get_params()
    return type(model).__name__ + (f"({p['base']})" if "base" in p else "")


def _cross_fitted_sets(model_factory, T_train, T_dev, Y_dev, folds: np.ndarray, fits_to_labels: bool) -> np.ndarray:
    """Dev predictions of a model whose thresholds (and, ``fits_to_labels``, LF weights)
    were fitted on the other folds only: scoring on what chose them would flatter it."""
    out = np.zeros(Y_dev.shape, dtype=np.int8)
    T_fit = np.concatenate([T_train, T_dev])
    shared = None if fits_to_labels else model_factory().fit(T_fit)
    for f in range(folds.max() + 1):
        held, rest = folds == f, folds != f
        if fits_to_labels:
            Y_fit = np.concatenate([np.full((len(T_train), Y_dev.shape[1]), -1, dtype=np.int8),
                                    np.where(rest[:, None], Y_dev, -1)])
            model = model_factory().fit(T_fit, Y_fit)
        else:
            model = shared
        if not isinstance(model, MultiLabelMajorityVote):
            model.thresholds_ = choose_thresholds(model.predict_proba(T_dev[rest]), Y_dev[rest])
        out[held] = model.predict(T_dev[held])
    return out


def select_multilabel_label_model(candidates: Sequence, T_train, T_dev, Y_dev, *, metric: str = "macro_f1",
                                  random_state: int = 0) -> tuple[object, dict, list]:
    """Fit each candidate, score it on dev (``_FOLDS``-fold cross-fitted thresholds), keep the
    earliest within one bootstrap standard error of the best; its thresholds are then
    chosen on all of dev. Returns ``(model, selection document, [(name, fitted model)])``."""
    rng = np.random.default_rng(random_state)
    folds = rng.permutation(len(Y_dev)) % _FOLDS
    T_fit = np.concatenate([T_train, T_dev])
    scores, preds, fitted, fit_seconds = [], [], [], []
    for cand in candidates:
        to_labels = getattr(cand, "fits_to_labels", False)
        factory = lambda cand=cand: type(cand)(**cand.get_params())  # noqa: E731
        pred = _cross_fitted_sets(factory, T_train, T_dev, Y_dev, folds, to_labels)
        scores.append(score(Y_dev, pred, metric))
        preds.append(pred)
        Y_fit = np.concatenate([np.full((len(T_train), Y_dev.shape[1]), -1, dtype=np.int8), Y_dev]) if to_labels else None
        started = time.perf_counter()
        model = factory().fit(T_fit, Y_fit)
        fit_seconds.append(time.perf_counter() - started)
        fitted.append((_name(cand), model.fit_thresholds(T_dev, Y_dev)))
    best = int(np.argmax(scores))
    draws = rng.integers(0, len(Y_dev), size=(100, len(Y_dev)))
    se = float(np.std([score(Y_dev[d], preds[best][d], metric) for d in draws]))
    chosen = next(i for i, s in enumerate(scores) if s >= scores[best] - se - 1e-12)
    doc = {"metric": metric, "tolerance": se, "chosen": fitted[chosen][0],
           "rule": f"{fitted[chosen][0]}: the simplest candidate within one standard error of the best dev score",
           "fallback": "", "candidates": [{"name": n, "dev_score": s, "fit_seconds": round(t, 3), "rows": len(T_fit),
                           "lfs": int(T_fit.shape[1]), "classes": int(T_fit.shape[2])}
                          for (n, _), s, t in zip(fitted, scores, fit_seconds)]}
    return fitted[chosen][1], doc, fitted


def _row(name: str, kind: str, Y, P, classes, train_rows=None, coverage=None, notes="") -> dict:
    m = multilabel_metrics(Y, P, classes)
    return {"name": name, "kind": kind, **{k: m[k] for k in METRICS}, "train_rows": train_rows, "coverage": coverage,
            "notes": notes, "per_class": m["per_class"]}


def _subsample(n: int, max_rows: int, seed: int) -> np.ndarray:
    """Row indices: all of ``n``, or a seeded sorted sample of ``max_rows`` (0 = all)."""
    if not max_rows or n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))


def _fit_end_model(family, texts, targets, seed, max_rows, C=None, sample_weight=None):
    keep = _subsample(len(texts), max_rows, seed)
    model = multilabel_end_model(family, targets.shape[1], seed)
    if C is not None:
        model.C = C
    return model.fit([texts[i] for i in keep], targets[keep],
                     sample_weight=None if sample_weight is None else np.asarray(sample_weight)[keep])


def cross_fitted_score(P, Y, folds: np.ndarray, metric: str) -> float:
    """``metric`` of the label sets ``P`` ((n, k) probabilities) gives on ``Y`` when each
    fold's per-class thresholds are chosen on the other folds: a score the thresholds did
    not see, so candidates whose thresholds overfit dev are not flattered."""
    pred = np.zeros(np.shape(Y), dtype=np.int8)
    for f in range(folds.max() + 1):
        held, rest = folds == f, folds != f
        pred[held] = P[held] >= choose_thresholds(P[rest], Y[rest])
    return score(Y, pred, metric)


def _folds(n: int, seed: int, n_folds: int = _FOLDS) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n) % n_folds


# the gold baselines' options (family, C), chosen by cross-validation on their own gold rows;
# the oracle's rows are up to baseline_max_rows, where character n-grams cost minutes per fit
GOLD_FAMILIES = (("word_hashed", 1.0), ("word_hashed", 10.0), ("char_wb", 1.0), ("char_wb", 10.0))
ORACLE_FAMILIES = (("word_hashed", 1.0), ("word_hashed", 10.0), ("word_hashed", 100.0))


def fit_on_gold(texts: Sequence[str], Y, *, metric: str, seed: int, options=GOLD_FAMILIES,
                n_folds: int = 3) -> tuple[object, dict]:
    """A model trained on gold label sets ``Y`` ((n, k) 0/1) whose family, C and per-class
    thresholds are all chosen by ``n_folds``-fold cross-validation on these rows alone:
    every option's out-of-fold probabilities are scored with cross-fitted thresholds, the
    best option is refitted on all rows, and its thresholds are those that maximize F1 on
    its out-of-fold probabilities. Returns ``(model, document of the choice)``."""
    texts = list(texts)
    folds = _folds(len(texts), seed, n_folds)
    scores, oofs = [], []
    for family, C in options:
        oof = np.zeros(Y.shape)
        for f in range(n_folds):
            rest = np.flatnonzero(folds != f)
            model = _fit_end_model(family, [texts[i] for i in rest], Y[rest].astype(float), seed, 0, C)
            oof[folds == f] = model.predict_proba([t for t, h in zip(texts, folds == f) if h])
        oofs.append(oof)
        scores.append(cross_fitted_score(oof, Y, folds, metric))
    best = int(np.argmax(scores))
    family, C = options[best]
    model = _fit_end_model(family, texts, Y.astype(float), seed, 0, C)
    model.thresholds_ = choose_thresholds(oofs[best], Y)
    return model, {"chosen": f"{family} C={C:g}", "folds": n_folds, "metric": metric,
                   "options": {f"{fam} C={c:g}": round(sc, 4) for (fam, c), sc in zip(options, scores)}}


def select_multilabel_end_model(families: Sequence[str], target_options: dict, covered: np.ndarray,
                                texts_train: Sequence[str], texts_dev: Sequence[str], Y_dev, *, metric: str,
                                seed: int, max_rows: int, sample_weight=None) -> tuple[dict, dict]:
    """Choose, in stages on dev, the end model's soft targets (one fitted label model's
    per-class probabilities, ``target_options`` {name: (n_train, k)}), its training rows
    (covered by some LF, or all) and its family; each option is fitted on at most
    ``max_rows`` rows and scored by ``cross_fitted_score`` on dev (``sample_weight``: each
    train row's weight, None for all 1). Returns ``(the pick {"targets", "rows", "family"},
    the per-stage dev scores)``."""
    folds = _folds(len(Y_dev), seed)
    pick = {"targets": next(iter(target_options)), "rows": "covered", "family": families[0]}
    stages: dict[str, dict] = {}

    def dev_score(option):
        rows = covered if option["rows"] == "covered" else np.ones(len(covered), dtype=bool)
        texts = [t for t, r in zip(texts_train, rows) if r]
        model = _fit_end_model(option["family"], texts, target_options[option["targets"]][rows], seed, max_rows,
                               sample_weight=None if sample_weight is None else sample_weight[rows])
        return cross_fitted_score(model.predict_proba(texts_dev), Y_dev, folds, metric)

    for stage, options in (("targets", list(target_options)), ("rows", ["covered", "all"]), ("family", list(families))):
        if len(options) < 2:
            continue
        scores = {o: dev_score({**pick, stage: o}) for o in options}
        pick[stage] = max(options, key=lambda o: (scores[o], -options.index(o)))
        stages[stage] = {o: round(v, 4) for o, v in scores.items()}
    return pick, stages


def _end_model_families(config) -> list[str]:
    em = config.end_model
    if em.type == "auto":
        return [f for f in em.candidates if f in MULTILABEL_FAMILIES] or ["word_hashed"]
    if em.type == "sklearn":
        return ["char_wb" if em.analyzer == "char_wb" else "word"]
    if em.type == "torch":
        return ["mlp"]
    raise ConfigError(f"end_model.type = {em.type!r}: a multi-label project takes 'auto', 'sklearn' "
                      "(one-vs-rest over the scikit-learn families) or 'torch' (the sigmoid MLP)")


def run_multilabel(config, *, show_progress: bool = False, record: bool = True,
                   lfs: Sequence | None = None, gold: pd.DataFrame | None = None) -> RunResult:
    """The multi-label retrain (see the module docstring); recorded in the store unless
    ``record=False``. ``lfs`` and ``gold`` (``store_gold_sets``' frame) stand in for the
    discovered LFs and the store's gold sets now: ``reproduce`` passes a run's saved copies.
    A recorded run saves both (its LFs as ``run_lfs.save_lf_snapshot``, its gold as
    ``predictions.save_gold_snapshot``), checksummed in its record. Raises ``DatasetError``/``LabelError`` for bad gold, ``ConfigError``
    for settings this task does not take, ``LFApplicationError`` for a failing LF."""
    stages = Stages(_STAGES, show=show_progress)
    try:
        return _run(config, stages, show_progress, record, lfs, gold)
    finally:
        stages.close()


def _run(config, stages: Stages, show_progress: bool, record: bool, given_lfs, given_gold) -> RunResult:
    k, seed, classes = config.cardinality, config.seed, config.classes
    metric = _metric(config)
    timings: dict[str, float] = {}

    def timed(step, rows=None):
        return stages(step, rows=rows)

    with timed("load") as stage:
        splits, Ys = load_multilabel_dataset(config)
        # gold sets from reviews and serving feedback; gold on test rows is set aside
        store_gold = store_gold_sets(config) if given_gold is None else StoreGoldSets(given_gold)
        gold = match_gold_sets(store_gold.gold, splits)
        stage.rows = sum(splits.sizes().values())
    everything = pd.concat([getattr(splits, name) for name in SPLIT_NAMES], ignore_index=True)
    with timed("discover_lfs"):
        lfs = list(given_lfs) if given_lfs is not None else list(
            discover_lfs(config.lfs.modules, root=config.resolve(config.lfs.root)))
        # their sources as this run imported them: saved with the run, served and reproduced from
        lf_snapshot = snapshot_lfs(lfs, config.lfs.modules, config.resolve(config.lfs.root)) if lfs and record else None
    with timed("apply", rows=len(everything)):
        applied = apply_lfs(multilabel_lfs(lfs), everything, cardinality=apply_cardinality(),
                            spacy_model=config.lfs.spacy_model, show_progress=show_progress,
                            cache=project_cache_dir(config), n_jobs=config.lfs.n_jobs or None,
                            scheduler=config.lfs.scheduler or None)
    names = [lf.name for lf in lfs]
    bounds = np.cumsum([0] + [len(getattr(splits, name)) for name in SPLIT_NAMES])
    codes = {name: applied.L[bounds[i]: bounds[i + 1]] for i, name in enumerate(SPLIT_NAMES)}
    T = {name: decode_votes(L, k, names) for name, L in codes.items()}
    del everything
    T_train, T_dev, T_test = T["train"], T["dev"], T["test"]
    Y_dev, Y_test = Ys["dev"], Ys["test"]
    lf_table = pd.concat({"train": votes_summary(T_train, names, classes),
                          "dev": votes_summary(T_dev, names, classes, Y_dev)}, names=["split"])
    # served gold texts are in no split: their votes are computed here (uncached, they are few)
    T_extra = (decode_votes(apply_lfs(multilabel_lfs(lfs), gold.extra, cardinality=apply_cardinality(),
                                      spacy_model=config.lfs.spacy_model).L, k, names)
               if len(gold.extra) else np.full((0, len(names), k), -1, dtype=np.int8))
    Y_extra = sets_to_gold(gold.extra["label"].tolist(), k)
    # with gold, the label model is chosen (and its thresholds) on dev plus the gold rows, which
    # leave the unlabelled rows it is fitted on so that no row counts twice
    T_sel, Y_sel = dev_with_gold(gold, T_train, T_dev, Y_dev, T_extra, splits.dev["id"], splits.train["id"], Y_extra)
    Y_sel = Y_sel.astype(np.int8)
    T_unlabelled = np.delete(T_train, gold.train_pos[gold_outside_dev(gold, splits.dev["id"], splits.train["id"])],
                             axis=0)

    with timed("label_model", rows=len(T_train)) as stage:
        started = time.perf_counter()
        candidates = default_multilabel_candidates(config)
        if config.label_model.type == "majority_vote":
            candidates = candidates[:1]
        elif config.label_model.type == "snorkel":
            candidates = candidates[-1:]
        label_model, selection, fitted = select_multilabel_label_model(candidates, T_unlabelled, T_sel, Y_sel,
                                                                       metric=metric, random_state=seed)
        timings["label_model_fit_s"] = round(time.perf_counter() - started, 3)
        P_train = label_model.predict_proba(T_train)
    covered = (T_train != -1).any(axis=(1, 2))
    rng = np.random.default_rng(seed)
    prevalence = np.clip(Y_dev.mean(axis=0), 0, 1)
    sets, counts = np.unique(Y_dev, axis=0, return_counts=True)
    prior_set = sets[np.argmax(counts)]
    rows = [
        _row("random", "baseline", Y_test, (rng.random(Y_test.shape) < prevalence).astype(np.int8), classes,
             notes="each class drawn with its dev prevalence"),
        _row(f"prior ({{{', '.join(c for c, v in zip(classes, prior_set) if v) or 'none'}}}, from dev)", "baseline",
             Y_test, np.tile(prior_set, (len(Y_test), 1)), classes, notes="the most frequent dev label set on every row"),
    ]
    for j, name in enumerate(names):
        alone = (T_test[:, j, :] == YES).astype(np.int8)
        rows.append(_row(f"LF {name}", "lf", Y_test, alone, classes,
                         notes=f"votes on {float((T_test[:, j, :] != -1).any(axis=1).mean()):.1%} of test; its yes votes"))
    n_cov, cov = int(covered.sum()), float(covered.mean())
    majority = MultiLabelMajorityVote(random_state=seed).fit(T_train)
    rows.append(_row("majority vote", "label_model", Y_test, majority.predict(T_test), classes, n_cov, cov,
                     "every class with more yes than no votes (Argilla's rule)"))
    for cand_name, model in fitted:
        if len(fitted) > 1 and cand_name != "MultiLabelMajorityVote":
            rows.append(_row(f"label model candidate {cand_name}", "label_model_candidate", Y_test,
                             model.predict(T_test), classes, n_cov, cov, "per-class thresholds chosen on dev"))
    fallbacks = getattr(label_model, "fallbacks_", {})
    rows.append(_row(f"label model ({_name(label_model)})", "label_model", Y_test, label_model.predict(T_test), classes,
                     n_cov, cov, "chosen on dev" + (f"; {len(fallbacks)} class(es) fell back: "
                                                    + "; ".join(f"{classes[c]}: {w}" for c, w in fallbacks.items())
                                                    if fallbacks else "")))

    # end-model rows: the train rows, a gold train row's targets its gold set (a person's answer
    # beats the label model's), then the gold texts in no split; every gold row counts as covered
    texts_train = splits.train["text"].astype(str).tolist() + gold.extra["text"].astype(str).tolist()
    covered = np.concatenate([covered, np.ones(len(gold.extra), dtype=bool)])
    covered[gold.train_pos] = True

    # a gold row weighs review.gold_weight (a label-model row 1); all ones is left out, so a run without
    # gold (or at the default weight) fits exactly as before
    weights = None
    if gold.n_rows and config.review.gold_weight != 1:
        weights = np.ones(len(texts_train))
        weights[gold.train_pos] = config.review.gold_weight
        weights[len(splits.train):] = config.review.gold_weight

    def with_gold(P):
        P = np.asarray(P, dtype=np.float64).copy()
        P[gold.train_pos] = gold.train_labels
        return np.vstack([P, Y_extra])

    texts_dev, texts_test = splits.dev["text"].astype(str).tolist(), splits.test["text"].astype(str).tolist()
    em = config.end_model
    with timed("end_model", rows=n_cov):
        families = _end_model_families(config)
        # soft targets: the chosen label model's, or another fitted candidate's per-class probabilities
        target_options = {f"label model ({_name(label_model)})": with_gold(P_train)}
        if em.type == "auto":
            for cand_name, model in fitted:
                if model is not label_model and cand_name.startswith("PerClassLabelModel"):
                    target_options[f"label model ({cand_name})"] = with_gold(model.predict_proba(T_train))
        pick, em_stages = select_multilabel_end_model(families, target_options, covered, texts_train, texts_dev,
                                                      Y_dev, metric=metric, seed=seed,
                                                      max_rows=em.selection_max_rows, sample_weight=weights)
        family = pick["family"]
        rows_used = covered if pick["rows"] == "covered" else np.ones(len(covered), dtype=bool)
        end_model = _fit_end_model(family, [t for t, r in zip(texts_train, rows_used) if r],
                                   target_options[pick["targets"]][rows_used], seed, em.max_rows,
                                   sample_weight=None if weights is None else weights[rows_used])
        end_model.fit_thresholds(texts_dev, Y_dev)
        end_test = end_model.predict_proba(texts_test)
    n_used = int(rows_used.sum())
    rows.append(_row("end model", "end_model", Y_test, end_model.predict_sets(end_test), classes, n_used,
                     float(rows_used.mean()),
                     f"{'sigmoid MLP' if family == 'mlp' else 'one-vs-rest ' + family} on the per-class probabilities "
                     f"of {pick['targets']} over {'the train rows some LF votes on' if pick['rows'] == 'covered' else 'every train row'} "
                     f"({n_used}{f', {gold.n_rows} of them gold sets' if gold.n_rows else ''}); targets, rows, "
                     "family and per-class thresholds chosen on dev"))
    with timed("baselines"):
        human, human_doc = fit_on_gold(texts_dev, Y_dev, metric=metric, seed=seed)
        rows.append(_row(HUMAN_BASELINE, "baseline", Y_test, human.predict(texts_test), classes, len(Y_dev),
                         len(Y_dev) / len(texts_train),
                         f"one-vs-rest on dev gold; family/C ({human_doc['chosen']}) and per-class thresholds "
                         f"chosen by {human_doc['folds']}-fold cross-validation on dev"))
        train_gold = Ys["train"]
        has = np.flatnonzero(train_gold[:, 0] >= 0)
        oracle_doc = None
        if len(has):
            keep = has[_subsample(len(has), em.baseline_max_rows, seed)]
            oracle, oracle_doc = fit_on_gold([texts_train[i] for i in keep], train_gold[keep], metric=metric, seed=seed,
                                             options=ORACLE_FAMILIES)
            rows.append(_row(ORACLE_BASELINE, "baseline", Y_test, oracle.predict(texts_test), classes, len(keep),
                             float(len(has) / len(texts_train)),
                             f"one-vs-rest on gold train ({len(keep)} of {len(has)} rows); family/C "
                             f"({oracle_doc['chosen']}) and per-class thresholds chosen by "
                             f"{oracle_doc['folds']}-fold cross-validation on those rows"))
    evaluation = pd.DataFrame(rows)
    run_id = new_run_id()
    gold_bytes = gold_snapshot_bytes(store_gold.gold)
    gold_info = {**gold.summary(), "read": len(store_gold.gold), "unresolved_tasks": store_gold.unresolved,
                 "sha256": hashlib.sha256(gold_bytes).hexdigest()}
    lm_info = {"type": type(label_model).__name__, "params": label_model.get_params(), "selection": selection,
               "fallbacks": {classes[c]: w for c, w in fallbacks.items()},
               "thresholds": dict(zip(classes, np.asarray(getattr(label_model, "thresholds_", [])).tolist()))}
    em_info = {"type": em.type, "class": type(end_model).__name__, "params": end_model.get_params(),
               "selection": {"metric": metric, "families": em_stages.get("family", {}), "chosen": family,
                             "stages": em_stages, "pick": pick,
                             "rule": "each stage's best cross-fitted dev score, earliest on ties"},
               "thresholds": dict(zip(classes, end_model.thresholds_.tolist())),
               "baselines": {"human": human_doc, "oracle": oracle_doc}, "gold": gold_info}
    result_kwargs = dict(
        run_id=run_id, project=config.name, seed=seed, dataset_version=splits.version, split_sizes=splits.sizes(),
        lf_set_version=lf_set_version(lfs), lfs=tuple((lf.name, lf_version(lf)) for lf in lfs),
        matrix_hashes={name: label_matrix_hash(L) for name, L in codes.items()}, label_model=lm_info,
        end_model=em_info, evaluation=evaluation, lf_table=lf_table, documents={"task": "multi_label"})
    if not record:
        return RunResult(**result_kwargs, timings=timings, stages=stages.to_dict())
    store_path, root = config.resolve(config.store), config.resolve(config.artifacts)
    # the gate reads the champion now; its decision (and the candidate alias) is written with the run
    with Registry(store_path) as registry:
        decision = settle(evaluate_candidate(registry, config, run_id, texts_test, splits.test["label"].to_numpy(),
                                             candidate_model=end_model), promote=config.promotion.auto)
    with timed("record"), writer_lock(store_path), RunStore(store_path) as store:
        store.begin_run(run_id, root, _dt.datetime.now(_dt.timezone.utc).isoformat())
        partial = root / f".{run_id}.partial"
        try:
            files = {"label_model": _save_label_model(label_model, partial / "label_model"),
                     "end_model": save_multilabel_end_model(end_model, partial / "end_model")}
            if lf_snapshot is not None:
                files[LFS_FOLDER] = save_lf_snapshot(lf_snapshot, partial / LFS_FOLDER)
            snapshot = save_gold_snapshot(partial, store_gold.gold)
            partial.rename(root / run_id)
            saved = tuple((f"{part}/{name}", str(root / run_id / part / name), digest)
                          for part, listing in files.items() for name, digest in listing.items()) + tuple(
                (name, str(root / run_id / name), digest) for name, digest in snapshot.items())
            store.record_run(RunRecord(
                id=run_id, created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(), project=config.name, seed=seed,
                config=config.to_dict(), dataset_version=splits.version, dataset_source=splits.source,
                split_sizes=splits.sizes(), lf_set_version=result_kwargs["lf_set_version"], lfs=result_kwargs["lfs"],
                matrix_hashes=result_kwargs["matrix_hashes"], label_model=lm_info, end_model=em_info,
                metrics=tuple(_stored_metrics(r) for r in rows), lf_stats=(), artifacts=saved,
                documents={"task": {"task": "multi_label"}, "monitor_reference": reference_profile(
                    codes["train"], codes["test"], names, reference_texts(splits.train["text"], seed), texts_test,
                    end_test, classes, test_sets=end_model.predict_sets(end_test)),
                           "multilabel_metrics": [{k: v for k, v in r.items() if k != "per_class"} for r in rows],
                           "multilabel_lf_summary": _lf_summary_rows(lf_table)}),
                then=lambda conn: write_decision(conn, decision, candidate=True))
        except BaseException:
            discard(partial)
            discard(root / run_id)
            store.end_intent(run_id)
            raise
    return RunResult(**result_kwargs, artifacts={n: {"path": p, "sha256": h} for n, p, h in saved},
                     store_path=str(store_path), timings=timings, stages=stages.to_dict(),
                     promotion=decision.to_dict())


def _lf_summary_rows(lf_table: pd.DataFrame) -> list[dict]:
    """Per (LF, class): yes/no coverage on train, yes precision and no accuracy on dev (JSON: NaN -> None)."""
    train = lf_table.loc["train"] if "train" in lf_table.index.get_level_values("split") else lf_table.iloc[:0]
    dev = lf_table.loc["dev"] if "dev" in lf_table.index.get_level_values("split") else lf_table.iloc[:0]
    joined = train[["yes_coverage", "no_coverage"]].join(
        dev[["yes_precision", "no_accuracy"]].add_prefix("dev_"), how="outer").reset_index()
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in joined.to_dict(orient="records")]


def _stored_metrics(row: dict) -> dict:
    """A row as the store's ``run_metrics`` holds it: ``accuracy`` is subset accuracy (the
    exact-match accuracy of label sets); every multi-label metric is in the run's
    ``multilabel_metrics`` document."""
    keep = ("name", "kind", "macro_f1", "train_rows", "coverage", "per_class", "notes")
    return {"accuracy": row["subset_accuracy"], **{k: row[k] for k in keep}}


def _save_label_model(model, folder):
    folder.mkdir(parents=True, exist_ok=False)
    write_json(folder / "multilabel_label_model.json", model.to_dict())
    return write_manifest(folder, "multilabel_label_model", {"type": type(model).__name__})


def comparison_lines(result: RunResult, metric: str = "macro_f1") -> list[str]:
    """Whether the end model beats the chosen label model, and that one majority vote, on test ``metric``."""
    ev = result.evaluation.set_index("name")
    chosen = next((n for n in ev.index if n.startswith("label model (")), None)
    if chosen is None or "end model" not in ev.index:
        return []
    end, lm, mv = (float(ev.loc[n, metric]) for n in ("end model", chosen, "majority vote"))
    return [f"end model {'beats' if end > lm else 'DOES NOT BEAT'} the chosen label model on test {metric} "
            f"({end:.3f} vs {lm:.3f})",
            f"the chosen label model {'beats' if lm > mv else 'DOES NOT BEAT'} majority vote on test {metric} "
            f"({lm:.3f} vs {mv:.3f})"]


def format_multilabel_summary(result: RunResult) -> str:
    """A readable report of a multi-label run for the terminal."""
    cols = ["name", "micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss", "train_rows"]
    table = result.evaluation[cols].copy()
    for c in cols[1:6]:
        table[c] = table[c].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    table["train_rows"] = table["train_rows"].map(lambda v: "" if pd.isna(v) else str(int(v)))
    sel = result.label_model.get("selection") or {}
    lines = [*summary_header(result, task="multi_label"),
             f"label model chosen on dev ({sel.get('metric')}, one standard error = {sel.get('tolerance', 0):.3f}): "
             f"{sel.get('rule')}"]
    lines += [f"  {c['dev_score']:.3f}  {c['name']}" for c in sel.get("candidates", [])]
    lines += [f"  fallback: {c}: {w}" for c, w in (result.label_model.get("fallbacks") or {}).items()]
    ems = result.end_model.get("selection") or {}
    lines += [f"end model chosen on dev ({ems.get('metric')}, thresholds cross-fitted): {ems.get('pick')}",
              *(f"  {stage}: " + ", ".join(f"{o} {v:.3f}" for o, v in opts.items())
                for stage, opts in (ems.get("stages") or {}).items()),
              *comparison_lines(result, sel.get("metric") or "macro_f1"), _gold_line(result.end_model.get("gold")), "",
              "Test split:", table.to_string(index=False)]
    if result.promotion:
        lines += ["", f"promotion gate ({result.promotion['metric']}): "
                      f"{'promoted' if result.promotion['promoted'] else 'not promoted'}: {result.promotion['reason']}"]
    if result.store_path:
        lines += ["", f"recorded in {result.store_path}"]
    if result.stages:
        lines += ["", "Stages:", stage_table(result.stages)]
    return "\n".join(lines)


def _gold_line(gold: dict | None) -> str:
    if not gold or not gold.get("read"):
        return "gold sets from the store: none (review.use_gold is off or the store holds no gold sets)"
    return (f"gold sets from the store: {gold['read']} read (sha256 {gold['sha256'][:12]}): {gold['train_rows']} train "
            f"rows relabelled, {gold['extra_rows']} other texts added to training, {gold['test_rows_excluded']} on "
            f"test left out, {gold['unresolved_tasks']} reviewed tasks tied between annotators")
