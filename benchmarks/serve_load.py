"""Load test of the model server: single predictions at a fixed rate, then batches of 1000.

    python benchmarks/serve_load.py --url http://127.0.0.1:8000 [--rate 50] [--seconds 10]
    python benchmarks/serve_load.py --config projects/youtube_spam/project.toml [--workers 2] [--set k=v ...]

Without ``--url`` it starts ``python -m pipelines.serve`` itself on a free port.
Open loop: each request has a scheduled send time, and its latency counts from
that time, so a slow server cannot hide its queueing (no coordinated omission).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
TEXTS = [
    "check out my channel for free giftcards http://example.com",
    "this song never gets old",
    "subscribe to me and I will subscribe back!!!",
    "Who is watching in 2026?",
    "love the guitar solo at 2:31",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "pipelines.serve", "--config", args.config, "--port", str(port),
           "--workers", str(args.workers)]
    for o in args.overrides:
        cmd += ["--set", o]
    if args.no_lf_votes:
        cmd.append("--no-lf-votes")
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            sys.exit("server exited before it was ready")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGTERM)
    sys.exit("server not ready in 120 s")


def fixed_rate(url: str, rate: float, seconds: float) -> dict:
    n = int(rate * seconds)
    latencies = np.full(n, np.nan)
    errors: list[str] = []
    local = threading.local()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=30)
        return local.client

    def send(i: int, scheduled: float) -> None:
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        try:
            r = client().post("/predict", json={"text": TEXTS[i % len(TEXTS)]})
            if r.status_code != 200:
                errors.append(str(r.status_code))
        except httpx.HTTPError as exc:
            errors.append(type(exc).__name__)
        latencies[i] = time.perf_counter() - scheduled

    start = time.perf_counter() + 0.5
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(n):
            pool.submit(send, i, start + i / rate)
    ms = latencies[~np.isnan(latencies)] * 1000
    return {"rate_per_s": rate, "requests": n, "errors": len(errors),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1)}


def batches(url: str, size: int, repeats: int) -> dict:
    texts = [f"{TEXTS[i % len(TEXTS)]} #{i}" for i in range(size)]
    times = []
    with httpx.Client(base_url=url, timeout=120) as c:
        for _ in range(repeats):
            t = time.perf_counter()
            r = c.post("/predict", json={"texts": texts})
            r.raise_for_status()
            times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return {"batch_size": size, "repeats": repeats, "median_ms": round(float(np.median(ms)), 1),
            "min_ms": round(float(ms.min()), 1), "max_ms": round(float(ms.max()), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="")
    parser.add_argument("--config", default=str(REPO / "projects" / "youtube_spam" / "project.toml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-lf-votes", action="store_true", help="started server: skip LF votes (isolates the model)")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-repeats", type=int, default=5)
    args = parser.parse_args(argv)
    proc, url = (None, args.url) if args.url else start_server(args)
    try:
        version = httpx.get(url + "/models", timeout=10).json()["model_version"]
        c = httpx.Client(base_url=url, timeout=120)
        for _ in range(10):  # warm both workers' code paths
            c.post("/predict", json={"text": TEXTS[0]})
        result = {"url": url, "model_version": version, "cpus": os.cpu_count(),
                  "single_predict": fixed_rate(url, args.rate, args.seconds),
                  "batch_predict": batches(url, args.batch_size, args.batch_repeats)}
        print(json.dumps(result, indent=2))
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
