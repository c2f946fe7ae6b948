"""Serve the project's end model over HTTP (uvicorn).

    LABELING_SERVE_TOKEN=... python -m pipelines.serve --config projects/youtube_spam/project.toml \
        [--run-id ID] [--host 127.0.0.1] [--port 8000] [--workers N] [--store-text]

The token for write endpoints comes from ``$LABELING_SERVE_TOKEN`` (or its sha256
from ``--token-sha256``); only the hash reaches the workers.
"""

from __future__ import annotations

import argparse
import os
import sys

import uvicorn

from labeling.serve.app import SETTINGS_ENV, ServeSettings, hash_token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="projects/youtube_spam/project.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--run-id", default="", help="serve this run (moves the alias); default: the alias, else the latest run")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--token-sha256", default="", help="sha256 hex of the bearer token (else $LABELING_SERVE_TOKEN)")
    parser.add_argument("--store-text", action="store_true", help="log predicted texts, not only their sha256")
    parser.add_argument("--lf-votes", choices=("background", "inline", "off"), default="background",
                        help="LF votes logged with each prediction: computed after answering (default), before, or not")
    parser.add_argument("--no-lf-votes", dest="lf_votes", action="store_const", const="off", help="same as --lf-votes off")
    parser.add_argument("--max-body-bytes", type=int, default=1_000_000)
    parser.add_argument("--alias-poll-s", type=float, default=1.0)
    args = parser.parse_args(argv)

    token = os.environ.get("LABELING_SERVE_TOKEN", "")
    settings = ServeSettings(
        config_path=os.path.abspath(args.config), overrides=tuple(args.overrides), run_id=args.run_id,
        token_sha256=args.token_sha256 or (hash_token(token) if token else ""), store_text=args.store_text,
        lf_votes=args.lf_votes, max_body_bytes=args.max_body_bytes, alias_poll_s=args.alias_poll_s,
    )
    if not settings.token_sha256:
        print("warning: no token set ($LABELING_SERVE_TOKEN); write endpoints will refuse every request", file=sys.stderr)
    # Workers are separate processes: they rebuild the app from this variable, and
    # the raw token never travels, only its hash.
    os.environ[SETTINGS_ENV] = settings.to_json()
    os.environ.pop("LABELING_SERVE_TOKEN", None)
    uvicorn.run("labeling.serve.app:app_from_env", factory=True, host=args.host, port=args.port, workers=args.workers,
                log_level="warning", timeout_graceful_shutdown=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
