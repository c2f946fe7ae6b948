"""Labeling functions: LF objects and rows in, the label matrix ``L`` out.

Enters: Snorkel LFs (plain, declarative keyword/regex/length, spaCy) and a frame of rows.
Leaves: ``L`` (n rows x m LFs, ints, ABSTAIN = -1) with per-LF faults and timings
(``ApplyResult``), and LF statistics (coverage, overlaps, conflicts, polarity). Inside:
LF definitions and versions (core), declarative LFs and their pattern scans, spaCy parses
and their cache, the per-LF vote cache, local worker processes and the Dask backend.
"""

import lazy_loader

# Names are imported from their module on first use: importing one stage never
# pulls in the others (or torch, FastAPI, Dask) before they are needed.
#: module -> the public names it gives this stage (``labeling`` exports them all too)
EXPORTS = {
    "core": ["SpacyDoc", "discover_lfs", "labeling_function", "lf_set_version", "lf_uncacheable", "lf_version", "resolve_spacy_model", "spacy_labeling_function"],
    "declarative": ["keyword_lf", "length_lf", "regex_lf"],
    "apply": ["ApplyResult", "LFErrors", "Row", "apply_lfs"],
    "cache": ["LFCache", "project_cache_dir"],
    "parse_cache": ["ParseCache"],
    "class_refs": ["rewrite_class_constants"],
    "analysis": ["conflicts", "coverage", "empirical_accuracy", "lf_summary", "matrix_summary", "overlaps", "polarity"],
}

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=EXPORTS)
