"""Snorkel's PandasLFApplier against ours, side by side on the same LFs and rows.

    python benchmarks/apply_speed.py [--rows 200000] [--snorkel-rows N] [--spacy-rows 1956] [--jobs 2]
                                     [--only edit] [--repeats 3]

1. Keyword/regex/length LFs (``labeling_functions/imdb_sentiment.py``, 10 LFs) on
   IMDB reviews from ``$LABELING_DATA_DIR/imdb``, repeated to ``--rows`` rows
   (every row keeps a unique id). Also on the 50,000 distinct reviews once, so
   the gain from computing each distinct text once is visible separately.
2. Re-apply after editing 1 of the 10 LFs, against a full apply with a cold cache:
   in one process (a notebook or the workbench), and each in a new process reading
   the rows from a parquet file with the cache folder of the first (two CLI runs).
3. spaCy LFs written with Snorkel's ``nlp_labeling_function`` on YouTube comments:
   Snorkel's applier, our first run (empty cache), our re-run with cached parses
   (the LFs run again), and with cached votes.

Every comparison checks that both appliers return the same label matrix. Timings
are wall-clock on whatever else the machine is doing; rerun on a quiet machine
before trusting small differences. ``--snorkel-rows`` times Snorkel on the first N
rows only (its rows/s is then extrapolated: say so when you report it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from snorkel.labeling import PandasLFApplier

from labeling import apply_lfs, discover_lfs, keyword_lf, load_imdb, load_youtube_spam
from labeling.lf.core import resolve_spacy_model
from labeling.lf.parse_cache import ParseCache
from labeling.lf.patterns import hyperscan_available


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _snorkel(lfs, frame: pd.DataFrame, rows: int | None):
    part = frame if not rows or rows >= len(frame) else frame.iloc[:rows]
    L, seconds = _timed(lambda: PandasLFApplier(list(lfs)).apply(part, progress_bar=False))
    return L, seconds, len(part)


def _report(name: str, n: int, seconds: float, baseline: float | None = None) -> dict:
    rate = n / seconds
    line = f"  {name:<44} {n:>8,} rows {seconds:9.3f} s {rate:>12,.0f} rows/s"
    if baseline:
        line += f"   {rate / baseline:6.1f}x Snorkel"
    print(line, flush=True)
    return {"name": name, "rows": n, "seconds": round(seconds, 4), "rows_per_s": round(rate, 1),
            "speedup": round(rate / baseline, 2) if baseline else None}


def bench_patterns(rows: int, snorkel_rows: int | None, jobs: int) -> list[dict]:
    lfs = discover_lfs(["labeling_functions.imdb_sentiment"], root=REPO)
    frame, distinct = _imdb_frames(rows)
    print(f"\n1. {len(lfs)} keyword/regex/length LFs, IMDB ({len(frame):,} rows, {frame['text'].nunique():,} distinct "
          f"texts); hyperscan: {hyperscan_available()}; {jobs} processes", flush=True)
    theirs, t_snorkel, n_snorkel = _snorkel(lfs, frame, snorkel_rows)
    base = n_snorkel / t_snorkel
    out = [_report("Snorkel PandasLFApplier" + (" (first rows)" if n_snorkel < len(frame) else ""), n_snorkel, t_snorkel)]
    ours, t_ours = _timed(lambda: apply_lfs(lfs, frame, cardinality=2, n_jobs=jobs))
    assert np.array_equal(ours.L[:n_snorkel], theirs), "label matrices differ"
    out.append(_report("ours (no cache)", len(frame), t_ours, base))
    fresh = _fresh(distinct)
    _, t_distinct = _timed(lambda: apply_lfs(lfs, fresh, cardinality=2, n_jobs=jobs))
    out.append(_report("ours, distinct texts only (no repeats)", len(distinct), t_distinct, base))
    fresh = _fresh(distinct)
    _, t_one = _timed(lambda: apply_lfs(lfs, fresh, cardinality=2, n_jobs=1))
    out.append(_report("ours, distinct texts, 1 process", len(distinct), t_one, base))
    # scanned LFs have no time of their own (NaN): their shared scan is in shared_seconds
    slowest = sorted(((k, v) for k, v in ours.seconds_per_lf.items() if v == v), key=lambda kv: -kv[1])[:3]
    print("  seconds per LF (slowest):", ", ".join(f"{k} {v:.3f}" for k, v in slowest))
    return out + bench_edit(lfs, frame, distinct, jobs, base, ours.L)


def _imdb_frames(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    imdb = load_imdb()[["id", "text"]]
    frame = pd.concat([imdb] * (-(-rows // len(imdb))), ignore_index=True).iloc[:rows]
    return frame.assign(id=[f"r{i}" for i in range(len(frame))]), imdb.drop_duplicates("text").reset_index(drop=True)


def _fresh(frame: pd.DataFrame) -> pd.DataFrame:
    """The same rows in new Arrow arrays: an apply on them cannot reuse the content
    hashes, distinct texts and scan buffers memoized for an earlier frame."""
    return frame.astype(object).astype("str")


def _edited(lfs) -> list:
    """``lfs`` with one keyword added to ``kw_scorn``: the edit every part of the benchmark times."""
    return [keyword_lf("kw_scorn", ["worst", "awful", "terrible", "horrible", "pathetic", "garbage", "dreadful"], 0)
            if lf.name == "kw_scorn" else lf for lf in lfs]


def bench_edit(lfs, frame, distinct, jobs: int, base: float | None = None, expected=None,
               repeats: int = 3) -> list[dict]:
    out = []
    frame = _fresh(frame)
    print(f"\n2. re-apply after editing 1 of {len(lfs)} LFs ({len(frame):,} rows, {frame['text'].nunique():,} distinct "
          f"texts), in one process", flush=True)
    edited = _edited(lfs)
    with tempfile.TemporaryDirectory() as cache:
        cold, t_cold = _timed(lambda: apply_lfs(lfs, frame, cardinality=2, n_jobs=jobs, cache=cache))
        again, t_edit = _timed(lambda: apply_lfs(edited, frame, cardinality=2, n_jobs=jobs, cache=cache))
        _, t_warm = _timed(lambda: apply_lfs(edited, frame, cardinality=2, n_jobs=jobs, cache=cache))
    if expected is not None:
        assert np.array_equal(cold.L, expected)
    assert sum(v > 0 for v in again.rows_computed.values()) == 1
    assert np.array_equal(again.L, apply_lfs(edited, frame, cardinality=2, n_jobs=jobs).L)
    out.append(_report("full apply, cold cache", len(frame), t_cold, base))
    out.append(_report("re-apply after editing 1 LF", len(frame), t_edit, base))
    out.append(_report("re-apply, nothing changed", len(frame), t_warm, base))
    print(f"  edit re-apply is {t_cold / t_edit:.1f}x faster than the cold full apply")
    out.append({"name": "edit speedup vs cold", "ratio": round(t_cold / t_edit, 2)})
    same_process = (t_cold, t_edit)
    out += bench_edit_new_process(lfs, frame, jobs, repeats, cold_votes=cold.L, edit_votes=again.L)
    new_process = out[-1]["cold_seconds"], out[-1]["edit_seconds"]
    print(f"\n  {'':<24} {'cold':>9} {'edit':>9} {'speedup':>8}")
    for name, (cold_s, edit_s) in [("same process", same_process), ("new process (median)", new_process)]:
        print(f"  {name:<24} {cold_s:8.3f}s {edit_s:8.3f}s {cold_s / edit_s:7.1f}x")

    print(f"\n2b. the same edit with {len(lfs)} plain Python LFs (opaque to the applier), distinct texts", flush=True)
    plain = [_as_plain(lf) for lf in lfs]
    plain_edited = [_as_plain(lf) for lf in edited]
    with tempfile.TemporaryDirectory() as cache:
        _, t_cold = _timed(lambda: apply_lfs(plain, distinct, cardinality=2, n_jobs=jobs, cache=cache))
        plain_again, t_edit = _timed(lambda: apply_lfs(plain_edited, distinct, cardinality=2, n_jobs=jobs, cache=cache))
    assert [k for k, v in plain_again.rows_computed.items() if v] == ["kw_scorn"]
    out.append(_report("plain LFs: full apply, cold cache", len(distinct), t_cold))
    out.append(_report("plain LFs: re-apply after editing 1 LF", len(distinct), t_edit))
    print(f"  edit re-apply is {t_cold / t_edit:.1f}x faster than the cold full apply")
    out.append({"name": "plain LFs edit speedup vs cold", "ratio": round(t_cold / t_edit, 2)})
    return out


def bench_edit_new_process(lfs, frame: pd.DataFrame, jobs: int, repeats: int, *, cold_votes, edit_votes) -> list[dict]:
    """Cold and edit each in a new Python process, as two CLI runs: the child reads the rows
    from a parquet file (not timed) and applies with a cache folder (timed), the edit with
    the folder the cold run filled. ``repeats`` pairs, each with a new folder; medians."""
    print(f"\n2a. the same, each apply in a new process (a CLI run; cache folder as the CLI's, "
          f"{repeats} pairs, medians; load average {_load()})", flush=True)
    colds, edits = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = tmp / "rows.parquet"
        frame.to_parquet(rows)
        for r in range(repeats):
            cache = tmp / f"cache{r}"
            cold = _child("cold", rows, cache, jobs, tmp / f"cold{r}.npy")
            edit = _child("edit", rows, cache, jobs, tmp / f"edit{r}.npy")
            # the votes of a cold apply, whichever process computed them
            assert np.array_equal(np.load(tmp / f"cold{r}.npy"), cold_votes), "new-process cold votes differ"
            assert np.array_equal(np.load(tmp / f"edit{r}.npy"), edit_votes), "new-process edit votes differ"
            assert [k for k, v in edit["rows_computed"].items() if v] == ["kw_scorn"], edit["rows_computed"]
            colds.append(cold)
            edits.append(edit)
            print(f"  pair {r + 1}: cold {cold['seconds']:.3f} s ({cold['cpu_seconds']:.3f} s CPU), edit "
                  f"{edit['seconds']:.3f} s ({edit['cpu_seconds']:.3f} s CPU): "
                  f"{cold['seconds'] / edit['seconds']:.1f}x ({cold['cpu_seconds'] / edit['cpu_seconds']:.1f}x CPU); "
                  f"whole processes "
                  f"{cold['process_seconds']:.2f} s, {edit['process_seconds']:.2f} s", flush=True)
    t_cold = statistics.median(c["seconds"] for c in colds)
    t_edit = statistics.median(e["seconds"] for e in edits)
    cpu_cold = statistics.median(c["cpu_seconds"] for c in colds)
    cpu_edit = statistics.median(e["cpu_seconds"] for e in edits)
    out = [_report("new process: full apply, cold cache", len(frame), t_cold),
           _report("new process: re-apply after editing 1 LF", len(frame), t_edit)]
    pair_ratio = statistics.median(c["seconds"] / e["seconds"] for c, e in zip(colds, edits))
    print(f"  edit re-apply in a new process is {t_cold / t_edit:.1f}x faster than a cold one "
          f"({cpu_cold / cpu_edit:.1f}x in CPU seconds, median pair {pair_ratio:.1f}x; load average {_load()})")
    out.append({"name": "new-process edit speedup vs cold", "ratio": round(t_cold / t_edit, 2),
                "cpu_ratio": round(cpu_cold / cpu_edit, 2), "median_pair_ratio": round(pair_ratio, 2),
                "cold_seconds": round(t_cold, 4), "edit_seconds": round(t_edit, 4),
                "pairs": [(round(c["seconds"], 4), round(e["seconds"], 4)) for c, e in zip(colds, edits)]})
    return out


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _child(mode: str, rows: Path, cache: Path, jobs: int, votes: Path) -> dict:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--child", mode, "--child-rows", str(rows), "--child-cache",
                           str(cache), "--child-votes", str(votes), "--jobs", str(jobs)],
                          check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - start
    return result


def _run_child(mode: str, rows: Path, cache: Path, votes: Path, jobs: int) -> int:
    """One apply in this (new) process, as a CLI run makes it: rows read from a file, the cache folder."""
    lfs = discover_lfs(["labeling_functions.imdb_sentiment"], root=REPO)
    lfs = _edited(lfs) if mode == "edit" else lfs
    frame = pd.read_parquet(rows)
    cpu = time.process_time()
    result, seconds = _timed(lambda: apply_lfs(lfs, frame, cardinality=2, n_jobs=jobs, cache=cache))
    cpu = time.process_time() - cpu  # this process only: less swayed by what else the machine runs
    np.save(votes, result.L)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rows_computed": result.rows_computed}))
    return 0


def _as_plain(lf):
    """The same vote as a hand-written LF the fast path cannot see through."""
    from snorkel.labeling import LabelingFunction

    # the spec in the resources keeps the LF's version tied to its keywords
    return LabelingFunction(lf.name, f=_plain_call, resources={"inner": lf, "spec": dict(lf._resources)})


def _plain_call(x, inner, spec):
    return inner(x)


def _nlp_lfs():
    from snorkel.labeling.lf.nlp import nlp_labeling_function

    # the same rules as the spaCy LFs of labeling_functions/youtube_spam.py
    nlp_lf = nlp_labeling_function(language=resolve_spacy_model())

    @nlp_lf
    def nlp_person_short(x):
        return 0 if len(x.doc) < 20 and any(e.label_ == "PERSON" for e in x.doc.ents) else -1

    @nlp_lf
    def nlp_url_or_email(x):
        return 1 if any(t.like_url or t.like_email for t in x.doc) else -1

    @nlp_lf
    def nlp_imperative(x):
        return 1 if any(s[0].tag_ == "VB" and s[0].lemma_.lower() in {"check", "subscribe", "visit", "watch", "follow"}
                        for s in x.doc.sents) else -1

    @nlp_lf
    def nlp_no_verb_short(x):
        words = [t for t in x.doc if not (t.is_punct or t.is_space)]
        return 0 if words and len(words) <= 8 and not any(t.pos_ in ("VERB", "AUX") for t in words) else -1

    return [nlp_person_short, nlp_url_or_email, nlp_imperative, nlp_no_verb_short]


def bench_spacy(rows: int, jobs: int) -> list[dict]:
    frame = load_youtube_spam()[["id", "text"]].iloc[:rows]
    lfs = _nlp_lfs()
    print(f"\n3. {len(lfs)} spaCy LFs (Snorkel nlp_labeling_function, {resolve_spacy_model()}), YouTube "
          f"({len(frame):,} comments); {jobs} processes", flush=True)
    theirs, t_snorkel = _timed(lambda: PandasLFApplier(lfs).apply(frame, progress_bar=False))
    base = len(frame) / t_snorkel
    out = [_report("Snorkel PandasLFApplier", len(frame), t_snorkel)]
    with tempfile.TemporaryDirectory() as cache:
        first, t_first = _timed(lambda: apply_lfs(lfs, frame, cardinality=2, n_jobs=jobs, cache=cache))
        parses, t_parses = _timed(lambda: apply_lfs(lfs, frame, cardinality=2, n_jobs=jobs, cache=ParseCache(cache)))
        votes, t_votes = _timed(lambda: apply_lfs(lfs, frame, cardinality=2, n_jobs=jobs, cache=cache))
    for L in (first.L, parses.L, votes.L):
        assert np.array_equal(L, theirs), "label matrices differ"
    out.append(_report("ours, first run (empty cache)", len(frame), t_first, base))
    out.append(_report("ours, re-run: cached parses, LFs run", len(frame), t_parses, base))
    out.append(_report("ours, re-run: cached votes", len(frame), t_votes, base))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="IMDB rows (texts repeated to this size)")
    parser.add_argument("--snorkel-rows", type=int, default=0, help="time Snorkel on the first N rows only (0 = all)")
    parser.add_argument("--spacy-rows", type=int, default=1956, help="YouTube comments for the spaCy comparison")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="worker processes")
    parser.add_argument("--only", choices=["patterns", "edit", "spacy"], help="run one part")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--repeats", type=int, default=3, help="cold/edit pairs in new processes (medians)")
    for name in ("child", "child-rows", "child-cache", "child-votes"):  # one apply in a new process (internal)
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _run_child(args.child, Path(args.child_rows), Path(args.child_cache), Path(args.child_votes), args.jobs)
    print(f"cores available: {len(os.sched_getaffinity(0))}; load average: {os.getloadavg()}")
    results = {}
    if args.only in (None, "patterns"):
        results["patterns"] = bench_patterns(args.rows, args.snorkel_rows or None, args.jobs)
    if args.only == "edit":
        lfs = discover_lfs(["labeling_functions.imdb_sentiment"], root=REPO)
        results["edit"] = bench_edit(lfs, *_imdb_frames(args.rows), args.jobs, repeats=args.repeats)
    if args.only in (None, "spacy"):
        results["spacy"] = bench_spacy(args.spacy_rows, args.jobs)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
