"""MkDocs hook: the command-line and Python API reference pages, generated at build time.

``reference/cli.md``: every subcommand of ``labeling.cli.build_parser()`` with its help text
as argparse prints it, so the page cannot drift from the parser. ``reference/api.md``: one
mkdocstrings block per name in ``labeling.__all__``, grouped by the module that defines it
(each stage's ``EXPORTS``), rendered from the docstrings.
"""

from __future__ import annotations

import argparse
import importlib
import os

CLI_MARKER = "<!-- cli-reference -->"
API_MARKER = "<!-- api-reference -->"
BASICS = ("errors", "config", "matrix")  # top-level modules whose names labeling exports


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_markdown() -> str:
    from labeling.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal width: fix it for a stable page
    parser = build_parser()
    parser.prog = "python -m labeling"
    out = ["Every command is `.venv/bin/python -m labeling COMMAND` (or `labeling COMMAND` with the venv "
           "activated). Exit codes: 0 done, 1 a check said no (a refused promotion, a run that does not "
           "reproduce), 2 bad input (the message names it), 3 `monitor` says retrain.", ""]
    for name, sub in _subcommands(parser).items():
        sub.prog = f"python -m labeling {name}"
        out += [f"## `{name}`", "", sub.description or "", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def _modules() -> dict[str, list[str]]:
    import labeling

    modules: dict[str, list[str]] = {}
    for stage in labeling.STAGES:
        for module, names in importlib.import_module(f"labeling.{stage}").EXPORTS.items():
            modules[f"labeling.{stage}.{module}"] = list(names)
    covered = {n for names in modules.values() for n in names}
    for basic in BASICS:
        module = importlib.import_module(f"labeling.{basic}")
        names = [n for n in labeling.__all__ if n not in covered and hasattr(module, n)]
        modules[f"labeling.{basic}"] = names
        covered |= set(names)
    missing = sorted(set(labeling.__all__) - covered)
    if missing:
        raise RuntimeError(f"labeling.__all__ names with no module for the API reference: {missing}")
    return modules


def api_markdown() -> str:
    out = ["Everything below is importable from the package itself (`from labeling import NAME`); "
           "the headings name the module that defines it.", ""]
    for module, names in _modules().items():
        if not names:
            continue
        doc = (importlib.import_module(module).__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        out += [f"## `{module}`", "", doc, ""]
        loaded = importlib.import_module(module)
        for name in names:
            origin = getattr(getattr(loaded, name), "__module__", None) or module
            if origin.partition(".")[0] != "labeling":  # re-exported from another library (snorkel)
                out += [f"### `{name}`", "", f"`{origin}.{name}`, re-exported unchanged: see that library's "
                        "documentation.", ""]
            else:
                out += [f"::: {module}.{name}", ""]
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_markdown())
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, api_markdown())
    return markdown
