"""Start-up time of the command line: ``labeling --help`` and each command's ``--help``.

    python benchmarks/cli_startup.py [--runs 10] [--commands retrain serve ...] [--json]

Each run is a new ``python -m labeling ... --help`` process (the interpreter's own
start-up included, as a user pays it); the median of ``--runs`` wall-clock times is
reported with the fastest and slowest run, and the heavy libraries the process had
imported (none is the goal: building the parser needs no model, data or serving
library). Timings are wall-clock on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Libraries that printing help must not import (model, data and serving libraries).
HEAVY = ("dask", "fastapi", "lightgbm", "numpy", "onnx", "onnxruntime", "pandas", "pyarrow", "pydantic", "scipy",
         "skl2onnx", "sklearn", "snorkel", "spacy", "starlette", "torch", "transformers", "uvicorn", "xgboost")

# Runs the real entry point (``labeling/__main__.py``) and reports what it imported.
_PROBE = """
import json, runpy, sys
sys.argv = ["labeling", *json.loads(sys.argv[1])]
try:
    runpy.run_module("labeling", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted({m.partition(".")[0] for m in sys.modules})}), file=sys.stderr)
"""


def heavy_imports(args: list[str]) -> tuple[int, list[str]]:
    """Exit code of ``labeling ARGS`` and the heavy libraries (``HEAVY``) it imported."""
    out = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(args)], capture_output=True, text=True,
                         cwd=REPO, check=True)
    report = json.loads(out.stderr.strip().splitlines()[-1])
    return report["code"], sorted(set(HEAVY) & set(report["modules"]))


def time_help(args: list[str], runs: int) -> dict:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "labeling", *args], capture_output=True, cwd=REPO, check=True)
        times.append(time.perf_counter() - start)
    return {"command": " ".join(["labeling", *args]), "runs": runs, "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3), "max_s": round(max(times), 3), "heavy_imports": heavy_imports(args)[1]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--commands", nargs="*", default=[], help="also time these commands' --help")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [time_help(["--help"], args.runs)] + [time_help([c, "--help"], args.runs) for c in args.commands]
    if args.json:
        print(json.dumps(results, indent=2))
    for r in results if not args.json else []:
        print(f"{r['command']:<28} median {r['median_s']:.3f} s (min {r['min_s']:.3f}, max {r['max_s']:.3f}, "
              f"{r['runs']} runs); heavy imports: {', '.join(r['heavy_imports']) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
