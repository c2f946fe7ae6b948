"""Serving: a recorded run in, predictions over HTTP and a log of them out.

Enters: the registry alias (champion) of a project's store. Leaves: a FastAPI app that
answers ``/predict`` with class probabilities, logs each prediction (with the LF votes on
the served text, computed off the request path) and the feedback on it, and a monitor
that compares served traffic with the training data (drift, LF coverage).
"""

import lazy_loader

# Names are imported from their module on first use: importing one stage never
# pulls in the others (or torch, FastAPI, Dask) before they are needed.
#: module -> the public names it gives this stage (``labeling`` exports them all too)
EXPORTS = {
    "app": ["ServeSettings", "create_app"],
    "feedback": ["FeedbackLog", "gold_labels"],
    "votes": ["Explainer", "lf_votes"],
    "monitor": ["DriftCheck", "MonitorReport", "check_drift", "reference_profile", "served_profile"],
}

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=EXPORTS)
