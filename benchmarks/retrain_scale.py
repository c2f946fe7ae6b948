"""The whole retrain job at scale: the real CLI on IMDB projects of 50k, 200k and 1M rows.

    python benchmarks/retrain_scale.py [--sizes 50000 200000 1000000] [--snorkel-rows 5000] [--skip-apply]
                                       [--runs cold warm]

For each size, a project is built in a temporary folder: one Parquet file with a
``split`` column (what a user brings). Dev is 2,500 and test 22,500 reviews of
IMDB's test half (gold); train is IMDB's 25,000 train reviews, copied as often as
the size needs, each copy's texts made unique (a marker word appended), so no
LF cache or de-duplication of repeated texts flatters the run. The LFs are the
project's ``labeling_functions/imdb_sentiment.py``.

``python -m labeling retrain --json`` runs in a subprocess twice: with a cold LF
cache, then warm (same cache folder, a new run); ``--runs cold`` skips the warm
run. Printed per run: wall seconds and the child's CPU seconds, its peak RSS, the machine's load
average during the run (mean and max of 1-minute samples taken every 5 s: on a
shared machine, timings stretch with it), the end model's test accuracy and how it
was chosen, and the stage table the CLI reports (seconds, peak RSS, rows/s per
stage). With more than one size, a last table puts each stage's seconds side by
side with the ratio to the smallest size (linear: the ratio of the rows).

Then, on IMDB's 50,000 reviews (distinct texts), LF application side by side:
Snorkel's ``PandasLFApplier`` (on ``--snorkel-rows`` rows, its rows/s
extrapolated: say so when reporting), our applier on the declarative set
(``imdb_sentiment.py``) and on the same LFs written as plain ``@labeling_function``
code (``imdb_sentiment_plain.py``, compiled to scans), each checked against
Snorkel's matrix on the rows Snorkel ran.

Data: ``$LABELING_DATA_DIR/imdb`` (train.csv, test.csv). Timings are wall-clock
on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEV_ROWS = 2_500

PROJECT = """\
[project]
name = "imdb_scale_{rows}"
classes = ["neg", "pos"]
seed = 0
store = "runs/store.db"
artifacts = "runs/artifacts"

[dataset]
source = "file"
path = "reviews.parquet"
text_field = "text"
label_field = "label"
id_field = "id"
split = "column"
split_field = "split"

[lfs]
modules = ["labeling_functions.imdb_sentiment"]
root = "{repo}"
cache = "lf_cache"

[label_model]
type = "auto"

