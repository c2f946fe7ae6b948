"""End models next to the label model, the plain Snorkel pipeline and a gold-trained oracle.

    python benchmarks/end_models.py [--data-dir DIR] [--datasets youtube_example,youtube,sms,trec,semeval,imdb]
                                    [--families word_hashed,word_char,word_char_emb,embedding] [--cache DIR]
                                    [--dev-arrays DIR]
    python benchmarks/end_models.py --study-from DIR   # the tie order study again, from saved dev arrays

Per dataset, one run, every choice made on the dev split only (test labels are read
only to print the scores below):

- ``label model``: ``select_label_model`` on dev (the project's metric; for a project,
  its own rule, ``fit_label_model``, incumbent included), test predictions with the
  "random" tie-break.
- ``end model``: ``select_end_model`` on dev with ``project.metric`` (F1 of spam on sms,
  accuracy elsewhere, as WRENCH reports them), over ``--families`` (default: a project's
  own ``end_model.candidates``, as retrain runs it; ``DEFAULT_FAMILIES`` elsewhere), trained on the label model's soft labels
  of the covered train rows, self-training on the uncovered ones.
- ``snorkel``: the plain Snorkel pipeline a new user writes: ``snorkel`` LabelModel
  (500 epochs), its argmax on the covered train rows, word 1-2 TF-IDF +
  LogisticRegression(C=10).
- ``human`` / ``oracle``: the best model the dev labels / gold train labels alone can
  train, as retrain computes them (``select_baseline``): the end model's candidate families
  (less those it left out for their cost) and C, chosen by 5-fold cross-validation on those
  rows only (at most 2,000 of them, a seeded subsample beyond), refitted on at most 20,000
  rows (a seeded subsample beyond); how each was chosen is in the table.
- ``end s`` / ``end cpu s`` / ``end peak MiB`` / ``end fits``: the end-model stage's (``select_end_model``)
  wall seconds, its CPU seconds (on a shared machine the wall time stretches with the load,
  the CPU time much less), the process's peak resident memory while it ran (sampled every 50 ms),
  and how many models it trained (its final refit included).
- ``unleaked``: the end model on the test rows with no exact or near duplicate in
  train/dev (``labeling.pipeline.leakage``).
- ``majority vote``: the LFs' majority vote (the "random" tie-break), the simplest baseline.
- ``served``: the predictor retrain serves (``labeling.models.predictors.select_predictor``:
  end model, label model with the end model where no LF votes, or their blend, chosen by
  5-fold cross-fitting on dev with the one-SE rule, in the project's metric); ``served
  chosen`` names it with each candidate's dev score, and ``<candidate> test`` gives every
  candidate's test score beside it (read only to print: the choice saw dev alone). The
  served table after the main one sets it beside majority vote, label model and end
  model, and where it scores below one of them prints the dev rule that chose it.
- ``tie order study`` (dev rows only): which order of the candidates the one-SE rule
  should prefer on a tie (``tie_order_study``; how ``predictors.TIE_ORDER`` was derived).

Datasets: the YouTube example project (its LFs applied; tutorial split), the WRENCH
folders youtube, sms, trec, semeval (their stored weak labels as the label matrix), and
IMDB (``imdb/train.csv`` + ``imdb/test.csv``: 25k train used unlabelled, 500 dev rows
drawn from it with seed 0, the 25k test; LFs ``labeling_functions.imdb_sentiment``; its label
model chosen on dev, ``label_model.type = "auto"``, as for the WRENCH folders).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from labeling.models.embeddings import EmbeddingCache  # noqa: E402
from labeling.models.end_model_selection import (  # noqa: E402
    DEFAULT_FAMILIES,
    metric_score,
    select_baseline,
    select_end_model,
)
from labeling.models.label_models import MajorityVote, probs_to_preds, select_label_model  # noqa: E402
from labeling.models.predictors import PREDICTORS, fit_predictor, predict, select_predictor  # noqa: E402
from labeling.pipeline.leakage import unleaked_test_mask  # noqa: E402

ORACLE_MAX_ROWS = 20_000
WRENCH = {"youtube": "accuracy", "sms": "f1:spam", "trec": "accuracy", "semeval": "accuracy"}


def default_data_dir() -> Path:
    return Path(os.environ.get("LABELING_DATA_DIR", REPO.parent / "shared" / "data"))


def wrench_task(data_dir: Path, name: str) -> dict:
    from labeling.data.wrench import load_wrench

    ds = load_wrench(data_dir / "wrench" / name)
    classes = tuple(c.lower() for c in ds.class_names)
    return {"classes": classes, "metric": WRENCH[name],
            **{f"{part}_{what}": value for part, split in (("train", ds.train), ("dev", ds.valid), ("test", ds.test))
               for what, value in (("texts", list(split.texts)), ("L", split.L), ("y", split.y))}}


def project_task(config_path: Path, overrides=()) -> dict:
    """A project's splits with its LFs applied (vote cache in the project's cache folder)."""
    from labeling.config import load_config
    from labeling.data.datasets import load_dataset
    from labeling.lf.apply import apply_lfs
    from labeling.lf.cache import project_cache_dir
    from labeling.lf.core import discover_lfs

    config = load_config(config_path, list(overrides))
    splits = load_dataset(config)
    lfs = discover_lfs(config.lfs.modules, root=config.resolve(config.lfs.root))
    parts = [splits.train, splits.dev, splits.test]
    L = apply_lfs(lfs, pd.concat(parts, ignore_index=True), cardinality=config.cardinality,
                  spacy_model=config.lfs.spacy_model, cache=project_cache_dir(config)).L
    bounds = np.cumsum([0] + [len(p) for p in parts])
    task = {"classes": config.classes, "metric": config.metric, "config": config}
    for i, (name, part) in enumerate(zip(("train", "dev", "test"), parts)):
        task[f"{name}_texts"] = part["text"].astype(str).tolist()
        task[f"{name}_L"] = L[bounds[i]:bounds[i + 1]]
        task[f"{name}_y"] = part["label"].to_numpy()
    return task


def imdb_project(data_dir: Path, folder: Path) -> Path:
    """IMDB as a user's project: 25k train (gold hidden from training), 500 dev from it, 25k test."""
    train = pd.read_csv(data_dir / "imdb" / "train.csv")
    test = pd.read_csv(data_dir / "imdb" / "test.csv")
    dev = np.random.default_rng(0).choice(len(train), 500, replace=False)
    train["part"] = "train"
    train.loc[dev, "part"] = "dev"
    test["part"] = "test"
    frame = pd.concat([train, test], ignore_index=True)[["text", "label", "part"]]
    frame["id"] = np.arange(len(frame)).astype(str)
    frame.to_parquet(folder / "imdb.parquet")
    path = folder / "project.toml"
    path.write_text(f"""
[project]
name = "imdb"
classes = ["negative", "positive"]
store = "runs/imdb.db"
[dataset]
source = "file"
path = "imdb.parquet"
label_field = "label"
id_field = "id"
split = "column"
split_field = "part"
[label_model]
type = "auto"
[lfs]
modules = ["labeling_functions.imdb_sentiment"]
root = "{REPO}"
""", encoding="utf-8")
    return path


