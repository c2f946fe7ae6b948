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
from collections.abc import Sequence

from .app import SETTINGS_ENV, ServeSettings

__all__ = ["TOKEN_ENV", "read_token", "reexec_without_token", "serve"]

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
                # A worker answers the supervisor's health check only once Python started it; on a busy
                # machine that takes longer than uvicorn's 5 s, and the supervisor kills and restarts it forever.
                timeout_worker_healthcheck=60)
