"""Monitoring of served traffic: the server's names for ``labeling.pipeline.monitor``.

The drift tests and the reference profile live in the pipeline (a retrain records the
profile, the run report shows the verdict), below the server; ``labeling monitor`` and the
server's users import them from here as before.
"""

from __future__ import annotations

from ..pipeline.monitor import (
    CONFIDENCE_BINS,
    MAX_VOCABULARY,
    DriftCheck,
    MonitorReport,
    check_drift,
    compare,
    oov_share,
    reference_profile,
    served_profile,
    served_rows,
    tokens,
)

__all__ = [
    "CONFIDENCE_BINS",
    "MAX_VOCABULARY",
    "DriftCheck",
    "MonitorReport",
    "check_drift",
    "compare",
    "oov_share",
    "reference_profile",
    "served_profile",
    "served_rows",
    "tokens",
]