def plain_snorkel(task: dict, seed: int = 0) -> np.ndarray:
    """Test predictions of the pipeline in the Snorkel tutorials."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from snorkel.labeling.model import LabelModel

    k = len(task["classes"])
    L = task["train_L"]
    model = LabelModel(cardinality=k, verbose=False)
    model.fit(L, n_epochs=500, seed=seed, progress_bar=False)
    covered = (L != -1).any(axis=1)
    y = model.predict(L[covered], tie_break_policy="random")
    texts = [t for t, c in zip(task["train_texts"], covered) if c]
    vectorizer = TfidfVectorizer(ngram_range=(1, 2))
    classifier = LogisticRegression(C=10, max_iter=2000).fit(vectorizer.fit_transform(texts), y)
    return classifier.predict(vectorizer.transform(task["test_texts"]))


def _project_end_model_limits(task: dict) -> dict:
    """A project's own end_model row limits and embedder, as retrain passes them; none elsewhere."""
    if "config" not in task:
        return {}
    em = task["config"].end_model
    return {"embedder": em.auto_embedder, "max_rows": em.selection_max_rows, "refit_max_rows": em.max_rows,
            "costly_max_chars": em.costly_max_chars}


class PeakRss:
    """The process's peak resident memory (MiB) while the block runs, sampled every 50 ms
    (``ru_maxrss`` is the whole process's peak so far, earlier stages included)."""

    def __enter__(self):
        import psutil

        self._process, self._done, self.mib = psutil.Process(), threading.Event(), 0.0
        self._sample()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        self.mib = max(self.mib, self._process.memory_info().rss / 2**20)

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            self._sample()

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self._sample()


