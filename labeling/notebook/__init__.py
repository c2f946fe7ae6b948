"""The LF workbench: write, try, fix and save LFs in a notebook at interactive speed.

Enters: a project config (its splits and LF modules), LFs written in a notebook (plain,
declarative, spaCy, ``similar_to`` seed texts, ``from_gold`` refine suggestions).
Leaves: an ``LFReport`` per tried LF (coverage, overlap, conflict, dev accuracy with a
Wilson interval, the LFs it fights, the label model's dev score with and without it,
examples, wrong votes, uncovered rows; text and HTML), a session summary, and an LF
module written from the session that votes as the session did (and is listed in the
project file); ``init_project``: a data file in -> a new project folder out.
"""

import lazy_loader

# Names are imported from their module on first use: importing one stage never
# pulls in the others (or torch, FastAPI, Dask) before they are needed.
#: module -> the public names it gives this stage (``labeling`` exports them all too)
EXPORTS = {
    "workbench": ["Workbench", "lf_kind"],
    "report": ["LFReport"],
    "multilabel": ["MultiLabelLFReport", "MultiLabelWorkbench"],
    "kinds": ["from_gold", "prepare_similarity", "similar_to", "similarity_settings"],
    "save": ["SavedModule", "lf_module_source", "write_lf_module"],
    "scaffold": ["InitResult", "add_lf_module", "init_project", "propose_classes", "propose_columns"],
}

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=EXPORTS)
