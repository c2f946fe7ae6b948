"""Serve the project's end model over HTTP (uvicorn).

    python -c "import secrets; print(secrets.token_urlsafe(32))" > serve.token && chmod 600 serve.token
    python -m pipelines.serve --config projects/youtube_spam/project.toml --token-file serve.token \
        [--run-id ID] [--host 127.0.0.1] [--port 8000] [--workers N] [--store-text]

The token for write endpoints (and ``explain``) is read from ``--token-file``
(``-``: stdin), else from ``$LABELING_SERVE_TOKEN``; or give only its sha256
with ``--token-sha256``. Weak tokens are refused. Only the hash reaches the
workers: a token from the environment is scrubbed, and the server re-executes
itself so that not even its own ``/proc/<pid>/environ`` holds it.
"""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from labeling.errors import WeakTokenError
from labeling.serve.feedback import utc_now
from labeling.serve.app import SETTINGS_ENV, ServeSettings, check_token_strength, hash_token

TOKEN_ENV = "LABELING_SERVE_TOKEN"


def read_token(token_file: str) -> str:
    """The token in ``token_file`` (``-``: stdin), without its trailing newline."""
    if token_file == "-":
        return sys.stdin.readline().strip()
    with open(token_file, encoding="utf-8") as handle:
        return handle.read().strip()


def _reexec_without_token(argv: list[str], token: str) -> None:
    """Start this program again with the token removed from the environment.

    Deleting it from ``os.environ`` hides it from the workers, but the kernel's copy
    of this process's start-up environment (``/proc/<pid>/environ``) keeps it. The
    new image gets the token through a pipe named as its token file instead.
    """
    read_end, write_end = os.pipe()
    os.write(write_end, token.encode("utf-8") + b"\n")  # a token is far under a pipe's buffer
    os.close(write_end)
    os.set_inheritable(read_end, True)
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    os.execve(sys.executable, [sys.executable, "-m", "pipelines.serve", *argv, "--token-file", f"/dev/fd/{read_end}"],
              env)


def main(argv: list[str] | None = None, *, reexec: bool = False) -> int:
    """``reexec``: when the token came from the environment, replace this process (the
    command line's case) so that its start-up environment no longer holds the token."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m pipelines.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="projects/youtube_spam/project.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--run-id", default="", help="serve this run (moves the alias); default: the alias, else the latest run")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--token-file", default="", metavar="PATH",
                        help=f"file holding the bearer token ('-': read it from stdin); else ${TOKEN_ENV}")
    parser.add_argument("--token-sha256", default="", help="sha256 hex of the bearer token, instead of the token")
    parser.add_argument("--store-text", action="store_true", help="log predicted texts, not only their sha256")
    parser.add_argument("--lf-votes", choices=("background", "inline", "off"), default="background",
                        help="LF votes logged with each prediction: computed after answering (default), before, or not")
    parser.add_argument("--no-lf-votes", dest="lf_votes", action="store_const", const="off", help="same as --lf-votes off")
    parser.add_argument("--max-body-bytes", type=int, default=1_000_000)
    parser.add_argument("--max-explain-batch", type=int, default=ServeSettings.max_explain_batch,
                        help="most texts one explain request may hold")
    parser.add_argument("--request-read-timeout-s", type=float, default=ServeSettings.request_read_timeout_s,
                        help="close a connection whose request has not fully arrived within this many seconds")
    parser.add_argument("--lf-votes-max-texts", type=int, default=ServeSettings.lf_votes_max_texts,
                        help="replace the LF-votes process after this many texts (bounds its memory)")
    parser.add_argument("--alias-poll-s", type=float, default=1.0)
    args = parser.parse_args(argv)

    token = ""
    try:
        if args.token_file:
            token = read_token(args.token_file)
            if not token:
                parser.error(f"the token file {args.token_file} is empty")
        elif os.environ.get(TOKEN_ENV):
            token = os.environ[TOKEN_ENV]
        if token:
            check_token_strength(token)
    except OSError as exc:
        parser.error(f"cannot read the token file: {exc}")
    except WeakTokenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if os.environ.get(TOKEN_ENV) and reexec:
        _reexec_without_token(argv, token)  # does not return
    os.environ.pop(TOKEN_ENV, None)  # before any worker or LF-votes process starts
    settings = ServeSettings(
        config_path=os.path.abspath(args.config), overrides=tuple(args.overrides), run_id=args.run_id,
        token_sha256=args.token_sha256 or (hash_token(token) if token else ""), store_text=args.store_text,
        lf_votes=args.lf_votes, max_body_bytes=args.max_body_bytes, alias_poll_s=args.alias_poll_s,
        max_explain_batch=args.max_explain_batch, request_read_timeout_s=args.request_read_timeout_s,
        lf_votes_max_texts=args.lf_votes_max_texts, started_at=utc_now(),
    )
    if not settings.token_sha256:
        print("warning: no token given (--token-file); write endpoints and explain will refuse every request",
              file=sys.stderr)
    # Files this server creates (the store, its WAL) are its owner's only.
    os.umask(0o077)
    # Workers are separate processes: they rebuild the app from this variable, and
    # the raw token never travels, only its hash.
    os.environ[SETTINGS_ENV] = settings.to_json()
    uvicorn.run("labeling.serve.app:app_from_env", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level="warning", timeout_graceful_shutdown=10, http="labeling.serve.app:ReadDeadlineProtocol",
                # A worker answers the supervisor's health check only once Python started it; on a busy
                # machine that takes longer than uvicorn's 5 s, and the supervisor kills and restarts it forever.
                timeout_worker_healthcheck=60)
    return 0


if __name__ == "__main__":
    sys.exit(main(reexec=True))
