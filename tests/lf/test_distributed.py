"""The applier on a real Dask LocalCluster (worker processes on 127.0.0.1)."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest
from snorkel.labeling import labeling_function

from labeling import LFApplicationError, apply_lfs, discover_lfs
from labeling.matrix import label_matrix_hash

from ..conftest import REPO

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, memory_limit="1GiB") as cluster, \
            distributed.Client(cluster) as client:
        yield cluster, client


@labeling_function()
def slow_link(x):
    time.sleep(0.002)  # long enough for a worker to die mid-run
    return 1 if "http" in x.text else -1


@labeling_function()
def fails_on_short(x):
    if len(x.text) < 12:
        raise ValueError("too short")
    return 0 if "song" in x.text else -1


def test_cluster_matrix_has_the_same_hash_as_local(cluster, youtube_splits):
    _, client = cluster
    lfs = [lf for lf in discover_lfs(["labeling_functions.youtube_spam"], root=REPO) if not lf.name.startswith("spacy")]
    frame = youtube_splits.train.iloc[:600]
    local = apply_lfs(lfs, frame, cardinality=2, n_jobs=1)
    remote = apply_lfs(lfs, frame, cardinality=2, scheduler=client)
    by_address = apply_lfs(lfs, frame.iloc[:100], cardinality=2, scheduler=client.scheduler.address)
    assert label_matrix_hash(remote.L) == label_matrix_hash(local.L)
    np.testing.assert_array_equal(by_address.L, local.L[:100])
    assert remote.seconds_per_lf.keys() == local.seconds_per_lf.keys()


def test_fault_counts_are_aggregated_from_workers(cluster, youtube_splits):
    _, client = cluster
    frame = youtube_splits.train
    short = frame["text"].str.len().lt(12).to_numpy()
    result = apply_lfs([fails_on_short], frame, cardinality=2, scheduler=client, fault_tolerant=True)
    local = apply_lfs([fails_on_short], frame, cardinality=2, fault_tolerant=True)
    errors = result.errors["fails_on_short"]
    assert errors.count == int(short.sum()) > 0 and errors == local.errors["fails_on_short"]
    assert errors.messages[0] == "ValueError: too short"
    np.testing.assert_array_equal(result.L, local.L)
    with pytest.raises(LFApplicationError) as info:
        apply_lfs([fails_on_short], frame, cardinality=2, scheduler=client)
    assert info.value.row_id == frame["id"][short].iloc[0] and "too short" in str(info.value)


@pytest.mark.slow  # ~30 s: a worker is killed and restarted
def test_a_worker_dying_mid_run_does_not_change_the_result(cluster):
    _, client = cluster
    n = 2000
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(n)],
                          "text": [f"see http://x/{i}" if i % 3 else f"row {i}" for i in range(n)]})
    expected = apply_lfs([slow_link], frame, cardinality=2, n_jobs=1)
    pids = client.run(os.getpid)
    victim = min(pids)

    def kill_soon():
        time.sleep(0.6)  # 20 chunks of 100 rows x 2 ms: the run is under way
        os.kill(pids[victim], signal.SIGKILL)

    killer = threading.Thread(target=kill_soon)
    killer.start()
    from labeling.lf.apply import label_chunk
    from labeling.lf.distributed import run_on_dask

    outcomes = run_on_dask(client, label_chunk, [slow_link], frame, np.ones((n, 1), bool), 2, fault_tolerant=False,
                                chunk_rows=100)
    killer.join()
    L = np.full((n, 1), -1)
    for offset, out in outcomes:
        L[offset : offset + len(out.votes)] = out.votes
    assert label_matrix_hash(L) == label_matrix_hash(expected.L)
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.run(os.getpid) or client.run(os.getpid)[victim] != pids[victim], "the worker was killed"
