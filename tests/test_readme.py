"""The command examples of README.md and of every docs/ page, run as a new user runs them:
in a fresh copy of the repository, with no environment variable set beyond the data folder
(no LABELING_SPACY_MODEL, no wrapper script), ``../shared/data`` beside the copy as in a
checkout. Each command is taken from the pages' ```bash blocks, so the docs and this test
cannot drift apart: ``test_every_doc_command_is_run_by_a_test`` fails on a command that
no test below runs (or claims, naming the test or CI step that runs it).

The fast tests run the pages' Python snippets, ``init`` and the cheap commands; the slow
ones run retrain, the registry and lineage commands, the server with curl, and review
against a real Label Studio (a few minutes on a loaded 2-core machine)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
TEXT = {page: page.read_text(encoding="utf-8") for page in PAGES}
CONFIG = "--config projects/youtube_spam/project.toml"


def _blocks(kind: str) -> list[tuple[Path, str]]:
    return [(page, block) for page, text in TEXT.items()
            for block in re.findall(rf"```{kind}\n(.*?)```", text, flags=re.DOTALL)]


def _strip_comment(line: str) -> str:
    """The command without its trailing ``  # comment`` (a ``#`` inside quotes stays)."""
    quote = ""
    for i, ch in enumerate(line):
        if ch in "'\"" and (not quote or quote == ch):
            quote = "" if quote else ch
        elif ch == "#" and not quote and (i == 0 or line[i - 1] == " "):
            return line[:i].rstrip()
    return line.rstrip()


def doc_commands() -> list[str]:
    """Every command line of the pages' bash blocks, once, in page order (comments dropped)."""
    seen: dict[str, None] = {}
    for _, block in _blocks("bash"):
        for line in block.splitlines():
            command = _strip_comment(line.strip())
            if command:
                seen.setdefault(command)
    return list(seen)


def matching(pattern: str) -> list[str]:
    found = [c for c in doc_commands() if re.search(pattern, c)]
    assert found, f"no command in the docs matches {pattern!r}"
    return found


# What runs each command: a pattern -> the test (or CI step) that runs it as written.
CLAIMS = {
    r"labeling init ": "test_init_and_cheap_doc_commands",
    r"labeling (verify|lfs|runs) ": "test_init_and_cheap_doc_commands",
    r"^\.venv/bin/python benchmarks/": "test_benchmark_commands_parse (arguments and --help only: each runs minutes)",
    r"labeling (retrain|promote|history|reproduce|rollback|report|monitor|store) |^C=": "test_pipeline_and_registry_commands",
    r"^\./quickstart\.sh$": "test_pipeline_and_registry_commands (its command, pipelines.retrain; setup is CI's)",
    r"^\.venv/bin/python -m pytest$": "the suite this test is part of (.ci/run)",
    r"token_urlsafe|labeling serve |^curl ": "test_serve_and_curl_commands",
    r"labeling review (connect|predict-all) ": "tests/review/test_ls_connect.py (a real server and Label Studio)",
    r"labeling (review (?!connect|predict-all)|refine )": "test_review_commands",
    r"scripts/label_studio\.sh (install|start|stop)": ".ci/run and the label_studio fixture (tests/conftest.py)",
    r"labeling schema ": "tests/pipeline/test_schema_change.py (every schema command, on a small project)",
    r"pipelines\.close_loop": "tests/test_close_loop.py (run_loop, the same main)",
    r"-m mkdocs build --strict": "tests/test_docs_site.py",
}


def test_every_doc_command_is_run_by_a_test():
    unclaimed = [c for c in doc_commands() if not any(re.search(p, c) for p in CLAIMS)]
    assert not unclaimed, f"doc commands no test runs: {unclaimed}"
    # every command naming a project says which (--config): none silently runs the example
    for command in doc_commands():
        if re.search(r"labeling (retrain|lfs|runs|verify|review|refine|promote|serve|monitor|report|history|"
                     r"reproduce|rollback|store) ", command):
            assert "--config" in command or "$C" in command, command


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, data_dir):
    """(repository copy, environment): tracked and untracked-not-ignored files only,
    ``.venv`` pointing at the test's interpreter, ``../shared/data`` the data folder, the
    environment stripped to what any shell has plus the data folder."""
    top = tmp_path_factory.mktemp("fresh")
    root = top / "repo"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    (root / ".venv").symlink_to(Path(sys.prefix))
    (top / "shared").mkdir()
    (top / "shared" / "data").symlink_to(data_dir)
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    env["LABELING_DATA_DIR"] = str(data_dir)
    return root, env


