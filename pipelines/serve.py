"""Serve the project's end model over HTTP (uvicorn): ``labeling serve``.

    python -c "import secrets; print(secrets.token_urlsafe(32))" > serve.token && chmod 600 serve.token
    python -m pipelines.serve --config projects/youtube_spam/project.toml --token-file serve.token \
        [--run-id ID] [--host 127.0.0.1] [--port 8000] [--workers N] [--store-text]

The token for write endpoints (and ``explain``) is read from ``--token-file``
(``-``: stdin), else from ``$LABELING_SERVE_TOKEN``; or give only its sha256
with ``--token-sha256``. Weak tokens are refused. Only the hash reaches the
workers (``labeling/serve/run.py``). ``--help`` lists every option.
"""

from __future__ import annotations

import sys

from labeling.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    return cli_main(["serve", *(sys.argv[1:] if argv is None else argv)], reexec=True)


if __name__ == "__main__":
    sys.exit(main())
