"""Run the app under uvicorn: the bearer token in, settings out to the workers.

``labeling serve`` (and ``python -m pipelines.serve``) parse their options and call
``serve``. The token comes from a file or stdin (``read_token``), else from
``$LABELING_SERVE_TOKEN``; weak tokens are refused (``app.check_token_strength``).
Only its sha256 reaches the workers: a token from the environment is scrubbed, and the
command re-executes itself (``reexec_without_token``) so that not even its own
``/proc/<pid>/environ`` holds it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from .app import SETTINGS_ENV, ReadDeadlineProtocol, ServeSettings

__all__ = ["TOKEN_ENV", "read_token", "reexec_without_token", "serve", "wait_until_ready"]

TOKEN_ENV = "LABELING_SERVE_TOKEN"


def read_token(token_file: str) -> str:
    """The token in ``token_file`` (``-``: stdin), without its trailing newline. Raises ``OSError``."""
    if token_file == "-":
        return sys.stdin.readline().strip()
    with open(token_file, encoding="utf-8") as handle:
        return handle.read().strip()


def reexec_without_token(command: Sequence[str], token: str) -> None:
    """Replace this process by ``python -m <command...>`` with the token removed from the environment.

    Deleting it from ``os.environ`` hides it from the workers, but the kernel's copy of this
    process's start-up environment (``/proc/<pid>/environ``) keeps it. The new image gets the
    token through a pipe named as its ``--token-file`` instead. Does not return.
    """
    read_end, write_end = os.pipe()
    os.write(write_end, token.encode("utf-8") + b"\n")  # a token is far under a pipe's buffer
    os.close(write_end)
    os.set_inheritable(read_end, True)
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    os.execve(sys.executable, [sys.executable, "-m", *command, "--token-file", f"/dev/fd/{read_end}"], env)


def serve(settings: ServeSettings, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Serve ``settings``' project with ``workers`` uvicorn processes on ``host:port`` until stopped.

    Files the server creates (the store, its WAL) are its owner's only. Workers are separate
    processes that rebuild the app from ``$LABELING_SERVE_SETTINGS``: only the token's hash travels.
    """
    os.environ.pop(TOKEN_ENV, None)  # before any worker or LF-votes process starts
    os.umask(0o077)
    os.environ[SETTINGS_ENV] = settings.to_json()
    import uvicorn

    uvicorn.run("labeling.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning", timeout_graceful_shutdown=10, http="labeling.serve.app:ReadDeadlineProtocol",
                # Only for h11, should it replace our httptools protocol (which caps headers itself, 431).
                h11_max_incomplete_event_size=ReadDeadlineProtocol.MAX_HEADER_BYTES,
                # A worker answers the supervisor's health check only once Python started it; on a busy
                # machine that takes longer than uvicorn's 5 s, and the supervisor kills and restarts it forever.
                timeout_worker_healthcheck=60)


def wait_until_ready(url: str, workers: int = 1, *, path: str = "/readyz", timeout: float = 120.0,
                     alive: Callable[[], bool] | None = None) -> bool:
    """Poll ``url + path`` (``/readyz``; ``/livez`` for "accepting connections") until each of
    the server's ``workers`` processes has answered and the latest answer of each was 200.

    Readiness is per worker, and which worker accepts a connection is up to the kernel: a run
    of 200s from one worker says nothing of another still loading its model. Each answer
    names its worker (``Health.worker``, a random id per process start). Returns True when
    ready; False after ``timeout`` seconds, or as soon as ``alive()`` (e.g. "the server
    process has not exited") is False. Proxies from the environment are not used.
    """
    import json
    import time
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    last: dict[str, bool] = {}  # worker id -> whether its latest answer was 200
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            return False
        try:
            with opener.open(url + path, timeout=2) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:  # 503 "not ready" and the like: an answer too
            status, body = exc.code, exc.read()
        except OSError:  # not accepting connections yet
            status, body = None, b""
        if status is not None:
            try:
                worker = str(json.loads(body).get("worker", ""))
            except (ValueError, AttributeError):
                worker = ""
            last[worker] = status == 200
            if len(last) >= workers and all(last.values()):
                return True
        time.sleep(0.1)
    return False
