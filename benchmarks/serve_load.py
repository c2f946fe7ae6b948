"""Load test of the model server: single predictions at a fixed rate, then batches of 1000.

    python benchmarks/serve_load.py --url http://127.0.0.1:8000 [--rate 50] [--seconds 10]
    python benchmarks/serve_load.py --config projects/youtube_spam/project.toml [--workers 2] [--set k=v ...]
    python benchmarks/serve_load.py --store sqlite --store postgresql://user@host/postgres --rate 200

Without ``--url`` it starts ``python -m pipelines.serve`` itself on a free port,
on a copy of the project's store in a temporary folder (deleted afterwards): its
thousands of synthetic predictions never reach the project's real store, whose
``monitor`` would judge them as traffic. ``--store`` (repeatable, default sqlite)
picks the backend of that copy: ``sqlite``, or a PostgreSQL server's URL, where
the copy is a new database (``serve_load_<random>``, dropped afterwards); with
several, each is measured in turn and the results printed side by side. With ``--url`` the server's own store
receives them, so point it at a server that is not the production one.
The run's served predictor (``predictor`` in the output) decides the work per request:
one that reads LF votes (``label_model_backoff``, ``blend``) runs the run's LFs on each
text before answering; compare with a run whose ``serving.predictor = "end_model"``.
Open loop: each request has a scheduled send time, and its latency counts from
that time, so a slow server cannot hide its queueing (no coordinated omission).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np

from labeling.config import load_config
from labeling.data.datasets import load_youtube_spam
from labeling.errors import ConfigError, LabelingError

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


def isolated_store(config_path: str, overrides: list[str], folder: Path) -> list[str]:
    """Overrides that point the project at a copy of its store in ``folder``.

    SQLite's backup API gives a consistent copy (WAL included) of the runs and
    aliases the server needs; artifacts are read where the runs recorded them.
    Raises ``ConfigError`` when the project has no store to copy."""
    source = load_config(config_path, overrides).resolve(load_config(config_path, overrides).store)
    if not source.is_file():
        raise ConfigError(f"no store at {source}: run the retrain pipeline first")
    target = folder / "store.db"
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(str(target)) as dst:
        src.backup(dst)
    return [*overrides, f"project.store={json.dumps(str(target))}"]


@contextmanager
def postgres_copy(server_url: str, config_path: str, overrides: list[str], folder: Path):
    """``isolated_store``'s copy moved into a new database on the PostgreSQL server at
    ``server_url`` (``labeling store copy``); the database is dropped afterwards."""
    import psycopg

    from labeling.store.transfer import copy_store

    isolated_store(config_path, overrides, folder)
    name = f"serve_load_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = urllib.parse.urlunsplit(urllib.parse.urlsplit(server_url)._replace(path=f"/{name}"))
    try:
        copy_store(folder / "store.db", url)
        yield [*overrides, f"project.store={json.dumps(url)}"]
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_server(args, folder: Path, store: str, stack: ExitStack) -> tuple[subprocess.Popen, str]:
    """``pipelines.serve`` on a free port, on a copy of the store in ``folder`` (``store``: "sqlite"
    or a PostgreSQL server's URL, where the copy goes into a new database)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "pipelines.serve", "--config", args.config, "--port", str(port),
           "--workers", str(args.workers)]
    if store == "sqlite":
        overrides = isolated_store(args.config, args.overrides, folder)
    else:
        overrides = stack.enter_context(postgres_copy(store, args.config, args.overrides, folder))
    for o in overrides:
        cmd += ["--set", o]
    cmd += ["--lf-votes", args.lf_votes]
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    from labeling.serve.run import wait_until_ready

    if wait_until_ready(url, args.workers, timeout=120, alive=lambda: proc.poll() is None):
        return proc, url
    if proc.poll() is not None:
        sys.exit("server exited before it was ready")
    os.killpg(proc.pid, signal.SIGTERM)
    sys.exit("server not ready in 120 s")


