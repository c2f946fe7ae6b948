"""Span aggregation on BC5CDR, next to WRENCH's published sequence-tagging figures.

    python benchmarks/spans.py [--data-dir DIR] [--lfs lf_rec all]

Every candidate aggregator is fitted as ``select_span_aggregator`` fits it (the
unsupervised ones on the train and valid votes, the weighted votes on valid gold tags);
each is also scored followed by ``add_abbreviations`` (short forms defined in
the abstract take their long form's type); the selection uses the valid split only; every number printed is entity-level F1 (exact
match, micro, percent) on the test split. "time" is one fit and predict on the 500
train documents with all 30 LFs, on this machine.

Published anchors (WRENCH, entity F1 on test with the ``lf_rec`` LFs): majority vote
81.71, HMM 81.67, CHMM 83.70, best weak-supervision pipeline 84.22 (BERT-MLP on CHMM);
WRENCH's majority vote counts O votes, the plain token vote here does not.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from labeling.spans.aggregate import candidate_name, default_span_candidates, select_span_aggregator  # noqa: E402
from labeling.spans.data import load_bc5cdr  # noqa: E402
from labeling.spans.doclevel import add_abbreviations  # noqa: E402
from labeling.spans.metrics import entity_scores  # noqa: E402

PUBLISHED = {"TokenMajorityVote()": 81.71, "SpanHMM()": 81.67}
PUBLISHED_ROWS = (("CHMM (published)", 83.70), ("best WS pipeline, BERT-MLP on CHMM (published)", 84.22))


def _time_on_train(model, train) -> float:
    V, lengths = train.votes(), train.lengths
    start = time.perf_counter()
    if model.fits_to_labels:
        model.fit(V, lengths, train.gold_tags())
    else:
        model.fit(V, lengths)
    model.predict_spans(V, lengths)
    return time.perf_counter() - start


def run(data_dir=None, lf_sets=("lf_rec", "all")) -> list[dict]:
    rows = []
    for lfs in lf_sets:
        names = None if lfs == "all" else lfs
        train, valid, test = (load_bc5cdr(s, weak_label_names=names, data_dir=data_dir)
                              for s in ("train", "valid", "test"))
        start = time.perf_counter()
        sel = select_span_aggregator(train.votes(), train.lengths, valid.votes(), valid.lengths, valid.gold,
                                     len(train.types), dev_tokens=valid.tokens)
        select_s = time.perf_counter() - start
        V_test = test.votes()
        for (name, dev_f1), model in zip(sel.scores, sel.fitted):
            pred = model.predict_spans(V_test, test.lengths)
            if name.endswith(" + abbreviations"):
                pred = [add_abbreviations(t, p) for t, p in zip(test.tokens, pred)]
            scores = entity_scores(test.gold, pred, types=range(2))
            rows.append({"lfs": lfs, "method": name, "dev_f1": 100 * dev_f1, "test_f1": 100 * scores["entity_f1"],
                         "test_p": 100 * scores["entity_precision"], "test_r": 100 * scores["entity_recall"],
                         "chemical_f1": 100 * scores["per_type"][0]["entity_f1"],
                         "disease_f1": 100 * scores["per_type"][1]["entity_f1"],
                         "published": PUBLISHED.get(name) if lfs == "lf_rec" else None})
        chosen = dict(rows[-len(sel.scores) + sel.index])
        rows.append({**chosen, "method": f"selected: {sel.name} (one SE = {100 * sel.tolerance:.2f})",
                     "published": None, "select_s": select_s})
    full = load_bc5cdr("train", data_dir=data_dir)
    timings = {candidate_name(m): _time_on_train(m, full) for m in default_span_candidates(len(full.types))}
    for row in rows:
        row["time_s"] = timings.get(row["method"])
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--lfs", nargs="+", default=["lf_rec", "all"], choices=["lf_rec", "all"])
    args = parser.parse_args(argv)
    rows = run(args.data_dir, tuple(args.lfs))
    print("| LFs | method | dev F1 | test F1 | test P | test R | Chemical F1 | Disease F1 | published | time (s) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        pub = f"{r['published']:.2f}" if r["published"] is not None else ""
        t = f"{r['time_s']:.2f}" if r.get("time_s") is not None else ""
        print(f"| {r['lfs']} | {r['method']} | {r['dev_f1']:.2f} | {r['test_f1']:.2f} | {r['test_p']:.2f} | "
              f"{r['test_r']:.2f} | {r['chemical_f1']:.2f} | {r['disease_f1']:.2f} | {pub} | {t} |")
    for name, f1 in PUBLISHED_ROWS:
        print(f"| lf_rec | {name} | | {f1:.2f} | | | | | {f1:.2f} | |")
    print(f"\nselection time (fit every candidate, score on valid): "
          + ", ".join(f"{r['lfs']} {r['select_s']:.1f} s" for r in rows if "select_s" in r))


if __name__ == "__main__":
    main()