[slices]
modules = []
"""


def _imdb(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.read_csv(data_dir / "imdb" / "train.csv", dtype={"text": str})
    test = pd.read_csv(data_dir / "imdb" / "test.csv", dtype={"text": str})
    return train, test


def build_project(folder: Path, rows: int, train: pd.DataFrame, test: pd.DataFrame) -> Path:
    """A project folder with ``rows`` rows; returns its config path."""
    held = test.sample(frac=1.0, random_state=0).reset_index(drop=True)
    n_train = rows - len(held)
    if n_train <= 0:
        raise SystemExit(f"--sizes must exceed the {len(held)} held-out rows")
    copies = -(-n_train // len(train))
    parts = []
    for c in range(copies):
        part = train.copy()
        if c:  # every copy's texts differ from every other copy's
            part["text"] = part["text"] + f" copy{c}"
        part["id"] = [f"train-{c}-{i}" for i in range(len(part))]
        parts.append(part)
    train_rows = pd.concat(parts, ignore_index=True).iloc[:n_train]
    train_rows = train_rows.assign(split="train", label="")  # no gold on train: the LFs label it
    dev = held.iloc[:DEV_ROWS].assign(split="dev")
    tst = held.iloc[DEV_ROWS:].assign(split="test")
    for frame, name in ((dev, "dev"), (tst, "test")):
        frame["id"] = [f"{name}-{i}" for i in range(len(frame))]
        frame["label"] = frame["label"].astype(str)
    frame = pd.concat([train_rows, dev, tst], ignore_index=True)[["id", "text", "label", "split"]]
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "reviews.parquet", index=False)
    config = folder / "project.toml"
    config.write_text(PROJECT.format(rows=rows, repo=REPO))
    return config


def run_cli(config: Path) -> dict:
    """``python -m labeling retrain --json`` in a child process: wall s, peak RSS, stages."""
    loads: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(5.0):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start, cpu_before = time.perf_counter(), _children_cpu_s()
    child = subprocess.Popen([sys.executable, "-m", "labeling", "retrain", "--config", str(config), "--json", "--quiet"],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    out, err = child.communicate()
    wall, cpu = time.perf_counter() - start, _children_cpu_s() - cpu_before
    done.set()
    loads = loads or [os.getloadavg()[0]]
    if child.returncode != 0:
        raise SystemExit(f"retrain failed ({child.returncode}):\n{err[-4000:]}")
    payload = json.loads(out)
    stages = payload.get("stages", {})
    # each stage's peak is the process's (or its largest worker's) peak so far: the last is the run's
    peak = max((s["peak_rss_mb"] for s in stages.values()), default=float("nan"))
    selection = (payload.get("end_model") or {}).get("selection") or {}
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": peak, "stages": stages,
            "load_avg_mean": round(float(np.mean(loads)), 2), "load_avg_max": round(max(loads), 2),
            "end_model_accuracy": _metric(payload, "end model"),
            "label_model_accuracy": next((m["accuracy"] for m in payload["metrics"] if m["kind"] == "label_model"
                                          and m["name"] != "majority vote"), None),
            "end_model_choice": {"settings": selection.get("settings"), "rows": selection.get("rows"),
                                 "dropped": selection.get("dropped_candidates"),
                                 "family_scores": {c["name"]: round(c["dev_score"], 4)
                                                   for c in (selection.get("stages") or [{}])[0].get("candidates", [])}}}


def _children_cpu_s() -> float:
    """User + system CPU seconds of the child processes waited for so far: on a shared
    machine the wall time stretches with the load, the CPU time much less."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _metric(payload: dict, name: str):
    return next((m["accuracy"] for m in payload["metrics"] if m["name"] == name), None)


def _print_run(label: str, run: dict) -> None:
    from labeling.progress import stage_table

    print(f"\n{label}: {run['wall_s']:.1f} s wall ({run['cpu_s']:.1f} s CPU), peak RSS {run['peak_rss_mb']:,.0f} MiB, load average "
          f"{run['load_avg_mean']} (max {run['load_avg_max']}) on {os.cpu_count()} cores; end model test accuracy "
          f"{run['end_model_accuracy']} (label model {run['label_model_accuracy']})", flush=True)
    print(f"end model: {json.dumps(run['end_model_choice'], default=str)}", flush=True)
    print(stage_table(run["stages"]), flush=True)


def ratio_table(results: dict, kind: str = "cold") -> str:
    """Each stage's seconds per size, and its ratio to the smallest size's."""
    sizes = sorted(r for r in results if isinstance(r, int) and kind in results[r])
    if len(sizes) < 2:
        return ""
    base = sizes[0]
    names = list(results[base][kind]["stages"])
    head = f"{'stage':<16}" + "".join(f"{f'{n:,} s':>13}" for n in sizes)
    head += "".join(f"{f'x {n // base}':>9}" for n in sizes[1:])
    lines = [f"{kind} runs: seconds per stage, and the ratio to {base:,} rows (rows ratio: "
             + ", ".join(f"{n / base:g}" for n in sizes[1:]) + ")", head]
    for name in names + ["wall"]:
        secs = [results[n][kind]["wall_s"] if name == "wall" else results[n][kind]["stages"].get(name, {}).get("seconds")
                for n in sizes]
        row = f"{name:<16}" + "".join(f"{'' if v is None else f'{v:.2f}':>13}" for v in secs)
        row += "".join(f"{'' if not secs[0] or v is None else f'{v / secs[0]:.1f}':>9}" for v in secs[1:])
        lines.append(row)
    peaks = [results[n][kind]["peak_rss_mb"] for n in sizes]
    lines.append(f"{'peak RSS MiB':<16}" + "".join(f"{v:>13,.0f}" for v in peaks)
                 + "".join(f"{v / peaks[0]:>9.1f}" for v in peaks[1:]))
    return "\n".join(lines)