def run(fresh, command: str, *, timeout: int = 600, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    root, env = fresh
    proc = subprocess.run(command, shell=True, cwd=root, env={**env, **(extra_env or {})}, capture_output=True,
                          text=True, timeout=timeout)
    assert "Traceback" not in proc.stderr, f"{command}\n{proc.stderr[-3000:]}"
    return proc


def run_ok(fresh, command: str, **kwargs) -> subprocess.CompletedProcess:
    proc = run(fresh, command, **kwargs)
    assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def _python_block(needle: str) -> str:
    found = [block for _, block in _blocks("python") if needle in block]
    assert found, f"no Python example with {needle!r}"
    return found[0]


# each Python example of the pages, by a phrase only it has -> the test that runs it
SNIPPETS = {"apply_lfs(": "test_python_snippets_run_as_written",
            "spacy_labeling_function": "test_python_snippets_run_as_written",
            'wb.try_lf(keyword_lf("kw_prize"': "test_init_and_cheap_doc_commands",
            "similar_to([": "test_pipeline_and_registry_commands",
            "span_labeling_function": "test_span_lf_snippet_runs_as_written"}


def test_every_python_example_is_run_by_a_test():
    blocks = _blocks("python")
    assert all(sum(needle in block for needle in SNIPPETS) == 1 for _, block in blocks), \
        [page.name for page, block in blocks if sum(needle in block for needle in SNIPPETS) != 1]
    assert len(blocks) == len(SNIPPETS)


def test_python_snippets_run_as_written(fresh):
    root, _ = fresh
    (root / "snippet_apply.py").write_text(_python_block("apply_lfs("), encoding="utf-8")
    # the LF-writing snippet, then its LFs called on a row: the spaCy one loads the pipeline
    # the library resolves (no LABELING_SPACY_MODEL in this environment)
    (root / "snippet_lfs.py").write_text(_python_block("spacy_labeling_function")
                                         + "\nfrom types import SimpleNamespace\n"
                                         "print(lf_check_out(SimpleNamespace(text='Check out my channel')),"
                                         " lf_short_with_person(SimpleNamespace(text='Barack Obama sings well')))\n",
                                         encoding="utf-8")
    out = run_ok(fresh, ".venv/bin/python snippet_apply.py")
    assert out.stdout.strip().splitlines()[-1] == "[[1, -1, -1], [-1, 0, -1], [1, -1, 1]]"
    assert run_ok(fresh, ".venv/bin/python snippet_lfs.py").stdout.split() == ["1", "0"]


def test_span_lf_snippet_runs_as_written(fresh):
    root, _ = fresh
    (root / "snippet_spans.py").write_text(_python_block("span_labeling_function")
                                           + "\nfrom types import SimpleNamespace\n"
                                           "row = SimpleNamespace(text='On Friday I paid $12.50 for a Galaxy S9.')\n"
                                           "print(money(row), products(row), weekdays(row))\n", encoding="utf-8")
    out = run_ok(fresh, ".venv/bin/python snippet_spans.py")
    assert out.stdout.strip() == "[(17, 23, 'MONEY')] [(30, 39, 'PRODUCT')] [(3, 9, 'DATE')]"


def test_init_and_cheap_doc_commands(fresh):
    for command in matching(r"labeling init "):
        out = run_ok(fresh, command, timeout=300)
        assert "starter LFs" in out.stdout
    for command in matching(r"labeling (verify|lfs|runs) "):
        run_ok(fresh, command, timeout=300)
    # README's workbench snippet, on the project init just wrote
    root, _ = fresh
    (root / "snippet_workbench.py").write_text(_python_block("wb.try_lf(keyword_lf(\"kw_prize\""), encoding="utf-8")
    run_ok(fresh, ".venv/bin/python snippet_workbench.py", timeout=300)


def test_benchmark_commands_parse(fresh):
    for command in matching(r"^\.venv/bin/python benchmarks/"):
        script = command.split()[1]
        run_ok(fresh, f".venv/bin/python {script} --help", timeout=120)


@pytest.mark.slow
def test_pipeline_and_registry_commands(fresh):
    # quickstart.sh = scripts/setup.sh (pip; skipped here: the venv exists) + this command
    assert "exec .venv/bin/python -m pipelines.retrain" in (REPO / "quickstart.sh").read_text()
    first = run_ok(fresh, ".venv/bin/python -m pipelines.retrain --json")
    run_id = json.loads(first.stdout)["run_id"]
    for command in matching(r"labeling init "):  # the projects the retrain examples name
        if not (fresh[0] / command.split()[4]).exists():
            run_ok(fresh, command)
    for command in matching(r"labeling (retrain|promote|history|reproduce|rollback|report|monitor|store) "):
        command = command.replace("$C", CONFIG).replace("[RUN_ID]", run_id).replace("RUN_ID", run_id)
        out = run(fresh, command)
        # rollback with no earlier champion, and a promotion the gate refuses, are clear refusals, not crashes
        allowed = (0, 2) if " rollback " in command else (0, 1) if " promote " in command else (0,)
        assert out.returncode in allowed, f"{command}\n{out.stderr[-3000:]}"
    assert "not enough traffic" in run(fresh, f".venv/bin/python -m labeling monitor {CONFIG}").stdout
    # last, as it lists a new LF module in the example project's file (of this copy)
    (fresh[0] / "snippet_workbench_save.py").write_text(_python_block("similar_to(["), encoding="utf-8")
    run_ok(fresh, ".venv/bin/python snippet_workbench_save.py")
    assert "labeling_functions.my_new_lfs" in (fresh[0] / "projects/youtube_spam/project.toml").read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_serve_and_curl_commands(fresh):
    from labeling.serve.run import wait_until_ready

    root, env = fresh
    for serve in matching(r"labeling serve "):
        config = serve.split("--config ")[1].split()[0]
        if not list((root / config).parent.glob("runs/*.db")) and "youtube_spam" not in config:
            for command in matching(r"labeling init ") + matching(r"labeling retrain --config " + re.escape(config)):
                if " init " not in command or command.split()[4] in config:
                    run(fresh, command)
        elif "youtube_spam" in config:
            run_ok(fresh, ".venv/bin/python -m pipelines.retrain")
        page = next(p for p, block in _blocks("bash") if serve in block)
        run_ok(fresh, matching(r"token_urlsafe")[0])
        port = _free_port()  # the docs' port 8000 may be taken on a shared machine
        server = subprocess.Popen(f"{serve} --port {port}", shell=True, cwd=root, env=env, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_until_ready(f"http://127.0.0.1:{port}", 2 if "--workers 2" in serve else 1, timeout=240,
                                    alive=lambda: server.poll() is None), server.poll()
            curls = [c for _, block in _blocks("bash") if serve in block for c in matching(r"^curl ")
                     if c in TEXT[page]]
            for curl in curls:
                out = run_ok(fresh, curl.replace("localhost:8000", f"127.0.0.1:{port}") + " --fail-with-body")
                assert json.loads(out.stdout), curl
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)


@pytest.mark.slow
def test_review_commands(fresh, label_studio):
    url, key = label_studio
    ls_env = {"LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": key}
    root, _ = fresh
    for command in matching(r"labeling (review (?!connect|predict-all)|refine )"):
        config = command.split("--config ")[1].split()[0]
        if not (root / config).exists():
            run_ok(fresh, next(c for c in matching(r"labeling init ") if c.split()[4] in config))
        # a Label Studio project of its own: CI's server is shared with the other review tests
        title = f"docs example {os.getpid()} {config.split('/')[1]}"
        out = run(fresh, f"{command} --set review.title='\"{title}\"'", extra_env=ls_env)
        assert out.returncode == 0, f"{command}\n{out.stderr[-3000:]}"