def run_task(name: str, task: dict, families: tuple[str, ...], cache: EmbeddingCache, seed: int = 0) -> dict:
    classes, metric = task["classes"], task["metric"]
    k = len(classes)
    lm_metric = "accuracy" if metric == "accuracy" else "macro_f1" if metric == "macro_f1" else "f1"
    if lm_metric == "f1" and classes.index(metric.split(":")[1]) != 1:
        lm_metric = "macro_f1"  # select_label_model's "f1" is class 1's
    times = {}
    start = time.perf_counter()
    labelled = task["dev_y"] >= 0
    if "config" in task:  # a project: its own label-model rule (type, incumbent), as retrain runs it
        from labeling.models.label_models import fit_label_model

        lm, info = fit_label_model(task["config"], task["train_L"], task["dev_L"], task["dev_y"])
        lm_name = info.get("chosen", type(lm).__name__)
    else:
        selection = select_label_model(task["train_L"], task["dev_L"], task["dev_y"], k, metric=lm_metric,
                                       random_state=seed)
        lm, lm_name = selection.model, selection.name
    probs = lm.predict_proba(task["train_L"])
    covered = (task["train_L"] != -1).any(axis=1)
    times["label_model"] = time.perf_counter() - start

    start, cpu_start = time.perf_counter(), time.process_time()
    train_texts = task["train_texts"]
    with PeakRss() as peak:
        chosen = select_end_model([t for t, c in zip(train_texts, covered) if c], probs[covered],
                                  [t for t, keep in zip(task["dev_texts"], labelled) if keep], task["dev_y"][labelled],
                                  classes=classes, metric=metric, families=families,
                                  unlabelled_texts=[t for t, c in zip(train_texts, covered) if not c],
                                  embedding_cache=cache, random_state=seed, **_project_end_model_limits(task))
    times["end_model"], end_cpu = time.perf_counter() - start, time.process_time() - cpu_start

    y_test = task["test_y"]
    score = lambda pred, mask=slice(None): metric_score(y_test[mask], np.asarray(pred)[mask], metric, classes)  # noqa: E731
    end_pred = chosen.model.predict(task["test_texts"])
    lm_pred = probs_to_preds(lm.predict_proba(task["test_L"]), tie_break="random")
    start = time.perf_counter()
    snorkel_pred = plain_snorkel(task, seed)
    times["snorkel"] = time.perf_counter() - start

    # the baselines as retrain computes them: the end model's affordable families (and C)
    # chosen by cross-validation on dev alone (human) or on gold train alone (oracle)
    baseline_families = [f for f in families if f not in chosen.dropped]
    baselines = {}
    for key, texts, y in (("human", task["dev_texts"], task["dev_y"]), ("oracle", train_texts, task["train_y"])):
        start = time.perf_counter()
        baseline = select_baseline(texts, y, classes=classes, metric=metric, families=baseline_families,
                                   what="dev" if key == "human" else "gold train", embedding_cache=cache,
                                   random_state=seed, max_rows=ORACLE_MAX_ROWS, dropped=chosen.dropped)
        baselines[key] = (score(baseline.model.predict(task["test_texts"])), baseline)
        times[key] = time.perf_counter() - start

    mask, _ = unleaked_test_mask(train_texts, task["dev_texts"], task["test_texts"])
    mv_pred = probs_to_preds(MajorityVote(cardinality=k).fit(task["train_L"]).predict_proba(task["test_L"]),
                             tie_break="random")
    return {
        "dataset": name, "metric": metric, "dev rows": int(labelled.sum()),
        "majority vote": score(mv_pred), "label model": score(lm_pred), "end model": score(end_pred),
        **served_columns(name, task, chosen.model, lm, metric, seed), "snorkel": score(snorkel_pred),
        "human": baselines["human"][0], "oracle": baselines["oracle"][0], "end dev": chosen.dev_score,
        "end unleaked": score(end_pred, mask), "lm unleaked": score(lm_pred, mask),
        "unleaked rows": f"{int(mask.sum())}/{len(mask)}",
        # "end s" is a string: the table prints other floats as percentages
        "end s": f"{times['end_model']:.1f}", "end cpu s": f"{end_cpu:.1f}", "end peak MiB": round(peak.mib), "end fits": chosen.rows["fits"],
        "label model chosen": lm_name,
        "end model chosen": " / ".join(f"{key}={value}" for key, value in chosen.settings.items()),
        **{f"{key} chosen": f"{b.chosen} (CV {b.cv_score:.3f} on {b.rows['cv']:,} of {b.rows['labelled']:,} rows, "
                            f"fitted on {b.rows['final']:,})" for key, (_, b) in baselines.items()},
        "seconds": {key: round(v, 1) for key, v in times.items()},
    }