async def _request(reader, writer, host: str, body: bytes) -> int:
    writer.write(b"POST /predict HTTP/1.1\r\nHost: " + host.encode() + b"\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    await reader.readexactly(length)
    return status


def comments() -> list[str]:
    """Real YouTube comments (from $LABELING_DATA_DIR or the official source) when
    available: their vocabulary, not a handful of texts, decides the scoring cost."""
    try:
        return load_youtube_spam()["text"].tolist()
    except LabelingError as exc:  # a benchmark still runs offline without data
        print(f"YouTube comments unavailable ({exc}); using {len(TEXTS)} fixed texts", file=sys.stderr)
        return list(TEXTS)


async def _fixed_rate(url: str, rate: float, seconds: float, connections: int, texts: list[str]) -> dict:
    # A raw keep-alive HTTP/1.1 client on one event loop: it costs the server's two
    # cores far less than a thread per request with a full HTTP library would.
    host_port = url.split("://", 1)[1]
    host, port = host_port.rsplit(":", 1)
    n = int(rate * seconds)
    latencies = np.full(n, np.nan)
    errors: list[str] = []
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(host, int(port)))
    bodies = [json.dumps({"text": t}).encode() for t in texts]
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.5

    async def send(i: int) -> None:
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        conn = await pool.get()
        try:
            status = await _request(*conn, host_port, bodies[i % len(bodies)])
            if status != 200:
                errors.append(str(status))
            pool.put_nowait(conn)
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors.append(type(exc).__name__)
            pool.put_nowait(await asyncio.open_connection(host, int(port)))
        latencies[i] = loop.time() - scheduled

    await asyncio.gather(*(send(i) for i in range(n)))
    while not pool.empty():
        pool.get_nowait()[1].close()
    ms = latencies[~np.isnan(latencies)] * 1000
    return {"rate_per_s": rate, "requests": n, "errors": len(errors),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1)}


def fixed_rate(url: str, rate: float, seconds: float, texts: list[str], connections: int = 32) -> dict:
    """Open loop: each request has a scheduled send time and its latency counts
    from then, so a slow server cannot hide its queueing (no coordinated omission)."""
    return asyncio.run(_fixed_rate(url, rate, seconds, connections, texts))


def batches(url: str, size: int, repeats: int, texts: list[str]) -> dict:
    """Batches of ``size`` texts, a different random sample each time; the first
    one (cold: no word seen before by this worker) is reported on its own."""
    rng = np.random.default_rng(0)
    times = []
    with httpx.Client(base_url=url, timeout=120) as c:
        for _ in range(repeats):
            batch = [texts[i] for i in rng.choice(len(texts), size, replace=len(texts) < size)]
            t = time.perf_counter()
            r = c.post("/predict", json={"texts": batch})
            r.raise_for_status()
            times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return {"batch_size": size, "repeats": repeats, "first_ms": round(float(ms[0]), 1),
            "median_ms": round(float(np.median(ms)), 1), "min_ms": round(float(ms.min()), 1),
            "max_ms": round(float(ms.max()), 1)}


def votes_backlog_s(client: httpx.Client, limit_s: float = 300) -> float | None:
    """Seconds until a prediction sent now has its background LF votes: the
    explainer's backlog after the load (None when votes are not computed in the background)."""
    start = time.perf_counter()
    prediction = client.post("/predict", json={"text": TEXTS[0]}).json()["predictions"][0]
    if prediction["lf_votes_status"] != "pending":
        return None
    while time.perf_counter() - start < limit_s:
        if client.get(f"/predictions/{prediction['id']}").json()["lf_votes_status"] != "pending":
            return round(time.perf_counter() - start, 1)
        time.sleep(0.1)
    return float("inf")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="")
    parser.add_argument("--config", default=str(REPO / "projects" / "youtube_spam" / "project.toml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lf-votes", default="background", choices=("background", "inline", "off"),
                        help="started server: how LF votes are computed (off isolates the model)")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--store", dest="stores", action="append", default=[],
                        help="started server's store: 'sqlite' (default) or a PostgreSQL server URL; repeat to"
                             " compare backends side by side")
    args = parser.parse_args(argv)
    texts = comments()
    if args.url:
        print(json.dumps(measure(args.url, args, texts), indent=2))
        return 0
    results = {}
    for store in args.stores or ["sqlite"]:
        backend = "sqlite" if store == "sqlite" else "postgresql"
        with tempfile.TemporaryDirectory(prefix="serve_load-") as scratch, ExitStack() as stack:
            proc, url = start_server(args, Path(scratch), store, stack)
            try:
                results[backend] = measure(url, args, texts)
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
    print(json.dumps(results if len(results) > 1 else next(iter(results.values())), indent=2))
    return 0


def measure(url: str, args, texts: list[str]) -> dict:
    version = httpx.get(url + "/models", timeout=10).json()["model_version"]
    c = httpx.Client(base_url=url, timeout=120)
    for _ in range(10):  # warm both workers' code paths
        answer = c.post("/predict", json={"text": TEXTS[0]}).json()
    # the run's served predictor: one that reads LF votes computes them before answering
    return {"url": url, "model_version": version, "predictor": answer.get("predictor", "end_model"),
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 1),
            "texts": len(texts),
            # batches first: the first one meets a worker that has seen no word yet
            "batch_predict": batches(url, args.batch_size, args.batch_repeats, texts),
            "single_predict": fixed_rate(url, args.rate, args.seconds, texts),
            "background_lf_votes_caught_up_s": votes_backlog_s(c)}


if __name__ == "__main__":
    sys.exit(main())
