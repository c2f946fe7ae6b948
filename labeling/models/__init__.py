"""Models: the label matrix in, probabilistic labels and a text classifier out.

Enters: ``L`` (n x m) and optional dev labels; texts with (soft) training labels.
Leaves: label models (``predict_proba`` (n, k)), end models (scikit-learn or torch text
classifiers, ``predict_proba`` (n, k)), their pickle-free artifacts with checksums, and an
optional ONNX export of the scikit-learn end model.
"""

import lazy_loader

# Names are imported from their module on first use: importing one stage never
# pulls in the others (or torch, FastAPI, Dask) before they are needed.
#: module -> the public names it gives this stage (``labeling`` exports them all too)
EXPORTS = {
    "label_models": ["DawidSkene", "MajorityVote", "Selection", "SnorkelLabelModel", "WeightedMajorityVote", "label_model_from_dict", "probs_to_preds", "select_label_model"],
    "end_models": ["SklearnTextClassifier", "TorchTextClassifier", "make_end_model"],
    "embeddings": ["EmbeddingCache", "embed_texts", "load_embedder"],
    "artifacts": ["load_end_model", "load_label_model", "save_end_model", "save_label_model"],
}

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=EXPORTS)
