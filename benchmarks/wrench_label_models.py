"""Label models on four WRENCH datasets, next to WRENCH's published label-model table.

    python benchmarks/wrench_label_models.py [--data-dir DIR] [--all]

Each model is fitted on the train split (plus the valid rows, whose gold labels only
WeightedMajorityVote and a dev class prior read); ``select_label_model`` picks one using
the valid split only; every number printed is on the test split. MajorityVote with the
"random" tie-break (snorkel's row-hash policy, which WRENCH's evaluation calls) and
uniform all-abstain rows is WRENCH's MajorityVoting, so it must match the published MV
exactly.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from labeling.models.label_models import (  # noqa: E402
    LABEL_MODELS,
    SNORKEL_MAX_MK,
    SnorkelLabelModel,
    score_predictions,
    select_label_model,
)
from labeling.data.wrench import load_wrench  # noqa: E402

# (folder, metric, published MV, best published label model) from the WRENCH paper's
# label-model table (Zhang et al. 2021), in percent.
DATASETS = (
    ("youtube_1586", "accuracy", 84.00, 84.00),
    ("sms", "f1", 23.97, 23.97),
    ("trec", "accuracy", 60.80, 64.20),
    ("semeval", "accuracy", 77.33, 77.33),
)


def default_data_dir() -> Path:
    from labeling.settings import require_data_dir

    return require_data_dir(what="the WRENCH datasets")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="default: the data folder (labeling.settings)")
    parser.add_argument(
        "--all", action="store_true", help=f"also fit Snorkel where m*k > {SNORKEL_MAX_MK} (minutes on CPU)"
    )
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir or default_data_dir()

    header = ["dataset", "metric", "MV", "WRENCH MV", "MV match"]
    header += [cls.__name__ for name, cls in LABEL_MODELS.items() if name != "majority_vote"]
    header += ["selected", "best WRENCH", "sel>=best", "selected model"]
    rows = []
    all_ok = True
    for folder, metric, published_mv, published_best in DATASETS:
        ds = load_wrench(args.data_dir / "wrench" / folder)
        k, test = ds.cardinality, ds.test
        L_fit = np.vstack([ds.train.L, ds.valid.L])
        y_fit = np.concatenate([np.full(len(ds.train), -1), ds.valid.y])

        def test_score(model) -> float:
            return round(100 * score_predictions(test.y, model.predict(test.L), metric, cardinality=k), 2)

        scores = {}
        for cls in LABEL_MODELS.values():
            if cls is SnorkelLabelModel and ds.n_lfs * k > SNORKEL_MAX_MK and not args.all:
                scores[cls.__name__] = "skipped"
                continue
            scores[cls.__name__] = f"{test_score(cls(k).fit(L_fit, y_fit)):.2f}"
        start = time.perf_counter()
        selection = select_label_model(ds.train.L, ds.valid.L, ds.valid.y, k, metric=metric)
        seconds = time.perf_counter() - start
        selected = test_score(selection.model)
        mv = float(scores.pop("MajorityVote"))
        mv_ok, sel_ok = mv == published_mv, selected >= published_best
        all_ok &= mv_ok and sel_ok
        rows.append(
            [folder, metric, f"{mv:.2f}", f"{published_mv:.2f}", "yes" if mv_ok else "NO", *scores.values(),
             f"{selected:.2f}", f"{published_best:.2f}", "yes" if sel_ok else "NO",
             f"{selection.name} [{seconds:.1f}s]"]
        )

    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print(" | ".join(str(cell).ljust(w) for cell, w in zip(row, widths)))
    print("\nTest split scores in %; metric f1 = F1 of class 1 (spam). Selection saw the valid split only.")
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
