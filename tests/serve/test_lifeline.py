"""Children end with their parent: real processes, kill -9 of the parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# A parent whose spawned child blocks on a half-written multiprocessing queue message: the
# child holds the queue pipe's write end too, so the read never sees EOF (issue 23, row 5).
PARENT = """
import multiprocessing as mp, os, struct, sys, time
from labeling.serve.lifeline import die_with_parent

def reader(queue, death_signal):
    die_with_parent(death_signal=death_signal)
    print("blocked", flush=True)
    queue.get()

if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=reader, args=(queue, sys.argv[1] == "1"))
    child.start()
    os.write(queue._writer.fileno(), struct.pack("!i", 1 << 20) + b"half a message")
    print(child.pid, flush=True)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.parametrize("death_signal", [False, True], ids=["watchdog", "watchdog+pdeathsig"])
def test_a_child_blocked_on_a_half_written_message_dies_with_its_parent(tmp_path, death_signal):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script), "1" if death_signal else "0"], cwd=REPO,
                              stdout=subprocess.PIPE, text=True, start_new_session=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        lines = {parent.stdout.readline().strip() for _ in range(2)}  # the child's pid and "blocked", any order
        child = int(next(line for line in lines if line.isdigit()))
        assert "blocked" in lines and _alive(child)
        time.sleep(0.3)  # the child is in its read now
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        try:
            os.killpg(parent.pid, signal.SIGKILL)  # whatever is left of this test's session
        except ProcessLookupError:
            pass
        parent.wait(timeout=10)
