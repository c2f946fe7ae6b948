"""Child processes of the server end with their parent, kill -9 included.

A server killed with SIGKILL runs no cleanup: its uvicorn workers (which hold the
listening socket and keep answering on the port), their LF-votes processes and the
multiprocessing resource trackers would otherwise live on, orphaned, for good (a
restart then fails with "Address already in use"). Two mechanisms, because each has
a blind spot:

- ``PR_SET_PDEATHSIG`` (Linux ``prctl``): the kernel sends SIGKILL when the parent
  dies, whatever the child is doing (blocked in a read, holding the GIL). The kernel
  sends it when the parent *thread* that started the child exits, not the process, so
  it is set only where that thread lives as long as the process (uvicorn's supervisor
  starts its workers from its main thread).
- A watchdog thread waiting on the parent's sentinel: the read end of a pipe whose
  write end only the parent holds (multiprocessing's spawn passes the child no other
  copy), so it reads EOF the moment the parent is gone, and ends this process.

The resource tracker needs neither: it exits at EOF on its own pipe, whose write ends
only the workers and LF-votes processes hold.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading

__all__ = ["die_with_parent"]

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent thread exits (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(sentinel: int, parent_pid: int) -> None:
    try:
        multiprocessing.connection.wait([sentinel])
    except OSError:
        pass  # the sentinel itself is gone: treat it as the parent gone
    # os.write, not logging: the main thread, blocked for good, may hold a handler's lock.
    # os._exit, not sys.exit: no cleanup may wait on that thread or on the parent that is gone.
    try:
        os.write(2, f"process {os.getpid()}: parent process {parent_pid} is gone: exiting\n".encode())
    finally:
        os._exit(1)


def die_with_parent(*, death_signal: bool = False) -> bool:
    """End this process when the process that started it (with ``multiprocessing``) ends.

    Starts a daemon watchdog thread on the parent's sentinel; with ``death_signal``, also sets
    ``PR_SET_PDEATHSIG`` to SIGKILL (only when the parent started this process from a thread that
    lives as long as it, e.g. its main thread). Returns False, doing nothing, in a process not
    started by ``multiprocessing`` (the server run in the foreground with one worker).
    """
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return False
    if death_signal:
        _set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent.pid:  # it died before the death signal was set: nothing would send it
        os._exit(1)
    threading.Thread(target=_watch, args=(parent.sentinel, parent.pid), name="parent-watchdog",
                     daemon=True).start()
    return True
