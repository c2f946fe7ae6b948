"""Multi-label weak supervision on GoEmotions (28 labels), next to the paper's anchor.

    python benchmarks/multilabel.py [--set SECTION.KEY=VALUE ...] [--json PATH]

Runs the ``projects/goemotions`` retrain without recording it (``record=False``: the
project's store is not written) and prints the test table: majority vote (Argilla's
rule), every label model candidate, the label model chosen on dev, the end model, the
human (dev gold) and oracle (train gold) baselines; micro- and macro-F1 on test. Every
choice (label model, thresholds, end-model family) is made on dev. Then each label
model's fit time on train + dev (43,410 + 5,426 rows x LFs x 28 classes) and the
retrain's stage table.

Anchor (Demszky et al. 2020, Table 4): BERT-base fine-tuned on all 43k gold train rows,
macro-F1 0.46 on test.

Measured (73 LFs, seed 0; test macro-F1 / micro-F1): majority vote 0.376 / 0.471, exclusive MV
0.338, per-class weighted MV 0.386 / 0.474, per-class Dawid-Skene 0.380, per-class Snorkel 0.342;
chosen on dev: majority vote (weighted MV's dev lead, 0.005, is under one standard error, 0.010);
end model (one-vs-rest word_hashed) 0.372 / 0.441; oracle 0.453 / 0.524. On a 2-core machine
shared with other jobs (load ~21): wall times there are several times the CPU times.
With the end model's staged choice on dev and the cross-validated baselines (same LFs and label
models; load 11-30): end model 0.372 / 0.446 (dev picked MV's targets 0.376 over Dawid-Skene's
0.364, weighted MV's 0.345 and Snorkel's 0.301; all rows 0.377 over covered 0.376; word_hashed
0.377 over the sigmoid MLP 0.275); human 0.389 / 0.459 (char_wb C=10 by 3-fold CV on dev;
thresholds fixed at 0.5 gave 0.105); oracle 0.422 / 0.496 (word_hashed C=10 by CV on a
20,000-row sample, end_model.baseline_max_rows). Dawid-Skene's one EM over all classes fits the
48,836 x 73 x 28 tensor in 24 s (28 separate fits: 376-464 s); the whole retrain took 816 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from labeling.config import load_config  # noqa: E402
from labeling.multilabel.retrain import comparison_lines  # noqa: E402
from labeling.pipeline.retrain import run_retrain  # noqa: E402
from labeling.progress import stage_table  # noqa: E402

ANCHOR = ("BERT-base on all gold train (published)", None, 0.46)


def table(result) -> list[tuple[str, float, float]]:
    """(method, micro-F1, macro-F1) on test, in the printed order."""
    ev = result.evaluation
    keep = ev[ev["kind"].isin(["label_model", "label_model_candidate", "end_model", "baseline"])]
    keep = keep[~keep["name"].isin(["random"]) & ~keep["name"].str.startswith("prior")]
    return [(r.name, float(r.micro_f1), float(r.macro_f1)) for r in keep.itertuples()]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--json", metavar="PATH", help="also write the run's retrain --json document here")
    args = parser.parse_args(argv)
    config = load_config(REPO / "projects" / "goemotions" / "project.toml", args.set)
    started = time.perf_counter()
    result = run_retrain(config, record=False)
    total = time.perf_counter() - started
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=1, default=str))
    print(f"GoEmotions test ({result.split_sizes}), {len(result.lfs)} LFs; chosen on dev by "
          f"{result.label_model['selection']['metric']}")
    print(f"{'method':<58} {'micro-F1':>8} {'macro-F1':>8}")
    for name, micro, macro in table(result):
        print(f"{name:<58} {micro:8.3f} {macro:8.3f}")
    print(f"{ANCHOR[0]:<58} {'':>8} {ANCHOR[2]:8.3f}")
    print()
    sel = result.label_model["selection"]
    print(f"label model chosen on dev: {sel['rule']} (one SE = {sel['tolerance']:.3f})")
    for c in sel["candidates"]:
        print(f"  dev {sel['metric']} {c['dev_score']:.3f}  fit {c['fit_seconds']:7.2f} s  ({c['rows']:,} rows x "
              f"{c['lfs']} LFs x {c['classes']} classes)  {c['name']}")
    for cls, why in (result.label_model.get("fallbacks") or {}).items():
        print(f"  fallback {cls}: {why}")
    ems = result.end_model["selection"]
    print(f"end model chosen on dev (cross-fitted thresholds): {ems['pick']}")
    for stage, options in ems["stages"].items():
        print(f"  {stage}: " + ", ".join(f"{o} {v:.3f}" for o, v in options.items()))
    for who, doc in result.end_model["baselines"].items():
        if doc:
            print(f"{who} baseline: {doc['chosen']} by {doc['folds']}-fold CV on its gold rows ("
                  + ", ".join(f"{o} {v:.3f}" for o, v in doc["options"].items()) + ")")
    print(*comparison_lines(result), sep="\n")
    print()
    print(f"retrain stages (total {total:.1f} s):")
    print(stage_table(result.stages))


if __name__ == "__main__":
    main()
