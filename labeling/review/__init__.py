"""Review and refinement: rows and votes in, gold labels and better LFs out.

Enters: a run's rows, LF votes and probabilities; annotators' answers in Label Studio.
Leaves: gold labels in the project's store, and a ``RefineReport`` (each LF's accuracy on
gold, its wrong votes, likely label errors, suggested LFs). Inside: sampling strategies for
review, PII redaction, the Label Studio client, gold storage, refinement.
"""

import lazy_loader

# Names are imported from their module on first use: importing one stage never
# pulls in the others (or torch, FastAPI, Dask) before they are needed.
#: module -> the public names it gives this stage (``labeling`` exports them all too)
EXPORTS = {
    "label_studio": [
        "STRATEGIES", "Annotation", "LabelStudioReview", "PushResult", "ReviewError", "ReviewItem", "build_tasks",
        "labeling_config", "sample_scores", "select_for_review",
    ],
    "spans": ["SpanReview", "result_spans", "span_labeling_config", "span_result", "span_tasks"],
    "multilabel": ["MultiLabelRefineReport", "MultiLabelReview", "refine_multilabel", "multilabel_labeling_config", "pull_multilabel_review", "push_multilabel_review",
                   "result_set", "set_result", "set_tasks"],
    "gold": ["GoldStore", "ReviewTask", "all_gold", "review_gold"],
    "refinement": ["RefineReport", "format_lf_code", "lf_accuracy_table", "likely_label_errors", "refine", "suggest_keyword_lfs", "wilson_interval"],
    "redact": ["RedactionSettings", "redact_text", "redact_texts"],
    "jobs": ["dataset_candidates", "pull_review", "push_review", "refine_from_gold"],
}

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=EXPORTS)
