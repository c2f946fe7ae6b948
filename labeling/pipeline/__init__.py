"""Pipeline: a project config in, a recorded, evaluated run out.

Enters: a ``ProjectConfig`` (dataset, LF modules, model settings). Runs data -> LFs -> L
-> label model -> end model and evaluates each stage against simple baselines and slices.
Leaves: a ``RunResult``; a run record in the project's SQLite store (lineage, metrics,
checksums), artifacts, an HTML report, and registry aliases moved by the promotion gate.
"""

import lazy_loader

# Names are imported from their module on first use: importing one stage never
# pulls in the others (or torch, FastAPI, Dask) before they are needed.
#: module -> the public names it gives this stage (``labeling`` exports them all too)
EXPORTS = {
    "retrain": ["RunResult", "format_summary", "run_retrain"],
    "evaluate": ["EvalRow", "classification_metrics", "evaluation_table"],
    "store": ["RunRecord", "RunStore"],
    "registry": ["CANDIDATE", "CHAMPION", "GateDecision", "Registry", "gate", "promote_run"],
    "lineage": ["Reproduction", "history", "reproduce"],
    "slices": ["discover_slices", "slice_masks", "slice_metrics", "slicing_function"],
    "report": ["render_report", "write_report"],
    "schema_change": ["SchemaPlan", "apply_plan", "format_plan", "plan_change", "show_schema"],
    "predictions": ["TestPredictions", "load_test_predictions", "save_test_predictions"],
}

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=EXPORTS)
