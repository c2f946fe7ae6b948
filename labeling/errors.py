"""Every exception the library raises on purpose.

One module so that users can catch ``LabelingError`` for anything we raise, and
tests can assert on the specific subclass that names the problem.
"""

from __future__ import annotations


class LabelingError(Exception):
    """Base class of all errors raised by ``labeling``."""


class ConfigError(LabelingError):
    """A project config file is missing, malformed or has a bad value."""


class DatasetError(LabelingError):
    """A dataset cannot be read, is empty, or is missing a column."""


class ChecksumError(DatasetError):
    """A downloaded or local data file does not match its published sha256."""


class LabelError(DatasetError):
    """Gold labels name a class that the project does not declare."""


class LFDiscoveryError(LabelingError):
    """Labeling functions could not be found or imported."""


class LFApplicationError(LabelingError):
    """A labeling function raised or returned an invalid vote on a row."""

    def __init__(self, lf_name: str, row_id: object, cause: BaseException | str):
        self.lf_name = lf_name
        self.row_id = row_id
        self.cause = cause
        detail = f"{type(cause).__name__}: {cause}" if isinstance(cause, BaseException) else cause
        super().__init__(f"labeling function {lf_name!r} failed on row {row_id!r}: {detail}")


class LabelMatrixError(LabelingError):
    """A label matrix has the wrong shape, dtype or vote values."""


class NotFittedError(LabelingError, ValueError):
    """A model was used before ``fit``."""


class ArtifactError(LabelingError):
    """A saved model cannot be loaded: missing, tampered with, or of an untrusted type."""


class StoreError(LabelingError):
    """The run store cannot be opened or a record is missing."""


class StoreVersionError(StoreError):
    """The store was written by a newer version of the code (its schema version is higher)."""


class VerificationError(DatasetError):
    """Ingestion checks found a fatal problem; ``report`` holds every finding."""

    def __init__(self, message: str, report: object = None):
        self.report = report
        super().__init__(message)


class PromotionRefused(LabelingError):
    """The promotion gate refused a candidate; the message says why."""


class MonitorError(LabelingError):
    """Served traffic cannot be compared with the training data (no run, no reference)."""


class WorkbenchError(LabelingError):
    """A workbench call that cannot be done: an unknown or duplicate LF name, an LF that
    cannot be saved as code, a saved module that would not vote as the session does."""


class LFVotesUnavailable(LabelingError):
    """The LFs cannot run at all in this process (e.g. the spaCy pipeline is not installed),
    as opposed to an LF failing on one text."""


class WeakTokenError(ConfigError):
    """A serving token is too short, too uniform or a known placeholder."""


class SchemaChangeError(ConfigError):
    """A label-schema change is invalid (unknown or duplicate class, too few classes left) or
    cannot be applied (the store's schema moved meanwhile, a file changed since the plan)."""