def served_predictor(task: dict, end_model, label_model, metric: str, seed: int):
    """The served predictor as retrain chooses it on dev (a project's ``serving.predictor``
    pin included), every candidate's test score by name, and the dev arrays it was chosen on."""
    dev_labelled = task["dev_y"] >= 0
    dev = {"end": end_model.predict_proba([t for t, keep in zip(task["dev_texts"], dev_labelled) if keep]),
           "L": task["dev_L"][dev_labelled], "y": task["dev_y"][dev_labelled]}
    dev["lm"] = label_model.predict_proba(dev["L"])
    pinned = task["config"].serving.predictor if "config" in task else "auto"
    served = select_predictor(dev["end"], dev["lm"], dev["L"], dev["y"], classes=task["classes"], metric=metric,
                              pinned=pinned, random_state=seed)
    end_test, lm_test = end_model.predict_proba(task["test_texts"]), label_model.predict_proba(task["test_L"])
    scores = {}
    for name in PREDICTORS:
        params = served.params if name == served.name else fit_predictor(
            name, dev["end"], dev["lm"], dev["L"], dev["y"], metric=metric, classes=task["classes"])
        scores[name] = metric_score(task["test_y"], predict(name, end_test, lm_test, task["test_L"], params), metric,
                                    task["classes"])
    return served, scores, dev


# every order of the candidates the one-SE rule could prefer on a tie (the study below ranks them)
ORDERS = tuple(itertools.permutations(PREDICTORS))
TIE_STUDY_REPEATS = 100


def tie_order_study(dev: dict, *, classes, metric: str, repeats: int = TIE_STUDY_REPEATS, seed: int = 0) -> dict:
    """Dev only: which order of the candidates should the one-SE rule prefer on a tie?

    ``dev``: the labelled dev rows' ``end``/``lm`` (n, k) probabilities, ``L`` (n, m), ``y`` (n,).
    Each of ``repeats`` seeded stratified splits halves the dev rows; on one half
    ``select_predictor`` runs once per order in ``ORDERS`` (its parameters fitted there), and
    the predictor it serves is scored in ``metric`` on the other half. Returns each order's
    mean held-out-half score and the share of splits on which the orders' served predictors
    did not all agree on the held-out half (the ties the order decides). Test rows are never read."""
    from sklearn.model_selection import train_test_split

    y, rows = dev["y"], np.arange(len(dev["y"]))
    counts = np.bincount(y)
    stratify = y if counts[counts > 0].min() >= 2 else None
    held_scores = {order: [] for order in ORDERS}
    decided = 0
    for r in range(repeats):
        pick, held = train_test_split(rows, test_size=0.5, random_state=seed + r, stratify=stratify)
        served = set()  # the held-out predictions (two candidates can agree on every row)
        for order in ORDERS:
            chosen = select_predictor(dev["end"][pick], dev["lm"][pick], dev["L"][pick], y[pick], classes=classes,
                                      metric=metric, random_state=seed + r, order=order)
            pred = predict(chosen.name, dev["end"][held], dev["lm"][held], dev["L"][held], chosen.params)
            served.add(pred.tobytes())
            held_scores[order].append(metric_score(y[held], pred, metric, classes))
        decided += len(served) > 1
    return {"mean": {order: float(np.mean(v)) for order, v in held_scores.items()}, "decided": decided / repeats,
            "rows": len(y)}


def rank_orders(studies: dict[str, dict]) -> list[tuple[tuple[str, ...], float]]:
    """The orders by their held-out dev score averaged over datasets (each dataset weighs
    the same), best first; equal means keep ``ORDERS``'s order."""
    means = {order: float(np.mean([study["mean"][order] for study in studies.values()])) for order in ORDERS}
    return sorted(means.items(), key=lambda item: -item[1])


def print_tie_study(studies: dict[str, dict]) -> None:
    short = {"label_model_backoff": "backoff", "end_model": "end", "blend": "blend"}
    name = lambda order: ">".join(short[p] for p in order)  # noqa: E731
    table = pd.DataFrame([{"dataset": dataset, "dev rows": study["rows"], "splits decided by the order":
                           f"{100 * study['decided']:.0f}%", **{name(o): study["mean"][o] for o in ORDERS}}
                          for dataset, study in studies.items()])
    print("\ntie order study (dev only: mean score on the held-out half of "
          f"{TIE_STUDY_REPEATS} stratified half splits of dev, the predictor chosen on the other half)")
    print(table.to_string(index=False, float_format=lambda v: f"{100 * v:.2f}"))
    for order, mean in rank_orders(studies):
        print(f"  {name(order)}: {100 * mean:.3f} mean over datasets")