def apply_ratios(data_dir: Path, snorkel_rows: int) -> list[dict]:
    """Snorkel vs our applier (declarative and plain LFs) on IMDB's distinct texts."""
    from snorkel.labeling import PandasLFApplier

    from labeling import apply_lfs, discover_lfs
    from labeling.data.datasets import load_imdb

    frame = load_imdb(data_dir).drop_duplicates("text").reset_index(drop=True)
    out = []
    for module in ("labeling_functions.imdb_sentiment", "labeling_functions.imdb_sentiment_plain"):
        lfs = discover_lfs([module], root=REPO)
        # Snorkel's rows in two halves, one before and one after ours: a change in the
        # machine's load between the two timings weighs on both sides alike
        halves = (frame.iloc[: snorkel_rows // 2], frame.iloc[snorkel_rows // 2 : snorkel_rows])
        # fresh Arrow arrays (frame.copy() shares them): no content keys, distinct texts
        # or scan buffers memoized by an earlier apply
        fresh = frame.assign(text=frame["text"].astype(object).astype("str"))
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        theirs = [PandasLFApplier(list(lfs)).apply(halves[0], progress_bar=False)]
        snorkel_s = time.perf_counter() - start
        start = time.perf_counter()
        ours = apply_lfs(lfs, fresh, cardinality=2)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        theirs.append(PandasLFApplier(list(lfs)).apply(halves[1], progress_bar=False))
        snorkel_s += time.perf_counter() - start
        theirs = np.concatenate(theirs)
        rate = len(theirs) / snorkel_s
        np.testing.assert_array_equal(ours.L[: len(theirs)], theirs)
        out.append({"set": module.rsplit(".", 1)[1], "rows": len(frame), "seconds": round(seconds, 2),
                    "rows_per_s": round(len(frame) / seconds), "snorkel_rows_per_s": round(rate),
                    "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)]})
    for row in out:
        row["x_snorkel"] = round(row["rows_per_s"] / row["snorkel_rows_per_s"], 1)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 1_000_000])
    parser.add_argument("--snorkel-rows", type=int, default=5_000)
    parser.add_argument("--skip-apply", action="store_true", help="no applier comparison")
    parser.add_argument("--skip-retrain", action="store_true", help="only the applier comparison")
    parser.add_argument("--runs", nargs="+", choices=("cold", "warm"), default=["cold", "warm"],
                        help="which LF-cache states to run (warm runs after cold, on its cache)")
    args = parser.parse_args(argv)
    data_dir = Path(os.environ.get("LABELING_DATA_DIR", REPO.parent / "shared" / "data"))
    results: dict = {}
    if not args.skip_retrain:
        train, test = _imdb(data_dir)
        for rows in sorted(args.sizes):
            with tempfile.TemporaryDirectory(prefix=f"imdb{rows}-") as tmp:
                config = build_project(Path(tmp), rows, train, test)
                results[rows] = {}
                for kind in ("cold", "warm"):
                    if kind in args.runs:
                        results[rows][kind] = run_cli(config)
                        _print_run(f"{rows:,} rows, {kind} LF cache", results[rows][kind])
        for kind in args.runs:
            table = ratio_table(results, kind)
            if table:
                print("\n" + table, flush=True)
    if not args.skip_apply:
        ratios = apply_ratios(data_dir, args.snorkel_rows)
        print(f"\nLF application on IMDB's distinct texts (Snorkel timed on {args.snorkel_rows:,} rows, extrapolated):")
        for r in ratios:
            print(f"  {r['set']:<24} {r['rows']:>7,} rows {r['seconds']:7.2f} s {r['rows_per_s']:>9,} rows/s "
                  f"  Snorkel {r['snorkel_rows_per_s']:>6,} rows/s   {r['x_snorkel']:5.1f}x   "
                  f"load {r['load_avg_1min'][0]:.1f} -> {r['load_avg_1min'][1]:.1f} on {os.cpu_count()} cores",
                  flush=True)
        results["apply"] = ratios
    print("\n" + json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
