"""Multi-label: a row carries a set of classes (``project.task = "multi_label"``).

Enters: LFs returning a class, a list of classes, ``NOT(c)`` or ABSTAIN (applied by the
``lf`` stage as ints), and gold label sets (a list column, or a string split by
``dataset.label_separator``).
Leaves: the (n, m, k) vote tensor (1 yes, 0 no, -1 abstain), label models and a
one-vs-rest or sigmoid-MLP end model giving per-class probabilities and label sets (per-class
thresholds chosen on dev), multi-label metrics, and the retrain runner's ``RunResult``.
"""

import lazy_loader

#: module -> the public names it gives this stage (``labeling`` exports them all too)
EXPORTS = {
    "votes": ["NOT", "MultiLabelLF", "decode_votes", "encode_vote", "multilabel_lfs", "votes_summary"],
    "gold": ["load_multilabel_dataset", "parse_gold"],
    "label_models": ["ExclusiveLabelModel", "MultiLabelMajorityVote", "PerClassLabelModel", "choose_thresholds"],
    "end_models": ["OneVsRestTextClassifier", "SigmoidMLPTextClassifier", "load_multilabel_end_model", "predict_label_sets",
                   "save_multilabel_end_model"],
    "metrics": ["multilabel_metrics"],
    "export": ["OnnxMultiLabelClassifier", "export_multilabel_onnx"],
    "verify": ["verify_multilabel_dataset"],
    "review": ["multilabel_label_errors"],
    "retrain": ["format_multilabel_summary", "run_multilabel", "select_multilabel_label_model"],
}

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=EXPORTS)