def served_columns(name: str, task: dict, end_model, label_model, metric: str, seed: int) -> dict:
    """The benchmark's served columns: the served predictor's test score, each candidate's
    test score (read only to print), what was chosen on dev and why, and the tie-order study
    on this dataset's dev rows (``tie_order_study``)."""
    served, scores, dev = served_predictor(task, end_model, label_model, metric, seed)
    if DEV_ARRAYS is not None:
        np.savez(DEV_ARRAYS / f"{name}.npz", classes=np.array(task["classes"]), metric=metric, **dev)
    return {"served": scores[served.name], **{f"{p} test": value for p, value in scores.items()},
            "served chosen": f"{served.name} (" + ", ".join(f"{c['name']} {c['dev_score']:.3f}"
                                                            for c in served.candidates) + " on dev)",
            "served why": served.rule,
            "tie study": tie_order_study(dev, classes=task["classes"], metric=metric, seed=seed)}


def print_served_table(results: list[dict]) -> None:
    """Issue 25's table: the served predictor's test score next to the simpler models, every
    choice on dev; where it scores below one of them, the dev evidence it was chosen on."""
    columns = ["dataset", "metric", "majority vote", "label model", "end model", "served"]
    print("\nserved predictor vs simpler models (test; every choice on dev)")
    table = pd.DataFrame([{**{c: r[c] for c in columns}, "chosen on dev": r["served chosen"]} for r in results])
    print(table.to_string(index=False, float_format=lambda v: f"{100 * v:.1f}"))
    for r in results:
        below = [other for other in ("majority vote", "label model", "end model") if r["served"] < r[other]]
        if below:
            print(f"{r['dataset']}: served {r['served']:.3f} < {', '.join(f'{o} {r[o]:.3f}' for o in below)} on test; "
                  f"why: {r['served why']}")


DEV_ARRAYS: Path | None = None  # --dev-arrays: where served_columns saves each dataset's dev arrays


def study_from(folder: Path) -> None:
    """The tie-order study again from the dev arrays a run saved with ``--dev-arrays``."""
    studies = {}
    for path in sorted(folder.glob("*.npz")):
        saved = np.load(path)
        dev = {key: saved[key] for key in ("end", "lm", "L", "y")}
        studies[path.stem] = tie_order_study(dev, classes=tuple(saved["classes"].tolist()), metric=str(saved["metric"]))
    print_tie_study(studies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--datasets", default="youtube_example,youtube,sms,trec,semeval")
    parser.add_argument("--families", default=None,
                        help=f"candidate families (default: a project's end_model.candidates, else {','.join(DEFAULT_FAMILIES)})")
    parser.add_argument("--cache", type=Path, default=None, help="embedding cache folder (default: a temporary one)")
    parser.add_argument("--dev-arrays", type=Path, default=None,
                        help="save each dataset's dev arrays (npz) here, for --study-from")
    parser.add_argument("--study-from", type=Path, default=None,
                        help="only rerun the tie-order study from the dev arrays saved in this folder")
    args = parser.parse_args(argv)
    if args.study_from:
        study_from(args.study_from)
        return 0
    global DEV_ARRAYS
    DEV_ARRAYS = args.dev_arrays
    if DEV_ARRAYS:
        DEV_ARRAYS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("LABELING_DATA_DIR", str(args.data_dir))
    given = tuple(args.families.split(",")) if args.families else None
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = EmbeddingCache(args.cache or tmp)
        for name in args.datasets.split(","):
            if name == "youtube_example":
                task = project_task(REPO / "projects" / "youtube_spam" / "project.toml",
                                    [f'project.store="{Path(tmp) / "yt.db"}"'])
            elif name == "imdb":
                task = project_task(imdb_project(args.data_dir, Path(tmp)))
            else:
                task = wrench_task(args.data_dir, name)
            families = given or (tuple(task["config"].end_model.candidates) if "config" in task else DEFAULT_FAMILIES)
            # a project runs with its own seed, as retrain runs it; the WRENCH folders with 0
            result = run_task(name, task, families, cache, seed=task["config"].seed if "config" in task else 0)
            results.append(result)
            print(result, flush=True)
    table = pd.DataFrame(results).drop(columns=["seconds", "tie study", "served why"])
    print()
    print(f"families tried: {', '.join(given) if given else 'each project its own end_model.candidates, else ' + ', '.join(DEFAULT_FAMILIES)}; "
          "all numbers on test except 'end dev'")
    print(table.to_string(index=False, float_format=lambda v: f"{100 * v:.1f}"))
    for r in results:
        losses = [other for other in ("label model", "snorkel") if r["end model"] <= r[other]]
        if losses:
            print(f"{r['dataset']}: the end model does not beat {' and '.join(losses)} on test")
    print_served_table(results)
    print_tie_study({r["dataset"]: r["tie study"] for r in results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
