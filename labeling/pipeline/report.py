"""An HTML report per run, written beside the store (``reports/<run_id>.html``).

One self-contained file (no scripts, no network): lineage, evaluation against
the baselines, the LF table (coverage, overlap, conflict, dev accuracy, speed),
plots as inline SVG (LF coverage vs accuracy, label model vs baselines,
confusion matrix, calibration), per-slice metrics, drift of served traffic,
and the data verification findings. Every value from data is HTML-escaped;
matplotlib (no pyplot, no display) writes the SVG with text as text and math parsing
off, so an LF named ``$x$`` is printed, not typeset.

``render_report`` is a pure function of the run's record and documents;
``write_report`` reads the store and writes the file.
"""

from __future__ import annotations

import functools
import html
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .predictions import load_test_predictions

SECTIONS = (
    ("lineage", "Lineage"),
    ("evaluation", "Label model vs baselines"),
    ("lfs", "Labeling functions"),
    ("confusion", "Confusion matrix"),
    ("calibration", "Calibration"),
    ("slices", "Slices"),
    ("drift", "Drift of served traffic"),
    ("verification", "Data verification"),
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem;color:#222;max-width:72rem}
h1{font-size:1.5rem}h2{font-size:1.2rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.2rem .5rem;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.warn{color:#9a5b00}.err{color:#b00020}.ok{color:#1b7f3a}
nav a{margin-right:1rem}figure{margin:.5rem 0}svg{max-width:100%;height:auto}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _num(value, fmt: str = "{:.3f}") -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return fmt.format(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence], *, left: int = 1, cls: str = "") -> str:
    head = "".join(f'<th class="l">{_e(h)}</th>' if i < left else f"<th>{_e(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="l">{_e(c)}</td>' if i < left else f"<td>{_e(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table class="{_e(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_RC = {"svg.fonttype": "none", "svg.hashsalt": "labeling-report", "text.parse_math": False, "font.size": 9}


def _svg(fig) -> str:
    """A figure as an inline <svg> element (no XML prolog)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _plot(draw):
    """Run a plot function under the report's matplotlib settings (no global state,
    no pyplot: figures are plain ``Figure`` objects rendered to SVG)."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs) -> str:
        import matplotlib

        with matplotlib.rc_context(_RC):
            return draw(*args, **kwargs)

    return wrapper


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


@_plot
def plot_lf_coverage_accuracy(lf_rows: Sequence[dict]) -> str:
    fig, ax = _figure(6.5, 0.25 * len(lf_rows) + 1.2)
    names = [r["lf"] for r in lf_rows]
    y = np.arange(len(names))
    # A missing value (no dev votes, an LF without stats) is drawn as an empty bar.
    ax.barh(y - 0.2, [r["coverage"] or 0.0 for r in lf_rows], height=0.4, label="coverage (train)", color="#4c78a8")
    ax.barh(y + 0.2, [r["accuracy"] or 0.0 for r in lf_rows], height=0.4, label="accuracy (dev)", color="#f58518")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.legend(loc="lower right")
    ax.set_title("LF coverage and accuracy")
    return _svg(fig)


@_plot
def plot_methods(metrics: Sequence[dict]) -> str:
    rows = [m for m in metrics if m["kind"] != "lf" and m["accuracy"] is not None]  # not computed: in the table
    fig, ax = _figure(6.5, 0.3 * len(rows) + 1.2)
    colors = {"baseline": "#bab0ac", "label_model": "#4c78a8", "end_model": "#54a24b"}
    y = np.arange(len(rows))
    ax.barh(y, [m["accuracy"] for m in rows], color=[colors.get(m["kind"], "#999") for m in rows])
    for i, m in enumerate(rows):
        ax.text(m["accuracy"] + 0.01, i, f"{m['accuracy']:.3f}", va="center")
    ax.set_yticks(y, [m["name"] for m in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("accuracy on the gold test split")
    ax.set_title("Label model and end model vs baselines")
    return _svg(fig)


def confusion_matrix(y_true, y_pred, k: int) -> np.ndarray:
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


@_plot
def plot_confusion(matrix: np.ndarray, classes: Sequence[str]) -> str:
    fig, ax = _figure(3.2 + 0.3 * len(classes), 2.8 + 0.3 * len(classes))
    # Vector cells (pcolormesh), not a raster image, so the SVG stays crisp.
    ax.pcolormesh(np.arange(len(classes) + 1) - 0.5, np.arange(len(classes) + 1) - 0.5, matrix, cmap="Blues")
    ax.set_aspect("equal")
    ax.invert_yaxis()
    for (i, j), n in np.ndenumerate(matrix):
        ax.text(j, i, str(n), ha="center", va="center", color="white" if n > matrix.max() / 2 else "black")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("End model, test split")
    return _svg(fig)


def calibration_bins(probs, y_true, n_bins: int = 10) -> list[dict]:
    """Reliability table on the top-class confidence: per bin, rows, mean confidence, accuracy."""
    probs = np.asarray(probs, dtype=float)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(y_true)
    edges = np.linspace(0, 1, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        mask = which == b
        if mask.any():
            out.append({"bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}", "n": int(mask.sum()),
                        "confidence": float(confidence[mask].mean()), "accuracy": float(correct[mask].mean())})
    return out


def expected_calibration_error(bins: Sequence[dict]) -> float:
    total = sum(b["n"] for b in bins)
    return sum(b["n"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / total if total else float("nan")


@_plot
def plot_calibration(curves: dict[str, list[dict]]) -> str:
    fig, ax = _figure(4.2, 3.6)
    ax.plot([0, 1], [0, 1], linestyle="--", color="#999", label="perfect")
    for (name, bins), color in zip(curves.items(), ("#54a24b", "#4c78a8")):
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", color=color, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mean top-class probability")
    ax.set_ylabel("accuracy")
    ax.legend(loc="lower right")
    ax.set_title("Reliability on the test split")
    return _svg(fig)


def _lineage_section(run: dict, history_row: dict | None) -> str:
    rows = [
        ("run", run["id"]), ("project", run["project"]), ("created", run["created_at"]), ("seed", run["seed"]),
        ("dataset snapshot", run["dataset_version"]), ("dataset source", run["dataset_source"]),
        ("split sizes", ", ".join(f"{k} {v}" for k, v in run["split_sizes"].items())),
        ("LF set version", run["lf_set_version"]),
        *((f"label matrix {split}", digest) for split, digest in run["matrix_hashes"].items()),
        ("label model", run["label_model"]["type"]), ("end model", run["end_model"]["type"]),
    ]
    if history_row is not None:
        rows.append(("aliases", ", ".join(history_row["aliases"]) or "none"))
        rows.append(("changed since previous run", ", ".join(history_row["changes"]) or "nothing"))
        if history_row.get("promotion"):
            p = history_row["promotion"]
            verdict = "promoted" if p["promoted"] else "passes, not promoted" if p["passed"] else "not promoted"
            rows.append(("promotion gate", f"{verdict}: {p['reason']}"))
    return _table(("what", "value"), rows, left=2)


def _end_model_section(end_model: dict) -> str:
    """The end model's dev-only selection (every option's dev score) and its leakage-free
    test metrics; empty for runs recorded without them."""
    parts = []
    selection = end_model.get("selection")
    if selection and selection.get("fallback"):  # dev labels too few or of one class: no stage ran
        parts.append(f"<p>End model not chosen on dev: {_e(selection['rule'])}.</p>")
    elif selection:
        parts.append(f"<p>End model chosen on dev ({_e(selection['metric'])}, dev score "
                     f"{_num(selection['dev_score'])}): {_e(selection['rule'])}.</p>")
        parts.append(_table(("stage", "option", "dev score", "one SE of the gap to the best", "chosen"),
                            [(st["stage"], c["name"], _num(c["dev_score"]),
                              _num(c.get("tolerance", st.get("tolerance"))),
                              "yes" if c["name"] == st["chosen"] else "")
                             for st in selection["stages"] for c in st["candidates"]], left=2))
    for key, chosen in (end_model.get("baselines") or {}).items():
        parts.append(f"<p>The {_e(key)} baseline: {_e(chosen['note'])}.</p>")
        parts.append(_table(("option", f"cross-validated {chosen['metric']}", "one SE of the gap to the best", "chosen"),
                            [(c["name"], _num(c["cv_score"]), _num(c["tolerance"]),
                              "yes" if c["name"] == chosen["chosen"] else "") for c in chosen["candidates"]],
                            cls=f"baseline-{key}"))
    parts.append(_class_recall_section(end_model.get("class_recall")))
    leakage = end_model.get("leakage")
    if leakage and leakage.get("metrics"):
        parts.append(f"<p>Test rows with no train/dev duplicate: {leakage['unleaked_rows']} of "
                     f"{leakage['test_rows']} ({_e(leakage['excluded'])}).</p>")
        parts.append(_table(("method", "accuracy (those rows)", "macro-F1 (those rows)"),
                            [(name, _num(m["accuracy"]), _num(m["macro_f1"])) for name, m in leakage["metrics"].items()],
                            left=1))
    return "".join(parts)


def _class_recall_section(recall: dict | None) -> str:
    """Per-class recall on dev of the served model and the label model, with a warning for
    each class the label model predicts and the served model never does; empty for runs
    recorded without it."""
    if not recall:
        return ""
    models = (recall["served"], recall["reference"])
    parts = [f'<p class="warn">Warning: {_e(w)}.</p>' for w in recall["warnings"]]
    parts.append(f"<p>Per-class recall on the {recall['rows']} labelled dev rows (predicted: rows predicted as the "
                 f"class; the {_e(recall['reference'])} counts rows some LF votes on).</p>")
    parts.append(_table(("class", "dev rows", *(f"recall: {m}" for m in models), *(f"predicted: {m}" for m in models)),
                        [(cls, row["support"], *(_num(row["recall"][m]) for m in models),
                          *(row["predicted"][m] for m in models)) for cls, row in recall["per_class"].items()],
                        cls="class-recall"))
    return "".join(parts)


def _lf_rows(run: dict) -> list[dict]:
    stats = {(s["split"], s["lf"]): s for s in run.get("lf_stats", [])}
    out = []
    for lf in run["lfs"]:
        train, dev = stats.get(("train", lf["name"]), {}), stats.get(("dev", lf["name"]), {})
        out.append({"lf": lf["name"], "version": lf["version"], "coverage": train.get("coverage"),
                    "overlaps": train.get("overlaps"), "conflicts": train.get("conflicts"),
                    "accuracy": dev.get("accuracy"), "seconds": train.get("seconds")})
    return out


def _drift_section(monitor: dict | None) -> str:
    if monitor is None:
        return "<p>No served traffic for this run yet: serve it and run <code>python -m labeling monitor</code>.</p>"
    verdict = ("retrain recommended" if monitor["retrain"] else "no retrain needed" if monitor["checks"] else
               f"not enough traffic ({monitor['n_predictions']} of {monitor.get('min_predictions', '?')} "
               "predictions needed)")
    parts = [f'<p class="{"warn" if monitor["retrain"] else "ok"}">{_e(monitor["n_predictions"])} served predictions: '
             f"<strong>{_e(verdict)}</strong></p>"]
    if monitor["reasons"]:
        parts.append("<ul>" + "".join(f"<li>{_e(r)}</li>" for r in monitor["reasons"]) + "</ul>")
    checks = [(c["name"], _num(c["value"]), c.get("effect", ""), _num(c.get("p_value"), "{:.2g}"),
               _num(c.get("p_adjusted"), "{:.2g}"), _num(c.get("detectable")), "drift" if c["drifted"] else "ok",
               c["detail"]) for c in monitor["checks"]]
    parts.append(_table(("check", "effect", "effect measure", "p", "p (Holm)", "detectable shift", "verdict", "detail"),
                        checks))
    parts += [f"<p>{_e(n)}</p>" for n in monitor.get("notes", ())]
    return "".join(parts)


def _verification_section(report: dict | None) -> str:
    if report is None:
        return "<p>This run was recorded before ingestion checks existed.</p>"
    names = list(next(iter(report["class_counts"].values()), {}).keys())
    counts = [(split, *(per_class.get(name) for name in names)) for split, per_class in report["class_counts"].items()]
    parts = [f"<p>{len(report['findings'])} finding(s) on {_e(report['source'])}.</p>",
             _table(("split", *names), counts)]
    findings = [(f["severity"], f["code"], f["split"], f["count"], f["message"], "; ".join(f["examples"]))
                for f in report["findings"]]
    parts.append(_table(("severity", "code", "split", "rows", "message", "examples"), findings, left=3)
                 if findings else '<p class="ok">No problems found.</p>')
    return "".join(parts)


def _test_predictions(run: dict, documents: dict) -> dict | None:
    """The run's test predictions: its checksummed artifact, or the JSON document
    of runs recorded before there was one."""
    recorded = load_test_predictions(run)
    if recorded is not None:
        return {"y": recorded.y, "end_model": recorded.end_model, "label_model": recorded.label_model}
    document = documents.get("test_predictions")
    return document if document and "y" in document else None


MULTILABEL_COLUMNS = ("micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss")


def _multilabel_models(run: dict) -> str:
    """How a multi-label run chose its label model and end model on dev, and the per-class thresholds."""
    lm, em = run["label_model"], run["end_model"]
    sel, ems = lm.get("selection") or {}, em.get("selection") or {}
    parts = [f"<p>Label model chosen on dev ({_e(sel.get('metric'))}): {_e(sel.get('rule'))}.</p>",
             _table(("candidate", "dev score", "fit seconds"),
                    [(c["name"], _num(c["dev_score"]), _num(c.get("fit_seconds"), "{:.2f}"))
                     for c in sel.get("candidates", [])]),
             f"<p>End model: one-vs-rest {_e(ems.get('chosen'))} (dev {_e(ems.get('metric'))}: "
             + _e(", ".join(f"{f} {v:.3f}" for f, v in (ems.get("families") or {}).items()) or "one family") + ").</p>",
             _table(("class", "threshold: label model", "threshold: end model"),
                    [(c, _num((lm.get("thresholds") or {}).get(c)), _num((em.get("thresholds") or {}).get(c)))
                     for c in run["config"]["classes"]], cls="multilabel-thresholds")]
    return "".join(parts)


def _multilabel_sections(run: dict, documents: dict) -> dict[str, str]:
    """A multi-label run's evaluation (the label-set metrics of every method), its per-class
    test table (end model and chosen label model) in the confusion matrix's place, and its
    LFs per class (yes/no coverage on train, yes precision and no accuracy on dev)."""
    rows = documents.get("multilabel_metrics") or []
    per_class = {m["name"]: m.get("per_class") or {} for m in run["metrics"]}
    chosen = next((m["name"] for m in rows if m["name"].startswith("label model (")), None)
    out = {"evaluation": _table(("method", "kind", *MULTILABEL_COLUMNS, "train rows", "notes"),
                                [(m["name"], m["kind"], *(_num(m[c]) for c in MULTILABEL_COLUMNS),
                                  "" if m.get("train_rows") is None else m["train_rows"], m.get("notes") or "")
                                 for m in rows], left=2) + _multilabel_models(run)}
    shown = [name for name in ("end model", chosen) if name and per_class.get(name)]
    classes = run["config"]["classes"]
    out["confusion"] = ("<p>A multi-label run has no confusion matrix: each class on its own, on test "
                        "(precision, recall, F1; support = test rows carrying the class).</p>" + _table(
                            ("class", "support", *(f"{w}: {name}" for name in shown for w in ("precision", "recall", "F1"))),
                            [(c, per_class[shown[0]][c]["support"] if shown else "",
                              *(_num(per_class[name][c][w]) for name in shown for w in ("precision", "recall", "f1")))
                             for c in classes], cls="multilabel-per-class"))
    lf_rows = documents.get("multilabel_lf_summary") or []
    out["lfs"] = _table(("LF", "class", "yes coverage (train)", "no coverage (train)", "yes precision (dev)",
                         "no accuracy (dev)"),
                        [(r["lf"], r["class"], _num(r.get("yes_coverage")), _num(r.get("no_coverage")),
                          _num(r.get("dev_yes_precision")), _num(r.get("dev_no_accuracy"))) for r in lf_rows],
                        left=2, cls="lf-table") if lf_rows else "<p>No per-class LF summary recorded for this run.</p>"
    out["calibration"] = "<p>Not drawn for a multi-label run: its thresholds are per class, chosen on dev.</p>"
    return out
SPAN_SECTIONS = (
    ("lineage", "Lineage"),
    ("evaluation", "Entity-level evaluation on test (exact match)"),
    ("lfs", "Span LFs per entity type"),
    ("gold", "Gold spans read from the store"),
    ("drift", "Served traffic vs dev"),
)


def _span_body(run: dict, documents: dict) -> dict[str, str]:
    """A spans run's sections: entity precision/recall/F1 per method (micro and per type), the
    per-type LF analysis and the gold spans the run read (``spans_retrain``)."""
    order = {"end_model": 0, "label_model": 1, "lf": 3}
    metrics = sorted(run["metrics"], key=lambda m: (order.get(m["kind"], 2), m["name"]))
    types = run["config"]["classes"]
    scores = ("entity_precision", "entity_recall", "entity_f1")
    evaluation = _table(("method", "kind", "precision", "recall", "F1", "notes"),
                        [(m["name"], m["kind"], *(_num(m["per_class"].get(k)) for k in scores), m["notes"])
                         for m in metrics], left=2, cls="span-evaluation")
    evaluation += _table(("method", *(f"{t} F1" for t in types)),
                         [(m["name"], *(_num((m["per_class"].get(t) or {}).get("entity_f1")) for t in types))
                          for m in metrics], cls="span-per-type")
    analysis = documents.get("span_lf_analysis") or []
    columns = [c for c in ("coverage", "overlaps", "conflicts", "precision", "recall") if analysis and c in analysis[0]]
    lfs = _table(("split", "LF", "type", *columns), [(a.get("split"), a.get("lf"), a.get("type"),
                                                      *(_num(a.get(c)) for c in columns)) for a in analysis], left=3,
                 cls="lf-table")
    gold = run["end_model"].get("gold") or {}
    gold_rows = [(k, v if not isinstance(v, list) else ", ".join(map(str, v))) for k, v in gold.items()]
    return {"evaluation": evaluation, "lfs": lfs,
            "gold": _table(("what", "value"), gold_rows, left=2) if gold_rows else
            "<p>This run was recorded before retrain read gold spans.</p>"}


def render_report(run: dict, documents: dict, *, monitor: dict | None = None, history_row: dict | None = None) -> str:
    """The report as one HTML string (pure); a spans run (``documents["task"] == "spans"``)
    gets its own sections (``SPAN_SECTIONS``)."""
    if documents.get("task") == "spans":
        return _page(run, SPAN_SECTIONS, {"lineage": _lineage_section(run, history_row), **_span_body(run, documents),
                                          "drift": _drift_section(monitor)})
    classes = run["config"]["classes"]
    order = {"end_model": 0, "label_model": 1, "baseline": 2, "lf": 3}
    metrics = sorted(run["metrics"], key=lambda m: (order.get(m["kind"], 4), m["name"]))
    lf_rows = _lf_rows(run)
    body: dict[str, str] = {"lineage": _lineage_section(run, history_row)}
    metric_rows = [(m["name"], m["kind"], _num(m["accuracy"]), _num(m["macro_f1"]),
                    "" if m["train_rows"] is None else m["train_rows"], _num(m["coverage"]), m["notes"])
                   for m in metrics]
    multi_label = (documents.get("task") or {}).get("task") == "multi_label"
    body["evaluation"] = "" if multi_label else plot_methods(metrics) + _table(
        ("method", "kind", "accuracy", "macro-F1", "train rows", "train coverage", "notes"), metric_rows, left=2
    ) + _end_model_section(run["end_model"])
    body["lfs"] = plot_lf_coverage_accuracy(lf_rows) + _table(
        ("LF", "version", "coverage", "overlap", "conflict", "dev accuracy", "seconds"),
        [(r["lf"], r["version"], _num(r["coverage"]), _num(r["overlaps"]), _num(r["conflicts"]),
          _num(r["accuracy"]), _num(r["seconds"], "{:.4f}")) for r in lf_rows], left=2, cls="lf-table")
    preds = _test_predictions(run, documents)
    if preds:
        y = np.asarray(preds["y"])
        end_probs = np.asarray(preds["end_model"])
        matrix = confusion_matrix(y, end_probs.argmax(axis=1), len(classes))
        body["confusion"] = plot_confusion(matrix, classes) + _table(
            ("gold \\ predicted", *classes), [(c, *row) for c, row in zip(classes, matrix.tolist())])
        curves = {"end model": calibration_bins(end_probs, y), "label model": calibration_bins(preds["label_model"], y)}
        ece = ", ".join(f"{name} {expected_calibration_error(bins):.3f}" for name, bins in curves.items())
        body["calibration"] = plot_calibration(curves) + f"<p>Expected calibration error: {_e(ece)}</p>" + _table(
            ("model", "confidence bin", "rows", "mean confidence", "accuracy"),
            [(name, b["bin"], b["n"], _num(b["confidence"]), _num(b["accuracy"]))
             for name, bins in curves.items() for b in bins], left=2)
    else:
        body["confusion"] = body["calibration"] = "<p>No test predictions recorded for this run.</p>"
    slices = documents.get("slices")
    body["slices"] = _table(("slice", "method", "rows", "share", "accuracy", "macro-F1"),
                            [(s["slice"], s["method"], s["n"], _num(s["share"]), _num(s["accuracy"]), _num(s["macro_f1"]))
                             for s in slices], left=2, cls="slice-table") if slices else (
        "<p>No slicing functions configured (<code>[slices] modules</code>).</p>")
    if multi_label:
        body.update(_multilabel_sections(run, documents))
    body["drift"] = _drift_section(monitor)
    body["verification"] = _verification_section(documents.get("verification"))
    return _page(run, SECTIONS, body)


def _page(run: dict, sections_of: Sequence[tuple[str, str]], body: dict[str, str]) -> str:
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title in sections_of)
    sections = "".join(f'<section id="{key}"><h2>{_e(title)}</h2>{body[key]}</section>' for key, title in sections_of)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'">'
            f"<title>Run {_e(run['id'])} — {_e(run['project'])}</title><style>{_CSS}</style></head>"
            f"<body><h1>Run {_e(run['id'])} — {_e(run['project'])}</h1><nav>{nav}</nav>{sections}</body></html>")


def report_path(store_path: str | Path, run_id: str, folder: str | Path | None = None) -> Path:
    """``reports/<run_id>.html`` in ``folder``, by default the store file's folder."""
    return Path(folder if folder is not None else Path(store_path).parent) / "reports" / f"{run_id}.html"


def write_report(store_path: str | Path, run_id: str | None = None, *, monitor_settings=None,
                 folder: str | Path | None = None) -> Path:
    """Render ``run_id`` (default the latest run) to ``reports/<run_id>.html`` beside the store
    (in ``folder``: there; a PostgreSQL store needs one, ``ProjectConfig.store_folder()``)."""
    from ..errors import MonitorError, StoreError
    from .lineage import history
    from .monitor import check_drift
    from .store import RunStore, write_private_text

    with RunStore(store_path) as store:
        if run_id is None:
            runs = store.list_runs()
            if not runs:
                raise StoreError(f"no runs in {store_path}")
            run_id = runs[-1]["id"]
        run = store.get_run(run_id)
        run["lf_stats"] = store.lf_stats(run_id)
        documents = store.get_documents(run_id)
    history_row = next((r for r in history(store_path) if r["run_id"] == run_id), None)
    monitor = None
    if monitor_settings is not None:  # a spans run's drift: its entities against its NER's on dev
        try:
            report = check_drift(store_path, monitor_settings, run_id)
            monitor = report.to_dict() if report.n_predictions else None
        except MonitorError:
            monitor = None
    path = report_path(store_path, run_id, folder)
    partial = path.with_suffix(".html.partial")
    # Owner-only: a report shows served traffic and the project's data.
    write_private_text(partial, render_report(run, documents, monitor=monitor, history_row=history_row))
    partial.replace(path)
    return path
