"""Figures of the Label Studio ML backend (/ls routes) on a tiny project served for real.

    python benchmarks/ls_backend.py [--requests 300] [--tasks 10000] [--predict-all-only]

Starts ``labeling serve`` (uvicorn, 127.0.0.1, one worker) on the tiny 120-comment project
of the tests in a temporary folder, then measures, sequentially from one client:

- ``GET /ls/health`` and ``POST /ls/setup``: p50/p99 over ``--requests`` calls;
- ``POST /ls/predict`` of 100 tasks (served model + LF votes per task): median of 10;
- ``POST /ls/webhook`` acknowledgement p50/p99 while a ``START_TRAINING`` retrain runs
  (answer events, stored in the background);
- with ``$LABEL_STUDIO_URL``/``$LABEL_STUDIO_API_KEY`` set: ``labeling review predict-all``
  on a new project of ``--tasks`` tasks (the import of the tasks is not counted), with
  the seconds each stage was busy listing tasks, predicting and importing predictions
  (the stages run at once, so they add up to more than ``total``), then a rerun (nothing
  left to do), and the load average before and after. Start Label Studio with ``scripts/label_studio.sh start``: it turns
  on the prediction import whose cost grows with the batch, not with the project.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import logging

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from labeling import load_config, run_retrain  # noqa: E402
from tests.conftest import tiny_project  # noqa: E402
from tests.serve.test_ls_backend import CONFIG, _event, serve_project  # noqa: E402


def _times(call, n: int) -> dict:
    seconds = []
    for _ in range(n):
        start = time.perf_counter()
        response = call()
        seconds.append(time.perf_counter() - start)
        response.raise_for_status()
    ms = np.array(seconds) * 1000
    return {"n": n, "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


def _predict_all(url: str, n_tasks: int) -> dict:
    from labeling.review.jobs import predict_all
    from labeling.review.label_studio import LabelStudioReview

    review = LabelStudioReview(os.environ["LABEL_STUDIO_URL"], os.environ["LABEL_STUDIO_API_KEY"],
                               title=f"predict-all-{secrets.token_hex(4)}", classes=("ham", "spam"))
    pid = review.ensure_project()
    texts = [f"check out my channel {i}!" if i % 2 else f"love this song {i}" for i in range(n_tasks)]
    for start in range(0, n_tasks, 2000):
        review.client.projects.import_tasks(pid, request=[{"text": t, "lf_votes": ""} for t in texts[start:start + 2000]])
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    summary = predict_all(review, url + "/ls/")
    seconds = time.perf_counter() - started
    resumed = time.perf_counter()
    again = predict_all(review, url + "/ls/")
    return {"tasks": n_tasks, "stored": summary.stored, "batches": summary.batches, "seconds": round(seconds, 1),
            "breakdown_s": summary.seconds, "rerun_stored": again.stored,
            "rerun_seconds": round(time.perf_counter() - resumed, 1),
            "load_avg_1min": [round(load_before, 1), round(os.getloadavg()[0], 1)]}


def main(argv=None) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--predict-all-only", action="store_true", help="measure predict-all alone")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = tiny_project(Path(tmp) / "project")
        run_retrain(load_config(path))
        out: dict = {}
        with serve_project(path) as url, httpx.Client(base_url=url, trust_env=False, timeout=120) as c:
            if args.predict_all_only:
                print(json.dumps({"predict_all": _predict_all(url, args.tasks)}, indent=2))
                return 0
            out["health"] = _times(lambda: c.get("/ls/health"), args.requests)
            out["setup"] = _times(lambda: c.post("/ls/setup", json={"schema": CONFIG}), args.requests)
            tasks = [{"id": i, "data": {"body": f"check out my channel {i}!" if i % 2 else f"love this song {i}"}}
                     for i in range(100)]
            body = {"tasks": tasks, "label_config": CONFIG}
            c.post("/ls/predict", json=body).raise_for_status()  # warm-up (LF votes, spaCy)
            runs = []
            for _ in range(10):
                start = time.perf_counter()
                c.post("/ls/predict", json=body).raise_for_status()
                runs.append(time.perf_counter() - start)
            out["predict_100_tasks_s"] = {"median": round(statistics.median(runs), 3), "max": round(max(runs), 3)}
            job = c.post("/ls/webhook", json={"action": "START_TRAINING", "project": {"id": 1}}).json()["job"]
            events = iter(range(1, 10**6))
            out["webhook_during_retrain"] = _times(
                lambda: c.post("/ls/webhook", json=_event("ANNOTATION_CREATED", (i := next(events)), 1000 + i,
                                                          ["spam"])), args.requests)
            out["webhook_during_retrain"]["retrain_still_running"] = c.get(f"/ls/jobs/{job}").json()["status"]
            while c.get(f"/ls/jobs/{job}").json()["status"] not in ("done", "failed"):
                time.sleep(0.5)
            if os.environ.get("LABEL_STUDIO_URL") and os.environ.get("LABEL_STUDIO_API_KEY"):
                out["predict_all"] = _predict_all(url, args.tasks)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
