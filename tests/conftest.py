"""Shared fixtures. Tests read the real datasets from the data folder and load the
spaCy pipeline that ``labeling.settings`` resolves, as every entry point does:
``$LABELING_DATA_DIR`` (default ``../shared/data`` beside the repository), and the
official en_core_web_sm or, when it is missing, an installed en_core_web_* stand-in."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI must not depend on luck: property tests draw the same examples on every run there.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from labeling.settings import data_dir as configured_data_dir

    path = configured_data_dir()
    if path is None or not (path / "youtube_spam").is_dir():
        pytest.fail(f"test data not found in {path}; set LABELING_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def youtube_frame(data_dir):
    from labeling import load_youtube_spam

    return load_youtube_spam(data_dir)


@pytest.fixture(scope="session")
def youtube_splits(youtube_frame):
    from labeling import youtube_tutorial_split

    return youtube_tutorial_split(youtube_frame)


@pytest.fixture(scope="session")
def youtube_config_path() -> Path:
    return REPO / "projects" / "youtube_spam" / "project.toml"


def write_project(tmp_path: Path, body: str) -> Path:
    """A project TOML in ``tmp_path`` whose store and artifacts live there too."""
    path = tmp_path / "project.toml"
    path.write_text(body, encoding="utf-8")
    return path


LABEL_STUDIO_SCRIPT = REPO / "scripts" / "label_studio.sh"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """``(url, api_key)`` of a real Label Studio server.

    CI starts one (``.ci/run``) and exports LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY;
    locally this starts one with ``scripts/label_studio.sh`` (state in a temp
    folder, a free port) when its venv exists. Without either it skips, except
    in CI (``$CI`` set), where a missing server is a failure.
    """
    import subprocess

    url, key = os.environ.get("LABEL_STUDIO_URL"), os.environ.get("LABEL_STUDIO_API_KEY")
    if url and key:
        yield url, key
        return
    if not (REPO / ".venv-labelstudio" / "bin" / "label-studio").exists():
        reason = "Label Studio is not installed (scripts/label_studio.sh install) and LABEL_STUDIO_URL is not set"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    state = tmp_path_factory.mktemp("label-studio")
    env = {**os.environ, "LABEL_STUDIO_STATE_DIR": str(state), "LABEL_STUDIO_PORT": str(_free_port())}
    env.pop("LABEL_STUDIO_BASE_DATA_DIR", None)
    # The script waits while the server makes progress (a first start's migrations take
    # minutes under load) and gives up after LABEL_STUDIO_START_MAX_S; this timeout only
    # catches a script that hangs itself.
    limit = int(env.setdefault("LABEL_STUDIO_START_MAX_S", "1200")) + 120
    try:
        started = subprocess.run(["bash", str(LABEL_STUDIO_SCRIPT), "start"], env=env, capture_output=True,
                                 text=True, timeout=limit)
        problem = "" if started.returncode == 0 else started.stderr[-3000:]
    except subprocess.TimeoutExpired:
        log = state / "server.log"
        problem = f"start timed out after {limit} s; its log ends:\n" + (
            log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)")
    if problem:
        subprocess.run(["bash", str(LABEL_STUDIO_SCRIPT), "stop"], env=env, capture_output=True, timeout=60)
        pytest.fail(f"Label Studio did not start:\n{problem}")
    exports = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines()
                   if line.startswith("export "))
    try:
        yield exports["LABEL_STUDIO_URL"], exports["LABEL_STUDIO_API_KEY"]
    finally:
        subprocess.run(["bash", str(LABEL_STUDIO_SCRIPT), "stop"], env=env, capture_output=True, timeout=60)


POSTGRES_SCRIPT = REPO / "scripts" / "postgres.sh"
POSTGRES_URL_ENV = "LABELING_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_server():
    """The URL of a real PostgreSQL server's maintenance database (``postgres``).

    CI starts a throwaway cluster (``.ci/run``, ``scripts/postgres.sh``) and exports
    LABELING_TEST_POSTGRES_URL; locally this starts one with ``scripts/postgres.sh`` when
    Debian's server binaries are installed. Without either it skips, except in CI
    (``$CI`` set), where a missing server is a failure.
    """
    import glob
    import subprocess

    url = os.environ.get(POSTGRES_URL_ENV)
    if url:
        yield url
        return
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        reason = f"PostgreSQL is not installed (scripts/postgres.sh install) and {POSTGRES_URL_ENV} is not set"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    started = subprocess.run(["bash", str(POSTGRES_SCRIPT), "start"], capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        pytest.fail(f"PostgreSQL did not start:\n{started.stderr[-3000:]}")
    exports = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines()
                   if line.startswith("export "))
    exports = {k: v.strip("'") for k, v in exports.items()}
    try:
        yield exports[POSTGRES_URL_ENV]
    finally:
        subprocess.run(["bash", str(POSTGRES_SCRIPT), "stop"], env={**os.environ, **exports}, capture_output=True,
                       timeout=60)


@pytest.fixture
def postgres_url(postgres_server):
    """A ``postgresql://`` URL of a fresh, empty database for this test alone (dropped after it)."""
    import urllib.parse
    import uuid

    import psycopg

    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urllib.parse.urlunsplit(urllib.parse.urlsplit(postgres_server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request, tmp_path):
    """A new, empty store on each backend: a SQLite file path, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return tmp_path / "store.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def recorded_youtube_run(youtube_config_path, tmp_path_factory):
    """One recorded run of the example project (store and artifacts in a tmp folder),
    shared read-only: tests that change aliases or log predictions use ``copy_store``."""
    from labeling import load_config, run_retrain

    tmp = tmp_path_factory.mktemp("recorded_youtube")
    config = load_config(youtube_config_path, [f'project.store="{tmp / "store.db"}"',
                                               f'project.artifacts="{tmp / "artifacts"}"'])
    return config, run_retrain(config)


def copy_store(source: Path, target: Path) -> Path:
    """A consistent copy of a SQLite store (WAL included), via SQLite's backup API."""
    import sqlite3

    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(str(source)) as src, sqlite3.connect(str(target)) as dst:
        src.backup(dst)
    return target


TINY_PROJECT = """
[project]
name = "tiny"
classes = ["ham", "spam"]
seed = 1
[dataset]
source = "file"
path = "comments.csv"
text_field = "text"
label_field = "label"
split = "random"
dev_size = 0.25
test_size = 0.25
[lfs]
modules = ["lf_modules.youtube_weak"]
root = "{root}"
[label_model]
type = "majority_vote"
[slices]
modules = []
[serving]
# the tests on it are about the end model's serving paths: pinned, whatever its dev rows would choose
predictor = "end_model"
"""


def tiny_project(folder: Path) -> Path:
    """A project that retrains in about a second: 120 short comments, the two weak YouTube
    LFs, majority vote. Its store and artifacts live in ``folder``."""
    import csv

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "comments.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(120):
            spam = i % 2 == 1
            writer.writerow([f"check out my channel {i}!" if spam else f"love this song {i}", "spam" if spam else "ham"])
    return write_project(folder, TINY_PROJECT.format(root=FIXTURES))


def record_model_as_run(config, run_id: str, model, new_id: str) -> str:
    """Record ``model`` as the end model of a new run ``new_id`` (otherwise a copy of ``run_id``'s
    record and label model): another servable version, made without a retrain."""
    import datetime
    import shutil

    from labeling import RunRecord, RunStore, save_end_model

    root = config.resolve(config.artifacts)
    shutil.copytree(root / run_id / "label_model", root / new_id / "label_model")
    files = save_end_model(model, root / new_id / "end_model")
    with RunStore(config.resolve(config.store)) as store:
        run = store.get_run(run_id)
        saved = [(a["name"], a["path"].replace(f"/{run_id}/", f"/{new_id}/"), a["sha256"])
                 for a in run["artifacts"] if a["name"].startswith("label_model/")]
        saved += [(f"end_model/{name}", str(root / new_id / "end_model" / name), digest) for name, digest in files.items()]
        store.record_run(RunRecord(
            id=new_id, created_at=datetime.datetime.now(datetime.timezone.utc).isoformat(), project=run["project"],
            seed=run["seed"], config=run["config"], dataset_version=run["dataset_version"],
            dataset_source=run["dataset_source"], split_sizes=run["split_sizes"], lf_set_version=run["lf_set_version"],
            lfs=tuple((lf["name"], lf["version"]) for lf in run["lfs"]), matrix_hashes=run["matrix_hashes"],
            label_model=run["label_model"], end_model=run["end_model"], metrics=(), lf_stats=(), artifacts=tuple(saved)))
    return new_id


def break_end_model(config, run_id: str, fault: str, *, record: bool = True) -> Path:
    """Damage a recorded run's end model the ways issue 12 found; returns the file named by the error.

    ``fault``: ``"not-a-zip"`` (the pipeline file replaced), ``"missing"`` (deleted), ``"wrong-key"``
    (the manifest's ``files`` renamed) or ``"rewritten"`` (another model written over the files,
    manifest included). ``record``: also rewrite the store's checksums, as for a run recorded with
    damaged files; without it the damage is a tampering the recorded checksums must catch.
    """
    import json
    import sqlite3

    from labeling.data.datasets import sha256_file

    folder = config.resolve(config.artifacts) / run_id / "end_model"
    manifest = json.loads((folder / "manifest.json").read_text())
    named = folder / "pipeline.skops"
    if fault == "not-a-zip":
        named.write_bytes(b"this is not a zip file")
        manifest["files"]["pipeline.skops"] = sha256_file(named)
    elif fault == "missing":
        named.unlink()
    elif fault == "wrong-key":
        manifest["file"] = manifest.pop("files")
        named = folder / "manifest.json"
    elif fault == "rewritten":
        named.write_bytes(named.read_bytes()[:-1] + b"\0")
        manifest["files"]["pipeline.skops"] = sha256_file(named)
        named = folder / "manifest.json"
    else:
        raise ValueError(fault)
    if fault != "missing":
        (folder / "manifest.json").write_text(json.dumps(manifest))
    if record:
        conn = sqlite3.connect(config.resolve(config.store))
        with conn:
            for path in folder.iterdir():
                conn.execute("UPDATE run_artifacts SET sha256 = ? WHERE run_id = ? AND name = ?",
                             [sha256_file(path), run_id, f"end_model/{path.name}"])
        conn.close()
    return named
