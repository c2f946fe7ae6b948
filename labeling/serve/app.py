"""Serve a recorded end model over HTTP, log every prediction, capture feedback.

``create_app(settings)`` builds the app; nothing is loaded at import. Each
uvicorn worker builds its own app (``app_from_env``), so each has its own model
copy and its own SQLite connection.

Which model is served: the store's ``production`` alias (``model_aliases``), else
the latest run until an alias is set; ``run_id`` (``serve --run-id``) pins one run
instead, follows no alias and moves none (a pinned server refuses
``/admin/promote``: promote with ``labeling promote``, which goes through the gate).

LF votes are computed by the served run's own LFs, loaded from the copy saved with
the run (``pipeline/run_lfs.py``, checked against the run's checksums), never from
the working tree: a swap swaps them with the model, and each prediction's votes are
those of the run that made it. When a run's LFs cannot be loaded (a run recorded
before runs kept them, a file that fails its checksum, a missing dependency),
``/readyz`` says ``lf_votes: unavailable`` with the reason and every prediction says
it in ``lf_votes_error``: votes are never computed with other code.
``POST /admin/promote`` loads and warms up the new run (its files checked
against the checksums recorded with the run), puts it through the promotion
gate (``registry.promote_run``; ``force_reason`` forces it past a refusal, and
the store records who and why), moves the alias and swaps the model in this
worker; the other workers see the alias move within ``alias_poll_s`` and swap
too. A swap replaces one reference: a request that already holds the old model
finishes with it, so no request fails.

A run that cannot be loaded never stops the worker from following the alias:
it keeps serving what it has, ``/readyz`` names the model it serves and says
why the alias's run is not served, and the next alias move is followed.

Endpoints: ``POST /predict``, ``POST /feedback``, ``GET /models``, ``/livez``,
``/readyz``, ``POST /admin/promote``; OpenAPI at ``/openapi.json``. Every
response carries ``X-Model-Version`` (the run id served, "" before a model is
ready), and model-related bodies carry ``model_version`` too.

Abuse bounds: ``explain: true`` (LF votes computed before answering, ~10-40 ms
of CPU a text) needs the bearer token and at most ``max_explain_batch`` texts;
a request must arrive whole within ``request_read_timeout_s`` of its first byte
(or of the connection), else the connection is closed.

LF votes left ``pending`` by a server that stopped are re-queued by one worker
at the next start (``abandoned``, with the reason, when their text was kept only
as a hash or votes are no longer computed in the background).
"""

import asyncio
import dataclasses
import functools
import hashlib
import hmac
import json
import logging
import os
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from starlette.concurrency import run_in_threadpool
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..config import load_config
from ..errors import (ArtifactError, LabelError, LabelingError, LFVotesUnavailable, PromotionRefused, StoreError,
                      WeakTokenError)
from ..pipeline.run_lfs import LFLoadError
from ..matrix import ABSTAIN
from ..models import predictors
from ..models.predictors import NEEDS_LFS
from ..pipeline.store import load_recorded_end_model, load_recorded_label_model, load_recorded_lfs
from ..spans.data import check_char_spans
from .lifeline import die_with_parent
from .votes import Explainer, lf_votes, served_lfs, vote_cardinality
from .feedback import (
    DEFAULT_ALIAS,
    LF_VOTE_STATUSES,
    FeedbackLog,
    FeedbackRecord,
    GroupCommitWriter,
    IdempotencyConflict,
    PredictionRecord,
    UnknownPrediction,
    text_sha256,
    utc_now,
)

SETTINGS_ENV = "LABELING_SERVE_SETTINGS"
VERSION_HEADER = "X-Model-Version"
TOKEN_COMMAND = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
NO_ALIAS = "latest run (no alias)"
PINNED = "pinned by --run-id (no alias)"
MIN_TOKEN_CHARS = 32
MIN_TOKEN_DISTINCT = 10
# Substrings of the tokens people copy from examples and forget to replace.
TOKEN_PLACEHOLDERS = ("changeme", "change-me", "change_me", "replaceme", "replace-me", "replace_me", "yourtoken",
                      "your-token", "your_token", "password", "placeholder", "example")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeSettings:
    config_path: str
    overrides: tuple[str, ...] = ()
    run_id: str = ""  # pin this run (no alias followed or moved); "" = follow the alias, else the latest run
    alias: str = DEFAULT_ALIAS
    token_sha256: str = ""  # sha256 hex of the bearer token for write endpoints; "" refuses every write
    store_text: bool = False  # privacy: False keeps only the sha256 of each predicted text
    max_body_bytes: int = 1_000_000
    max_batch: int = 1000
    max_text_chars: int = 5000
    alias_poll_s: float = 1.0
    # The LF votes logged with each prediction: "background" (a separate low-priority
    # process fills them in after the answer), "inline" (computed before answering,
    # returned in the response), or "off". A request can ask for inline votes (explain).
    lf_votes: str = "background"
    max_queued_explanations: int = 10_000
    synchronous: str = "FULL"
    predict_requires_token: bool = False  # predictions write only their own log, so they are open by default
    max_explain_batch: int = 100  # explain costs LF CPU per text: it needs the token, and this bounds one request
    request_read_timeout_s: float = 30.0  # a request (headers and body) must arrive within this
    lf_votes_max_texts: int = 5_000  # the LF-votes process hands over to a fresh one after this many texts
    started_at: str = ""  # when the server (all workers) started: pending votes older than this are re-queued
    ls_basic_auth_sha256: str = ""  # sha256 of "user:password" the /ls (Label Studio ML backend) routes need; "" = open
    ls_max_body_bytes: int = 64_000_000  # /ls/predict: Label Studio sends all selected tasks at once

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeSettings":
        data = json.loads(text)
        data["overrides"] = tuple(data.get("overrides", ()))
        return cls(**data)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_token_strength(token: str) -> None:
    """Raise ``WeakTokenError`` for a token that is short (< 32 characters), made of few
    distinct characters (< 10), or holds a well-known placeholder such as ``change-me``."""
    lowered = token.lower()
    problem = (
        f"it is {len(token)} characters long; at least {MIN_TOKEN_CHARS} are needed" if len(token) < MIN_TOKEN_CHARS
        else f"it uses only {len(set(token))} distinct characters; at least {MIN_TOKEN_DISTINCT} are needed"
        if len(set(token)) < MIN_TOKEN_DISTINCT
        else next((f"it contains the placeholder {p!r}" for p in TOKEN_PLACEHOLDERS if p in lowered), "")
    )
    if problem:
        raise WeakTokenError(f"the serving token is too weak: {problem}. Generate one with {TOKEN_COMMAND} "
                             "and pass it with --token-file PATH (or --token-file - to read it from stdin)")


@dataclass(frozen=True, eq=False)
class ServedModel:
    run_id: str
    model: Any  # predict_proba(texts) -> (n, k)
    lineage: dict
    lfs: tuple = ()  # the run's own LFs, loaded from its saved copy
    lfs_error: str = ""  # why the run's LFs cannot be loaded ("" when they are)
    # the run's served predictor (models.predictors; "end_model" for runs recorded before it)
    predictor: str = "end_model"
    params: dict = dataclasses.field(default_factory=dict)
    label_model: Any = None  # predict_proba(L) -> (n, k); loaded when the predictor reads LF votes
    precomputed: int = 0  # LF columns stored with the data: they abstain on a served text
    # a run of an older label schema mapped to the current classes: the schema its answers are in
    answers_schema: str | None = None

    @property
    def needs_lfs(self) -> bool:
        return NEEDS_LFS[self.predictor]


# tasks whose served runs compute no LF votes (spans: span LFs); a multi-label run's are logged as
# each LF's vote code (``multilabel.votes``: the classes it said yes and NOT to)
NO_LF_VOTES = ("spans",)


class ModelLoadError(LabelingError):
    """A run cannot be served: unknown, its artifacts fail their checks, or its warm-up failed."""


# -- functional core ---------------------------------------------------------


def check_probabilities(probs: np.ndarray, n: int, k: int) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    # not np.allclose: its generality costs more than scoring a text
    if probs.shape != (n, k) or not (np.abs(probs.sum(axis=1) - 1.0) <= 1e-4).all() or not (probs >= 0).all():
        raise ModelLoadError(f"model returned probabilities of shape {probs.shape}, expected ({n}, {k}) rows summing to 1")
    return probs


def check_class_probabilities(probs: np.ndarray, n: int, k: int) -> np.ndarray:
    """A multi-label model's (n, k) probabilities: each class's own, in [0, 1] (rows need not sum to 1)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (n, k) or not ((probs >= 0) & (probs <= 1)).all():
        raise ModelLoadError(f"model returned class probabilities of shape {probs.shape}, expected ({n}, {k}) "
                             "in [0, 1]")
    return probs


def label_sets(served: "ServedModel", texts: list[str], cardinality: int) -> tuple[np.ndarray, np.ndarray]:
    """A multi-label run's answer on ``texts``: (n, k) per-class probabilities and the (n, k) 0/1
    label sets its per-class thresholds (chosen on dev) give."""
    probs = check_class_probabilities(served.model.predict_proba(texts), len(texts), cardinality)
    return probs, served.model.predict_sets(probs)


class MappedClasses:
    """A model of an older label schema answering in the current classes: column ``i`` of its
    (n, k_old) probabilities is added to current class ``mapping[i]`` (a rename moves a column,
    a merge adds two; a class added since gets 0). Wraps an end model (texts) or a label model (L)."""

    def __init__(self, model, mapping: np.ndarray, k: int):
        self.model, self.k = model, k
        self.matrix = np.zeros((len(mapping), k))
        self.matrix[np.arange(len(mapping)), mapping] = 1.0

    def predict_proba(self, X) -> np.ndarray:
        return np.asarray(self.model.predict_proba(X), dtype=np.float64) @ self.matrix

    def __getattr__(self, name):  # the rest (params, thresholds, ...) is the wrapped model's
        return getattr(self.model, name)


def schema_class_map(log: FeedbackLog, run_id: str, project: str,
                     classes: tuple[str, ...]) -> tuple[np.ndarray, str] | None:
    """``(mapping, current schema version)``: where ``run_id``'s classes went in the project's
    current ``classes``, through the label schema's history (``data.schema.resolve_class``);
    None when the run has the current classes.
    Raises ``ModelLoadError`` naming the classes a split or a retirement left with no one
    current class: that run cannot answer in the current schema."""
    from ..data.schema import LabelSchema, resolve_class

    old = tuple((log.recorded_run(run_id).get("config") or {}).get("classes") or classes)
    if old == tuple(classes):
        return None
    row = log.label_schema(project)
    if row is None:
        raise ModelLoadError(f"cannot serve run {run_id!r}: it predicts classes {list(old)}, the project has "
                             f"{list(classes)}, and the store holds no label-schema history to map them")
    schema = LabelSchema.from_json(row["classes"], row["history"])
    resolved = [resolve_class(schema, name) for name in old]
    gone = [f"{name!r} ({why})" for name, (now, why) in zip(old, resolved) if now not in classes]
    if gone:
        raise ModelLoadError(
            f"cannot serve run {run_id!r} under label schema {schema.version}: its classes {', '.join(gone)} have "
            "no one current class; retrain and promote a run of the current schema")
    return np.array([classes.index(now) for now, _ in resolved]), schema.version


def load_served_model(log: FeedbackLog, run_id: str, cardinality: int, *, project: str | None = None,
                      classes: tuple[str, ...] | None = None) -> ServedModel:
    """Load ``run_id``'s end model (checksums verified) and pass a warm-up prediction, and the
    run's own LFs (``pipeline.store.load_recorded_lfs``); LFs that cannot be loaded do not stop the model
    from being served: ``lfs_error`` says why, and no LF votes are computed for it.

    With ``project`` and ``classes`` (a single-label project's current classes), a run of an
    older label schema answers in the current classes where every class it knows has one
    (rename, merge, add: ``MappedClasses``), and raises ``ModelLoadError`` naming the classes
    where not (split, retire)."""
    try:
        lineage = log.run_lineage(run_id)
        model = load_recorded_end_model(log, run_id)
        class_map = None if project is None or classes is None else schema_class_map(log, run_id, project, classes)
    except (StoreError, ArtifactError) as exc:
        raise ModelLoadError(f"cannot serve run {run_id!r}: {exc}") from exc
    class_map, answers_schema = class_map or (None, None)
    if class_map is not None:
        model = MappedClasses(model, class_map, cardinality)
    if hasattr(model, "predict_text"):  # a spans run's NER pipeline: spans with types and scores, no LF votes
        try:
            model.predict_text(["warm-up: bought it for $5 on Monday"])
        except Exception as exc:  # as below: a model that cannot predict is not served
            raise ModelLoadError(f"cannot serve run {run_id!r}: its warm-up prediction failed: "
                                 f"{type(exc).__name__}: {exc}") from exc
        return ServedModel(run_id=run_id, model=model, lineage=lineage, lfs_error="a spans run serves no LF votes")
    try:
        probs = model.predict_proba(["warm-up: is this spam? check out my channel"])
    except Exception as exc:  # a model that loads but cannot predict is not served, whatever it raises
        raise ModelLoadError(f"cannot serve run {run_id!r}: its warm-up prediction failed: "
                             f"{type(exc).__name__}: {exc}") from exc
    multi_label = hasattr(model, "predict_sets")  # label sets; its LFs vote sets
    if multi_label:
        check_class_probabilities(probs, 1, cardinality)
    else:
        check_probabilities(probs, 1, cardinality)
    try:
        lfs, lfs_error = served_lfs(load_recorded_lfs(log, run_id), "multi_label" if multi_label else ""), ""
    except (LFLoadError, StoreError) as exc:
        lfs, lfs_error = (), str(exc)
        logger.error("LF votes of run %s cannot be computed: %s", run_id, exc)
    if multi_label:
        return ServedModel(run_id=run_id, model=model, lineage=lineage, lfs=lfs, lfs_error=lfs_error)
    served = ServedModel(run_id=run_id, model=model, lineage=lineage, lfs=lfs, lfs_error=lfs_error,
                         answers_schema=answers_schema)
    try:
        chosen = (log.recorded_run(run_id).get("end_model") or {}).get("served")
    except StoreError as exc:
        raise ModelLoadError(f"cannot serve run {run_id!r}: {exc}") from exc
    if not chosen or not NEEDS_LFS.get(chosen["predictor"], False):
        return served
    if lfs_error:  # what the run chose on dev cannot answer here: never serve something else silently
        raise ModelLoadError(f"cannot serve run {run_id!r}: its served predictor {chosen['predictor']!r} reads LF "
                             f"votes, and its LFs cannot be loaded: {lfs_error}")
    try:
        label_model = load_recorded_label_model(log, run_id)
    except (StoreError, ArtifactError) as exc:
        raise ModelLoadError(f"cannot serve run {run_id!r}: {exc}") from exc
    if class_map is not None:
        label_model = MappedClasses(label_model, class_map, cardinality)
    return dataclasses.replace(served, predictor=chosen["predictor"], params=dict(chosen.get("params") or {}),
                               label_model=label_model,
                               precomputed=len((chosen.get("lf_columns") or {}).get("precomputed", ())))


def served_probabilities(served: ServedModel, texts: list[str], votes: list[tuple[int, ...] | None] | None,
                         cardinality: int) -> tuple[np.ndarray, list[str]]:
    """(n, k) probabilities of ``served``'s predictor on ``texts`` (``models.predictors``, the
    same function retrain evaluated it with), and per text which predictor answered: a text
    whose LF votes failed (``None``) is answered by the end model. ``votes``: each text's votes
    by the run's own LFs (its precomputed columns abstain); None when the predictor reads none."""
    end = check_probabilities(served.model.predict_proba(texts), len(texts), cardinality)
    if not served.needs_lfs or votes is None:
        return end, [served.predictor if not served.needs_lfs else "end_model"] * len(texts)
    width = len(served.lfs) + served.precomputed
    L = np.full((len(texts), width), ABSTAIN, dtype=np.int64)
    for i, row in enumerate(votes):
        if row is not None:
            L[i, :len(row)] = row
    probs = predictors.predict_proba(served.predictor, end, served.label_model.predict_proba(L), L, served.params)
    return check_probabilities(probs, len(texts), cardinality), [
        served.predictor if row is not None else "end_model" for row in votes]


def served_thresholds(served: ServedModel, classes) -> dict[str, float]:
    """A multi-label run's per-class decision thresholds, by class (0.5 where none were chosen)."""
    from ..multilabel.label_models import DEFAULT_THRESHOLD

    chosen = getattr(served.model, "thresholds_", None)
    values = [DEFAULT_THRESHOLD] * len(classes) if chosen is None else np.asarray(chosen).tolist()
    return {name: float(t) for name, t in zip(classes, values)}


def _set_prediction(record, classes) -> dict:
    """A logged multi-label prediction (a ``PredictionRecord`` or a ``predictions`` row) as the API shows it."""
    from ..multilabel.votes import describe_votes

    get = record.get if isinstance(record, dict) else functools.partial(getattr, record)
    labels, probs, votes = get("labels"), get("probabilities"), get("lf_votes")
    labels = json.loads(labels) if isinstance(labels, str) else labels
    votes = json.loads(votes) if isinstance(votes, str) else votes
    probs = json.loads(probs) if isinstance(probs, str) else probs
    return {"id": get("id"), "labels": [classes[c] for c in labels],
            "probabilities": dict(zip(classes, map(float, probs))), "lf_votes": describe_votes(votes, classes) if votes else None,
            "lf_votes_status": get("lf_votes_status"), "lf_votes_error": get("lf_votes_error")}


def request_sha256(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")).hexdigest()


# -- HTTP edge -----------------------------------------------------------------


class BodySizeLimit:
    """413 for a body over the limit, declared (Content-Length) or streamed (chunked).
    ``per_path``: other limits for some exact paths."""

    def __init__(self, app, max_bytes: int, per_path: dict[str, int] | None = None):
        self.app, self.default_bytes, self.per_path = app, max_bytes, dict(per_path or {})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.per_path.get(scope.get("path", ""), self.default_bytes)
        return await self._limited(scope, receive, send, limit)

    async def _limited(self, scope, receive, send, max_bytes: int):
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            return await self._refuse(receive, send, more=True, max_bytes=max_bytes)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":  # the client left (or the read deadline closed it)
                return
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > max_bytes:
                return await self._refuse(receive, send, more=more, max_bytes=max_bytes)
        body, sent = b"".join(chunks), False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _refuse(self, receive, send, more: bool, max_bytes: int):
        # Read (and drop) a moderately large rest of the body first: a client still
        # sending when the server answers and closes sees a reset, not the 413.
        drained = 0
        while more and drained <= max(16 * max_bytes, 16 << 20):
            message = await receive()
            if message["type"] != "http.request":
                break
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)
        payload = json.dumps({"detail": f"request body over {max_bytes} bytes"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 413,
                    "headers": headers + ([(b"connection", b"close")] if more else [])})
        await send({"type": "http.response.body", "body": payload})


@functools.cache
def _request_read_timeout_s() -> float:
    text = os.environ.get(SETTINGS_ENV)
    return ServeSettings.from_json(text).request_read_timeout_s if text else ServeSettings.request_read_timeout_s


class ReadDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a read deadline and a cap on request headers.

    A request whose headers and body have not all arrived within ``request_read_timeout_s``
    of its first byte (or of the connection, for the first request) gets its connection
    closed: uvicorn times out only idle keep-alive connections; a client that sends half a
    request and waits would otherwise hold a connection (and a request task) forever.

    Request line and headers over ``MAX_HEADER_BYTES`` in all are answered 431 and the
    connection closed: httptools (llhttp) buffers headers without limit (a 100 MB header
    was answered 200 after 10 s, the worker 320 MiB larger), with no token needed.

    Workers read the deadline from ``$LABELING_SERVE_SETTINGS``: uvicorn builds this
    class itself, with no room for our settings.
    """

    MAX_HEADER_BYTES = 64 * 1024
    # After a 431, read and drop at most this much more before closing: a client still sending
    # its headers when the connection closes with unread data sees a reset, not the answer.
    HEADER_DRAIN_BYTES = 16 << 20

    _read_deadline: asyncio.TimerHandle | None = None
    _header_bytes = 0  # bytes of the current request's head (request line and headers) received so far
    _tail = b""  # the last bytes of the head received: its end (CRLF CRLF) may straddle two reads
    _in_body = False  # the current request's head is complete
    _draining = -1  # bytes still to drop after a 431; -1: not refused

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_read_deadline()

    def data_received(self, data: bytes) -> None:
        if self._draining >= 0:
            self._draining -= len(data)
            if self._draining < 0:
                self.transport.close()
            return
        if not self._in_body:  # counted before the parser buffers it: it keeps no limit of its own
            seen = self._tail + data
            end = seen.find(b"\r\n\r\n")
            self._header_bytes += len(data) if end < 0 else end + 4 - len(self._tail)
            self._tail = seen[-3:]
            if self._header_bytes > self.MAX_HEADER_BYTES:
                self._refuse_large_headers()
                return
        super().data_received(data)

    def _refuse_large_headers(self) -> None:
        body = json.dumps({"detail": f"request headers over {self.MAX_HEADER_BYTES} bytes"}).encode()
        self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                             b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
        self._draining = self.HEADER_DRAIN_BYTES
        self.loop.call_later(2.0, self.transport.close)  # drain for a moment only, whatever the client does

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_deadline is None:
            self._arm_read_deadline()

    def on_headers_complete(self) -> None:
        self._in_body, self._header_bytes, self._tail = True, 0, b""
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._disarm_read_deadline()
        super().on_message_complete()

    def connection_lost(self, exc) -> None:
        self._disarm_read_deadline()
        super().connection_lost(exc)

    def _arm_read_deadline(self) -> None:
        self._disarm_read_deadline()
        self._read_deadline = self.loop.call_later(_request_read_timeout_s(), self._read_deadline_passed)

    def _disarm_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_deadline_passed(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class _Server:
    """Per-worker state: config, LFs, the store connection, the served model."""

    # Up to this many texts are scored on the event loop itself (~1 ms); larger
    # batches go to a thread so that they do not stall the single requests.
    INLINE_TEXTS = 8

    def __init__(self, settings: ServeSettings):
        if settings.lf_votes not in ("background", "inline", "off"):
            raise LabelingError(f"lf_votes must be 'background', 'inline' or 'off', not {settings.lf_votes!r}")
        self.settings = settings
        self.config = load_config(settings.config_path, list(settings.overrides))
        self.log: FeedbackLog | None = None
        self.writer: GroupCommitWriter | None = None
        self.explainer: Explainer | None = None
        self.current: ServedModel | None = None
        self.ready = False
        self.last_error = ""
        self._swap_lock = threading.Lock()
        self._explain_lock = threading.Lock()  # one spaCy pipeline per worker: one inline explanation at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed_run = ""  # the alias's run that last failed to load: not retried until the alias moves
        self._gate_lock = threading.Lock()
        self._test_split = None  # the gold test split the promotion gate scores on, read once
        self.started_at = settings.started_at or utc_now()
        self.lf_votes_error = ""  # why this worker's own (inline) LF votes cannot be computed
        self.served_via = ""  # how the served run was chosen: "alias", "latest" (no alias yet) or "pinned"
        self._lf_names: dict[str, list[str]] = {}  # run id -> its LFs' names, for logged predictions
        self.ls_backend = None  # the /ls routes' background jobs (ls_backend.ls_router sets it)

    @property
    def version(self) -> str:
        return self.current.run_id if self.current else ""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-loader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.ls_backend is not None:
            self.ls_backend.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.explainer is not None:
            self.explainer.close()
        if self.writer is not None:
            self.writer.close()
        if self.log is not None:
            self.log.close()

    def _run(self) -> None:
        """Open the store, load the first model, then follow the alias."""
        s = self.settings
        try:
            store = self.config.resolve(self.config.store)
            self.log = FeedbackLog(store, synchronous=s.synchronous)
            self.writer = GroupCommitWriter(self.log)
        except (LabelingError, OSError) as exc:
            self.last_error = str(exc)
            return
        while not self._stop.is_set() and self.current is None:
            self._follow(first=True)
            if self.current is None:
                self._stop.wait(s.alias_poll_s)
        if self.current is None:
            return
        try:
            if s.lf_votes == "background" and self.config.lfs.modules and self.config.task not in NO_LF_VOTES:
                # started on the served run: its LFs are warmed up (spaCy loads) before readiness
                self.explainer = Explainer(s.config_path, s.overrides, str(store), max_queued=s.max_queued_explanations,
                                           max_texts=s.lf_votes_max_texts, run_id=self.current.run_id)
            self._requeue_pending()
        except (LabelingError, OSError) as exc:
            self.last_error = str(exc)
            return
        try:
            # warm the LFs (spaCy loads here) before declaring readiness, when answers need them
            if (s.lf_votes == "inline" or self.current.needs_lfs) and self.config.task not in NO_LF_VOTES:
                self.votes(self.current, ["warm-up"])
        except (LabelingError, OSError) as exc:
            self.last_error = str(exc)
            return
        self._wait_for_explainer(timeout=120.0)
        self.ready = self.current is not None
        while not self._stop.wait(s.alias_poll_s):
            if self.explainer is not None:
                self.explainer.poll()  # picks up its errors, and replaces a process that exited
            self._follow()

    def _wait_for_explainer(self, timeout: float) -> None:
        """Readiness waits until the LF-votes process said whether the LFs run, so that
        the first ``/readyz`` answer already tells "ready" from "degraded"."""
        deadline = time.monotonic() + timeout
        while self.explainer is not None and not (self.explainer.ready or self.explainer.error):
            if self._stop.wait(0.05) or time.monotonic() > deadline:
                break
            self.explainer.poll()
        if self.explainer is not None and not (self.explainer.ready or self.explainer.error):
            self.explainer.error = f"the LF-votes process did not start within {timeout:g} s"
            logger.error("%s", self.explainer.error)

    def _requeue_pending(self) -> None:
        """Hand the LF votes that a stopped server left pending to this start's explainer."""
        rows = self.log.claim_pending_votes(self.started_at)
        if not rows:
            return
        if self.explainer is None:
            reason = (f"the server stopped before computing these LF votes and restarted with LF votes "
                      f"{self.settings.lf_votes!r}, not in the background")
            self.writer.submit_votes([(r["id"], None, "abandoned", reason) for r in rows])
            logger.warning("%d prediction(s) left pending by a stopped server marked abandoned: %s", len(rows), reason)
            return
        hashed = [r for r in rows if r["text"] is None]
        if hashed:
            reason = ("the server stopped before computing these LF votes, and kept only the text's sha256 "
                      "(serve with --store-text to recompute them after a restart)")
            self.writer.submit_votes([(r["id"], None, "abandoned", reason) for r in hashed])
        queued = [(r["model_version"], r["id"], r["text"]) for r in rows if r["text"] is not None]
        for start in range(0, len(queued), 64):
            chunk = queued[start:start + 64]
            # each prediction's votes are those of the run that made it: requests go per run
            if not all(self.explainer.submit([(pid, text) for v, pid, text in chunk if v == version], run_id=version)
                       for version in dict.fromkeys(v for v, _, _ in chunk)):
                self.writer.submit_votes([(pid, None, "skipped", "the LF-votes queue was full at the restart")
                                          for _, pid, _ in chunk])
        logger.warning("re-queued the LF votes of %d prediction(s) left pending by a stopped server "
                       "(%d abandoned: text kept only as a hash)", len(queued), len(hashed))

    def label_schema(self):
        """The project's label schema as the store holds it now (None before one is registered)."""
        from ..data.schema import LabelSchema

        row = self.log.label_schema(self.config.name) if self.log is not None else None
        return None if row is None else LabelSchema.from_json(row["classes"], row["history"])

    def feedback_class(self, name: str) -> str:
        """The class a feedback label means now: itself, or what a rename/merge made of it. Raises
        HTTP 422 naming the class and the schema version for a split, retired or unknown class,
        and 409 when this server's classes are older than the project's schema (restart it)."""
        schema = self.label_schema()
        if schema is None:
            if name not in self.config.classes:
                raise _label_refused(name, self.config.classes, "")
            return name
        from ..data.schema import resolve_class

        current, why = resolve_class(schema, name)
        if current is None:
            raise _label_refused(name, schema.classes, why)
        if tuple(schema.classes) != tuple(self.config.classes):
            raise HTTPException(409, f"this server's classes {list(self.config.classes)} are older than label "
                                     f"schema {schema.version} {list(schema.classes)}: restart it to take feedback")
        return current

    def schema_note(self) -> str:
        """Why the served run's label schema, or this server's classes, are not the project's (empty
        when they are)."""
        if self.log is None or self.current is None:
            return ""
        project = self.log.label_schema(self.config.name)
        served = self.log.run_schema_version(self.current.run_id)
        if project is not None and tuple(project["classes"]) != tuple(self.config.classes):
            # its request and response models were built from the classes it started with
            return (f"this server's classes {list(self.config.classes)} are older than the project's label schema "
                    f"{project['version']} {project['classes']}: restart it to predict and take feedback in "
                    "them" + (f" (it serves run {self.current.run_id} of schema {served})" if served else ""))
        if project is None or served is None or served == project["version"]:
            return ""
        return (f"the served run {self.current.run_id} has label schema {served}, older than the project's "
                f"{project['version']} {project['classes']}: retrain and promote to serve the new classes")

    def lf_votes_problem(self) -> str:
        """Why LF votes are not being computed now ("" when they are, or are off)."""
        served = self.current
        if served is not None and served.lfs_error and self.settings.lf_votes != "off":
            return served.lfs_error
        if self.explainer is not None:
            return self.explainer.error
        return self.lf_votes_error

    def lf_names(self, run_id: str) -> list[str]:
        """The names of run ``run_id``'s LFs, in vote order ([] for an unknown run)."""
        served = self.current
        if served is not None and served.run_id == run_id and served.lfs:
            return [lf.name for lf in served.lfs]
        if run_id not in self._lf_names:
            try:
                run = self.log.recorded_run(run_id)
            except StoreError:
                return []
            self._lf_names[run_id] = [lf["name"] for lf in run["lfs"] if lf["version"] != "precomputed"]
        return self._lf_names[run_id]

    def _follow(self, first: bool = False) -> None:
        """One look at the alias (at start, the latest run when no alias is set); swap when it moved.

        Never raises: whatever goes wrong is kept in ``last_error`` for ``/readyz`` and the
        next poll tries again, so no bad artifact or store hiccup ends the follower.
        """
        try:
            pinned = self.settings.run_id
            aliased = None if pinned else self.log.get_alias(self.settings.alias)
            run_id = pinned or aliased or (self.log.latest_run_id() if first else None)
        except Exception as exc:  # a transient store error must not kill the follower
            self.last_error = f"cannot read alias {self.settings.alias!r}: {exc}"
            return
        via = "pinned" if pinned else "alias" if aliased else "latest"
        if not run_id:
            if self.current is None:
                self.last_error = f"no run to serve yet: alias {self.settings.alias!r} is not set and no run is recorded"
            return
        if run_id == self.version:
            self.last_error, self.served_via = "", via
            return
        if run_id == self._failed_run:
            return  # already failed and the alias has not moved; the error stays in last_error
        try:
            self.swap(run_id)
            self.served_via = via
        except Exception as exc:
            self._failed_run = run_id
            serving = f"; still serving {self.version}" if self.version else ""
            source = "--run-id" if pinned else f"alias {self.settings.alias!r}"
            self.last_error = f"{source} -> {run_id}: {exc}{serving}"

    def _schema_args(self) -> dict:
        # a single-label run of an older label schema answers in the current classes where it can
        if self.config.task != "single_label":
            return {}
        return {"project": self.config.name, "classes": tuple(self.config.classes)}

    def swap(self, run_id: str) -> ServedModel:
        with self._swap_lock:
            if self.current is not None and self.current.run_id == run_id:
                return self.current
        return self.install(load_served_model(self.log, run_id, self.config.cardinality, **self._schema_args()))

    def install(self, served: ServedModel) -> ServedModel:
        with self._swap_lock:
            # what failed before is no longer what the alias names; cleared first, because /readyz
            # reads the version and the error without this lock and must never pair the new
            # version with the old error
            self._failed_run, self.last_error = "", ""
            self.current = served  # one reference assignment: in-flight requests keep the old model
            return served

    def promote(self, run_id: str, *, force_reason: str | None, actor: str):
        """Load ``run_id`` (checksums, warm-up), pass it through the promotion gate for this
        server's alias (or force it, recorded), then serve it here.

        Raises ``ModelLoadError`` (cannot be served), ``PromotionRefused`` (the gate's reason),
        ``StoreError``, or another ``LabelingError`` (e.g. no gold test split to gate on).
        """
        from ..pipeline.registry import gate_test_split, promote_run

        served = load_served_model(self.log, run_id, self.config.cardinality, **self._schema_args())
        with self._gate_lock:  # one promotion at a time in this worker; SQLite orders the workers
            if self._test_split is None and self.config.task != "spans":  # spans: dev, read with its gold each time
                self._test_split = gate_test_split(self.config)
            decision = promote_run(self.config, self.config.resolve(self.config.store), run_id,
                                   force=force_reason is not None, alias=self.settings.alias, actor=actor,
                                   note=force_reason or "", candidate_model=served.model, test=self._test_split)
            self.install(served)
            self.served_via = "alias"
        return served, decision

    def votes(self, served: ServedModel, texts: list[str]) -> tuple[list[tuple[int, ...] | None], list[str | None]]:
        """This worker's own LF votes on ``texts`` by the LFs of run ``served`` (and per text the error, if any)."""
        if served.lfs_error:
            return [None] * len(texts), [served.lfs_error] * len(texts)
        with self._explain_lock:
            try:
                votes = lf_votes(served.lfs, texts, vote_cardinality(self.config), self.config.lfs.spacy_model)
            except LFVotesUnavailable as exc:
                if str(exc) != self.lf_votes_error:  # once per cause, not once per request
                    logger.error("%s", exc)
                self.lf_votes_error = str(exc)
                return [None] * len(texts), [str(exc)] * len(texts)
            self.lf_votes_error = ""
            return votes

    def _score(self, served: ServedModel, texts: list[str], explain: bool):
        votes, errors = self.votes(served, texts) if explain or served.needs_lfs else (None, None)
        probs, answered = served_probabilities(served, texts, votes, self.config.cardinality)
        return probs, answered, (votes, errors)

    async def predict(self, texts: list[str], explain: bool
                      ) -> tuple[ServedModel, list[PredictionRecord], list[str]]:
        """Score ``texts`` with the served run's predictor (its LF votes computed here, before
        answering, when it reads them) and log them; returns the run, the logged records and
        per text the predictor that answered."""
        served = self.current
        if served is None or not self.ready:
            raise HTTPException(503, "no model is ready")
        explain = explain or self.settings.lf_votes == "inline"
        if self.config.task == "multi_label":
            return served, await self._predict_sets(served, texts, explain), ["end_model"] * len(texts)
        if len(texts) <= self.INLINE_TEXTS and not explain and not served.needs_lfs:
            probs, answered, (votes, errors) = self._score(served, texts, False)
        else:
            probs, answered, (votes, errors) = await run_in_threadpool(self._score, served, texts, explain)
        votes, statuses, errors = self._vote_statuses(served, len(texts), votes, errors)
        now = utc_now()
        records = [
            PredictionRecord(
                id=str(uuid.uuid4()), created_at=now, model_version=served.run_id,
                probabilities=tuple(float(p) for p in row), label=int(np.argmax(row)), lf_votes=vote,
                text=text if self.settings.store_text else None, text_sha256=text_sha256(text),
                lf_votes_status=status, lf_votes_error=error, schema_version=served.answers_schema,
            )
            for text, row, vote, status, error in zip(texts, probs, votes, statuses, errors)
        ]
        await self._log_with_votes(served, records, texts, statuses)
        return served, records, answered

    def _vote_statuses(self, served: ServedModel, n: int, votes, errors) -> tuple[list, list[str], list]:
        """Each text's votes, their status and error: computed here, left to the LF-votes process
        ("pending"), "off", or an "error" naming why they cannot be computed."""
        if votes is not None:  # never "done" without votes: a text whose LFs failed says why
            return votes, ["done" if v is not None else "error" for v in votes], errors
        problem = ((served.lfs_error if self.settings.lf_votes != "off" else "")
                   or (self.explainer.error if self.explainer is not None else ""))
        status = "error" if problem else "pending" if self.explainer is not None else "off"
        return [None] * n, [status] * n, [problem or None] * n

    async def _log_with_votes(self, served: ServedModel, records: list, texts: list[str], statuses: list[str]) -> None:
        """Log ``records`` and hand those pending to the LF-votes process (skipped when its queue is full)."""
        await self._log(records)
        if statuses[0] == "pending" and not self.explainer.submit([(r.id, t) for r, t in zip(records, texts)],
                                                                  run_id=served.run_id):
            self.writer.submit_votes([(r.id, None, "skipped", "the LF-votes queue was full") for r in records])

    async def _predict_sets(self, served: ServedModel, texts: list[str], explain: bool) -> list[PredictionRecord]:
        """A multi-label run's predictions, logged: the set as ``labels`` (``label`` -1), and the LF
        votes of the run's own LFs (each LF's vote code), computed as single-label's are."""
        def score():
            probs, sets = label_sets(served, texts, self.config.cardinality)
            return probs, sets, (self.votes(served, texts) if explain else (None, None))

        if len(texts) <= self.INLINE_TEXTS and not explain:
            probs, sets, (votes, errors) = score()
        else:
            probs, sets, (votes, errors) = await run_in_threadpool(score)
        votes, statuses, errors = self._vote_statuses(served, len(texts), votes, errors)
        now = utc_now()
        records = [
            PredictionRecord(
                id=str(uuid.uuid4()), created_at=now, model_version=served.run_id,
                probabilities=tuple(float(p) for p in row), label=-1, lf_votes=vote,
                text=text if self.settings.store_text else None, text_sha256=text_sha256(text),
                lf_votes_status=status, lf_votes_error=error, labels=tuple(int(c) for c in np.flatnonzero(chosen)))
            for text, row, chosen, vote, status, error in zip(texts, probs, sets, votes, statuses, errors)
        ]
        await self._log_with_votes(served, records, texts, statuses)
        return records

    async def predict_spans(self, texts: list[str]) -> tuple[ServedModel, list[PredictionRecord]]:
        """A spans run's entities on ``texts``, logged (label -1, no probabilities, the spans
        with their scores) under the run id; the store stamps the run's label schema."""
        served = self.current
        if served is None or not self.ready:
            raise HTTPException(503, "no model is ready")
        answers = await run_in_threadpool(served.model.predict_text, texts)
        now = utc_now()
        records = [PredictionRecord(
            id=str(uuid.uuid4()), created_at=now, model_version=served.run_id, probabilities=(), label=ABSTAIN,
            lf_votes=None, text=text if self.settings.store_text else None, text_sha256=text_sha256(text),
            lf_votes_status="off", spans=tuple((s["start"], s["end"], s["label"], s["score"]) for s in spans))
            for text, spans in zip(texts, answers)]
        await self._log(records)
        return served, records

    async def _log(self, records: list[PredictionRecord]) -> None:
        loop = asyncio.get_running_loop()
        committed = loop.create_future()

        def done(error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, committed, error)

        self.writer.submit(records, done)
        error = await committed
        if error is not None:
            raise StoreError(f"cannot log predictions: {error}") from error


def _settle(future: asyncio.Future, error: BaseException | None) -> None:
    if not future.done():
        future.set_result(error)


class VersionHeader:
    """Adds ``X-Model-Version`` to every response: the version that answered
    (set by /predict in the request state), else the version served now.
    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs a task per request."""

    def __init__(self, app, server: _Server):
        self.app, self.server = app, server

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_version(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == VERSION_HEADER.lower().encode() for k, _ in headers):
                    version = scope.get("state", {}).get("model_version", self.server.version)
                    headers.append((VERSION_HEADER.encode(), version.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_version)


MAX_ECHOED_CHARS = 200  # of an input, in a 422
MAX_REPORTED_ERRORS = 20  # in a 422: a 1,000-text batch can have an error per text


def clip_input(value: Any) -> tuple[Any, bool]:
    """``value`` as a 422 may echo it: itself when its JSON is at most ``MAX_ECHOED_CHARS``
    characters, else the first ``MAX_ECHOED_CHARS`` characters (of the string, or of its JSON
    text); and whether it was clipped. A 422 once echoed a whole 720 KB batch back."""
    if isinstance(value, str):
        return (value[:MAX_ECHOED_CHARS], True) if len(value) > MAX_ECHOED_CHARS else (value, False)
    text = json.dumps(jsonable_encoder(value, custom_encoder={Exception: str}), ensure_ascii=False, default=str)
    return (text[:MAX_ECHOED_CHARS], True) if len(text) > MAX_ECHOED_CHARS else (value, False)


def _json_error(doc: Any, pos: int, reason: str) -> str:
    """``json.JSONDecodeError``'s position as people read it: line and column, from 1."""
    doc = doc if isinstance(doc, str) else bytes(doc).decode("utf-8", "replace")
    line = doc.count("\n", 0, pos) + 1
    column = pos - doc.rfind("\n", 0, pos)
    return f"invalid JSON at line {line} column {column}: {reason}"


def validation_errors(exc: RequestValidationError) -> list[dict]:
    """The errors of a 422, small whatever the request: at most ``MAX_REPORTED_ERRORS`` (then one
    saying how many more), each input clipped (``clip_input``); a JSON syntax error names its line
    and column."""
    raw = list(exc.errors())
    errors = []
    for err in raw[:MAX_REPORTED_ERRORS]:
        err = dict(err)
        if err.get("type") == "json_invalid":
            loc = err.get("loc", ())
            pos = loc[-1] if loc and isinstance(loc[-1], int) else 0
            reason = str((err.get("ctx") or {}).get("error", "JSON decode error"))
            err["msg"], err["input"] = _json_error(exc.body or "", pos, reason), None
        if "input" in err:
            err["input"], clipped = clip_input(err["input"])
            if clipped:
                err["input_clipped_to_chars"] = MAX_ECHOED_CHARS
        errors.append(err)
    if len(raw) > len(errors):
        errors.append({"type": "too_many_errors", "loc": ["body"], "msg": f"and {len(raw) - len(errors)} more errors",
                       "input": None})
    return jsonable_encoder(errors, custom_encoder={Exception: str})


#: a feedback label naming a class outside the schema: ``other: <name>``
OTHER_PREFIX = "other:"


def _other_label(label: str) -> str | None:
    """The name of an ``other: <name>`` feedback label (None for a class label); 422 for an empty name."""
    if not label.startswith(OTHER_PREFIX):
        return None
    name = label[len(OTHER_PREFIX):].strip()
    if not name:
        raise RequestValidationError([{"type": "value_error", "loc": ("body", "label"), "input": label,
                                       "msg": "`other:` needs the name of the class outside the schema"}])
    return name


def _label_refused(name: str, classes, why: str) -> RequestValidationError:
    """A 422 like pydantic's for a label outside the classes, with why (the schema's words)."""
    shown = [repr(c) for c in classes]
    msg = f"Input should be {', '.join(shown[:-1])} or {shown[-1]}" + (f": {why}" if why else "")
    return RequestValidationError([{"type": "literal_error", "loc": ("body", "label"), "msg": msg, "input": name}])


def _validation_message(errors) -> str:
    if errors and errors[0].get("type") == "json_invalid":  # the body did not parse: its one error
        return errors[0]["msg"]
    parts = []
    for err in errors:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def _one_of_schema(schema: dict, model: type) -> None:
    schema["oneOf"] = [{"required": [name]} for name in model.one_of]


class _ExactlyOneOf(BaseModel):
    """A body that takes exactly one of two fields (absent or set, never null).

    The rule is stated once and serves twice: in the schema (``oneOf``), so clients
    and fuzzers see the real contract, and as the check that gives the 422 message.
    """

    one_of: ClassVar[tuple[str, str]]
    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_of_schema)

    @model_validator(mode="after")
    def _exactly_one(self):
        a, b = self.one_of
        if (getattr(self, a) is None) == (getattr(self, b) is None):
            raise ValueError(f"give exactly one of {a!r} or {b!r}")
        return self


def create_app(settings: ServeSettings) -> FastAPI:
    server = _Server(settings)
    classes = server.config.classes
    Label = Literal[classes]  # type: ignore[valid-type]  # unknown labels are refused (422) by validation
    Text = Annotated[str, Field(min_length=1, max_length=settings.max_text_chars)]
    Id = Annotated[str, Field(min_length=1, max_length=100)]

    def _predict_schema(schema: dict, model: type) -> None:
        _one_of_schema(schema, model)
        # The explain cap, stated in the schema too, so that clients and fuzzers see it.
        schema["if"] = {"properties": {"explain": {"const": True}}, "required": ["explain"]}
        schema["then"] = {"properties": {"texts": {"maxItems": settings.max_explain_batch}}}

    class PredictRequest(_ExactlyOneOf):
        """One ``text`` or a batch of ``texts``, not both."""

        model_config = ConfigDict(extra="forbid", json_schema_extra=_predict_schema)
        one_of = ("text", "texts")
        text: Text = None  # type: ignore[assignment]
        texts: Annotated[list[Text], Field(min_length=1, max_length=settings.max_batch)] = None  # type: ignore[assignment]
        explain: StrictBool = Field(False, description=(
            "compute the LF votes before answering and return them; needs the bearer token, "
            f"and at most {settings.max_explain_batch} texts"))

        @model_validator(mode="after")
        def _explain_cap(self):
            if self.explain and self.texts is not None and len(self.texts) > settings.max_explain_batch:
                raise ValueError(f"explain is limited to {settings.max_explain_batch} texts a request, "
                                 f"not {len(self.texts)}")
            return self

    class Prediction(BaseModel):
        id: str
        label: Label
        probabilities: dict[str, float]
        lf_votes: list[int] | None = Field(description="one vote per LF (-1 abstains); null until computed")
        lf_votes_status: Literal[LF_VOTE_STATUSES]  # type: ignore[valid-type]
        lf_votes_error: str | None = Field(None, description="why the LF votes are missing (status error, "
                                                             "skipped or abandoned)")

    class AnsweredPrediction(Prediction):
        predictor: str = Field(description="the predictor that answered (models.predictors): the run's served one, "
                                           "or end_model where it reads LF votes and they failed on this text")

    class LoggedPrediction(Prediction):
        """A prediction as the log holds it now: background LF votes filled in, and named."""

        model_version: str
        created_at: str
        explanation: dict[str, Label] = Field(description="the class each non-abstaining LF voted for, by LF name")

    class PredictResponse(BaseModel):
        model_version: str
        predictor: str = Field(description="the served run's predictor, chosen on dev or pinned by serving.predictor")
        predictions: list[AnsweredPrediction]

    class FeedbackRequest(_ExactlyOneOf):
        """The true label for a served prediction (``prediction_id``) or for a ``text``."""

        one_of = ("prediction_id", "text")
        # checked by ``feedback_class`` (a renamed class is mapped, a retired one refused naming the
        # schema); the schema still lists the classes, so clients and fuzzers send those
        label: Annotated[str, Field(min_length=1, max_length=200, json_schema_extra={"enum": list(classes)},
                                    description="a class (one renamed or merged in the label schema is mapped "
                                                "to its new name), or `other: <name>` for a class outside the "
                                                "schema (kept and counted by `labeling monitor`, not trained on)")]
        prediction_id: Id = None  # type: ignore[assignment]
        text: Text = None  # type: ignore[assignment]

    class FeedbackSpan(BaseModel):
        model_config = ConfigDict(extra="forbid")
        start: Annotated[int, Field(ge=0, description="character offset of the first character")]
        end: Annotated[int, Field(ge=1, description="character offset after the last character")]
        label: Annotated[str, Field(min_length=1, max_length=200, json_schema_extra={"enum": list(classes)})]
        text: Annotated[str, Field(max_length=settings.max_text_chars)] = Field(
            None, description="optional: the text between the offsets, checked")

    class SpanFeedbackRequest(_ExactlyOneOf):
        """A spans project's feedback: the true entities of a served prediction's text or of a
        ``text`` (an empty list: it has none)."""

        one_of = ("prediction_id", "text")
        spans: Annotated[list[FeedbackSpan], Field(max_length=settings.max_batch * 10)]
        prediction_id: Id = None  # type: ignore[assignment]
        text: Text = None  # type: ignore[assignment]

    class FeedbackResponse(BaseModel):
        feedback_id: str
        label: str = Field(description="the class stored (after the schema's mapping), or `other: <name>`")
        prediction_id: str | None
        model_version: str | None  # the version that made the prediction; for a text, the one served then
        replayed: bool  # true when the Idempotency-Key was seen before: nothing new was stored

    multi_label = server.config.task == "multi_label"
    if multi_label:
        class FeedbackRequest(_ExactlyOneOf):  # type: ignore[no-redef]
            """The true label set (class names; ``[]``: none of the classes) for a served prediction
            (``prediction_id``) or for a ``text``."""

            one_of = ("prediction_id", "text")
            labels: Annotated[list[Annotated[str, Field(min_length=1, max_length=200,
                                                        json_schema_extra={"enum": list(classes)})]],
                              Field(max_length=len(classes), description="the classes the text carries (a set: "
                                    "order and repeats do not matter; a renamed class is mapped)")]
            prediction_id: Id = None  # type: ignore[assignment]
            text: Text = None  # type: ignore[assignment]

        class FeedbackResponse(BaseModel):  # type: ignore[no-redef]
            feedback_id: str
            labels: list[Label]
            prediction_id: str | None
            model_version: str | None
            replayed: bool

    FeedbackBody = SpanFeedbackRequest if server.config.task == "spans" else FeedbackRequest

    class PromoteRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        run_id: Id
        force_reason: Annotated[str, Field(min_length=1, max_length=500)] = Field(
            None, description="promote even if the gate refuses; this reason is recorded with who and when")

    class PromoteResponse(BaseModel):
        model_version: str
        previous: str
        promoted: bool = Field(description="false when the run already was the alias's champion")
        forced: bool
        reason: str = Field(description="the promotion gate's verdict")

    class ModelsResponse(BaseModel):
        model_version: str
        alias: str = Field(description="the alias whose run is served; 'latest run (no alias)' while the alias is "
                                       "not set, 'pinned by --run-id (no alias)' for a server started on one run")
        lineage: dict[str, Any]
        lf_votes: str = Field(description="how LF votes are computed: background, inline or off")
        explanations_skipped: int = Field(description="predictions of this worker whose background votes were "
                                                      "dropped because the explainer fell behind")
        lf_votes_restarts: int = Field(0, description="times this worker's LF-votes process was replaced (it is "
                                                      "after a bounded number of texts, to bound its memory)")

    class Health(BaseModel):
        status: str
        model_version: str
        detail: str = ""
        worker: str = Field("", description="the worker process that answered: a random id drawn when it starts. "
                                            "Readiness is per worker; with several, a check sees every id ready")
        lf_votes: Literal["unavailable"] | None = Field(None, description="'unavailable' when the served run's LF "
                                                        "votes cannot be computed (detail says why); absent otherwise")

    worker = uuid.uuid4().hex[:12]  # not the pid: an unauthenticated endpoint need not tell process ids

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        server.start()
        yield
        server.stop()

    app = FastAPI(
        title="labeling model server",
        summary="Predictions from a recorded end model, logged with LF votes; feedback becomes gold labels.",
        lifespan=lifespan,
    )
    app.state.server = server

    app.add_middleware(VersionHeader, server=server)
    # Label Studio's "Retrieve predictions" sends every selected task in one /ls/predict call
    # (it does not batch): that route takes a larger body, and answers it in chunks.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,
                       per_path={"/ls/predict": settings.ls_max_body_bytes})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = validation_errors(exc)
        # ensure_ascii: the echoed input may hold lone surrogates, which UTF-8 cannot encode.
        body = json.dumps({"detail": errors, "message": _validation_message(errors)}, ensure_ascii=True)
        return Response(body, status_code=422, media_type="application/json")

    @app.exception_handler(StoreError)
    async def _store_down(request: Request, exc: StoreError):
        return JSONResponse({"detail": f"store unavailable: {exc}"}, status_code=503, headers={"Retry-After": "1"})

    bearer = HTTPBearer(auto_error=False, description="Token for write endpoints (stored server-side as its sha256).")

    def require_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        check_token(credentials)

    def check_token(credentials: HTTPAuthorizationCredentials | None) -> None:
        presented = hash_token(credentials.credentials) if credentials else ""
        # compare_digest on both paths: timing does not reveal whether a token was sent or how much matched.
        ok = hmac.compare_digest(presented.encode(), settings.token_sha256.encode())
        if not (ok and settings.token_sha256 and credentials):
            raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})

    responses = {400: {"description": "the body cannot be parsed (not UTF-8 JSON)"},
                 401: {"description": "missing or invalid bearer token"}, 413: {"description": "body too large"},
                 503: {"description": "no model ready, or the store is unavailable"}}

    predict_deps = [Depends(require_token)] if settings.predict_requires_token else []

    @app.post("/predict", response_model=PredictResponse, dependencies=predict_deps, responses=responses)
    async def predict(body: PredictRequest, request: Request):
        """Predict one text or a batch; each prediction is logged with its id and probabilities, and the
        LF votes on its text (computed in the background unless ``explain`` is set: that needs the token)."""
        if body.explain and not settings.predict_requires_token:
            # explain spends LF CPU on the caller's behalf: not for anonymous callers. The header is read
            # here, not declared as a dependency: the schema would then say every prediction needs it.
            check_token(await bearer(request))
        texts = [body.text] if body.text is not None else list(body.texts)
        if server.config.task == "spans":
            return await predict_spans(texts, request)
        if multi_label:
            return await predict_sets(texts, body.explain, request)
        served, records, answered = await server.predict(texts, body.explain)
        request.state.model_version = served.run_id
        return PredictResponse(model_version=served.run_id, predictor=served.predictor, predictions=[
            AnsweredPrediction(id=r.id, label=classes[r.label], probabilities=dict(zip(classes, r.probabilities)),
                               lf_votes=None if r.lf_votes is None else list(r.lf_votes),
                               lf_votes_status=r.lf_votes_status, lf_votes_error=r.lf_votes_error, predictor=by)
            for r, by in zip(records, answered)
        ])

    async def predict_spans(texts: list[str], request: Request) -> JSONResponse:
        """A spans run's answer: per text its entities ``{start, end, label, score}`` (character
        offsets, end exclusive; ``score`` in [0, 1]), each prediction logged with its id."""
        served, records = await server.predict_spans(texts)
        request.state.model_version = served.run_id
        return JSONResponse({"model_version": served.run_id,
                             "predictions": [{"id": r.id, "spans": _span_dicts(r.spans)} for r in records]})

    async def predict_sets(texts: list[str], explain: bool, request: Request) -> JSONResponse:
        """A multi-label run's answer: per text its label set (``labels``: class names, ``[]`` for
        none), every class's probability, and the per-class ``thresholds`` (chosen on dev) that made
        the sets. Logged like a class prediction (the set in the log's ``labels``), with the run's
        LF votes (``lf_votes``: per LF the classes it said yes and NOT to, null where it abstained)."""
        served, records, _ = await server.predict(texts, explain)
        request.state.model_version = served.run_id
        return JSONResponse({"model_version": served.run_id, "predictor": "end_model",
                             "thresholds": served_thresholds(served, classes),
                             "predictions": [_set_prediction(r, classes) for r in records]})

    @app.get("/predictions/{prediction_id}", response_model=LoggedPrediction, dependencies=predict_deps,
             responses={**responses, 404: {"description": "unknown prediction id"}})
    def get_prediction(prediction_id: Annotated[str, PathParam(min_length=1, max_length=100)]):
        """A logged prediction with its LF votes, named: the explanation users read."""
        if server.log is None:
            raise HTTPException(503, "store not open yet")
        row = server.log.get_prediction(prediction_id)
        if row is None:
            raise HTTPException(404, f"no prediction {prediction_id!r}")
        if row.get("labels") is not None:  # a multi-label run's prediction: its set
            return JSONResponse({**_set_prediction(row, classes), "model_version": row["model_version"],
                                 "created_at": row["created_at"]})
        if row.get("spans") is not None:  # a spans run's prediction: its entities, no class or votes
            return JSONResponse({"id": row["id"], "model_version": row["model_version"],
                                 "created_at": row["created_at"], "schema_version": row.get("schema_version"),
                                 "spans": _span_dicts(json.loads(row["spans"]))})
        votes = None if row["lf_votes"] is None else json.loads(row["lf_votes"])
        names = server.lf_names(row["model_version"])
        explanation = {} if votes is None or len(votes) != len(names) else {
            name: classes[v] for name, v in zip(names, votes) if v >= 0}
        return LoggedPrediction(id=row["id"], label=classes[row["label"]], model_version=row["model_version"],
                                created_at=row["created_at"],
                                probabilities=dict(zip(classes, json.loads(row["probabilities"]))),
                                lf_votes=votes, lf_votes_status=row["lf_votes_status"],
                                lf_votes_error=row["lf_votes_error"], explanation=explanation)

    @app.post("/feedback", response_model=FeedbackResponse, status_code=201, dependencies=[Depends(require_token)],
              responses={**responses, 200: {"description": "a retry: the stored feedback, nothing new stored"},
                         404: {"description": "unknown prediction id"},
                         409: {"description": "Idempotency-Key reused with a different body"}})
    def feedback(
        body: FeedbackBody,
        idempotency_key: Annotated[str, Header(min_length=8, max_length=200,
                                               description="Unique per logical request; a retry reuses it.")],
    ):
        """Record the true label for a prediction or a text (a spans project: its true entities,
        ``spans``); a retried POST (same key) stores nothing new."""
        if server.log is None:
            raise HTTPException(503, "store not open yet")
        if server.config.task == "spans":
            return span_feedback(body, idempotency_key)
        payload = body.model_dump()
        if multi_label:  # a set: one canonical body, so a retry listing it in another order is the same request
            payload["labels"] = sorted(set(body.labels))
            label, labels = -1, tuple(sorted({classes.index(server.feedback_class(n)) for n in body.labels}))
            other = None
        else:  # "other: <name>": a class outside the schema, stored by name with label -1
            other, labels = _other_label(body.label), None
            label = -1 if other else classes.index(server.feedback_class(body.label))
        row, created = store_feedback(body, idempotency_key, request_sha256(payload), label, labels=labels,
                                      other_label=other)
        answer = ({"labels": [classes[c] for c in json.loads(row["labels"])]} if multi_label
                  else {"label": f"{OTHER_PREFIX} {row['other_label']}" if row.get("other_label")
                        else classes[row["label"]]})
        out = FeedbackResponse(feedback_id=row["id"], **answer, prediction_id=row["prediction_id"],
                               model_version=row["model_version"], replayed=not created)
        return JSONResponse(out.model_dump(), status_code=201 if created else 200)

    def store_feedback(body, idempotency_key: str, body_sha256: str, label: int, *, labels=None,
                       spans=None, other_label=None) -> tuple[dict, bool]:
        """Record one feedback (``FeedbackLog.record_feedback``): 409 for a key reused with
        another body, 404 for an unknown prediction."""
        record = FeedbackRecord(
            id=str(uuid.uuid4()), created_at=utc_now(), idempotency_key=idempotency_key, other_label=other_label,
            request_sha256=body_sha256, label=label, prediction_id=body.prediction_id,
            text=body.text if (body.text is not None and settings.store_text) else None,
            text_sha256=text_sha256(body.text) if body.text is not None else None,
            model_version=server.version or None, labels=labels, spans=spans)
        try:
            return server.log.record_feedback(record)
        except IdempotencyConflict as exc:
            raise HTTPException(409, str(exc)) from None
        except UnknownPrediction as exc:
            raise HTTPException(404, str(exc)) from None

    def span_feedback(body, idempotency_key: str) -> JSONResponse:
        """Span feedback: offsets checked against the text posted, or the one logged with the
        prediction (422 naming the span and the problem; 404 for an unknown prediction)."""
        text = body.text
        if body.prediction_id is not None:
            row = server.log.get_prediction(body.prediction_id)
            if row is None:
                raise HTTPException(404, f"no prediction {body.prediction_id!r}")
            if row["text"] is None:
                raise HTTPException(422, f"prediction {body.prediction_id!r} was logged without its text "
                                         "(serving.store_text = false), so span offsets cannot be checked against "
                                         "it: post the text with the spans instead of prediction_id")
            text = row["text"]
        given = [(s.start, s.end, server.feedback_class(s.label)) for s in body.spans]
        try:
            spans = check_char_spans(given, text, server.config.classes, where="feedback")
        except LabelError as exc:
            raise HTTPException(422, str(exc)) from None
        for s in body.spans:
            if s.text is not None and s.text != text[s.start:s.end]:
                raise HTTPException(422, f"feedback: span [{s.start}, {s.end}] says {s.text!r} but the text there "
                                         f"is {text[s.start:s.end]!r}")
        row, created = store_feedback(body, idempotency_key, request_sha256(body.model_dump()), ABSTAIN,
                                      spans=tuple(spans))
        return JSONResponse({"feedback_id": row["id"], "spans": _span_dicts(json.loads(row["spans"])),
                             "prediction_id": row["prediction_id"], "model_version": row["model_version"],
                             "replayed": not created}, status_code=201 if created else 200)

    @app.get("/models", response_model=ModelsResponse, responses={503: responses[503]})
    def models():
        """The served version (a run id) and its lineage from the store."""
        served = server.current
        if served is None:
            raise HTTPException(503, "no model loaded")
        alias = {"alias": settings.alias, "pinned": PINNED}.get(server.served_via, NO_ALIAS)
        return ModelsResponse(model_version=served.run_id, alias=alias, lineage=served.lineage,
                              lf_votes=settings.lf_votes,
                              explanations_skipped=server.explainer.skipped if server.explainer else 0,
                              lf_votes_restarts=server.explainer.restarts if server.explainer else 0)

    @app.post("/admin/promote", response_model=PromoteResponse, dependencies=[Depends(require_token)],
              responses={**responses, 409: {"description": "the run cannot be served, or the promotion gate "
                                                           "refused it (the detail says why)"}})
    def promote(body: PromoteRequest, request: Request):
        """Load and warm up a run, pass it through the promotion gate (or force it, recorded), move
        the alias so every worker follows, and serve it here."""
        if server.log is None:
            raise HTTPException(503, "store not open yet")
        if settings.run_id:
            raise HTTPException(409, f"this server serves run {settings.run_id} pinned by --run-id and follows no "
                                     f"alias; promote with `labeling promote RUN_ID` (the gate; --force --reason to "
                                     f"override it) and serve without --run-id to follow {settings.alias!r}")
        previous = server.version
        client = request.client.host if request.client else "unknown"
        try:
            served, decision = server.promote(body.run_id, force_reason=body.force_reason,
                                              actor=f"POST /admin/promote from {client}")
        except StoreError:
            raise  # 503: the store is unavailable (the handler above)
        except (ModelLoadError, PromotionRefused) as exc:
            raise HTTPException(409, str(exc)) from None
        except LabelingError as exc:  # e.g. the gold test split the gate needs cannot be read
            raise HTTPException(409, f"cannot gate run {body.run_id!r}: {exc}") from None
        return PromoteResponse(model_version=served.run_id, previous=previous, promoted=decision.promoted,
                               forced=decision.forced, reason=decision.reason)

    @app.get("/livez", response_model=Health, response_model_exclude_none=True)
    def livez():
        return Health(status="ok", model_version=server.version, worker=worker)

    @app.get("/readyz", response_model=Health, response_model_exclude_none=True,
             responses={503: {"model": Health, "description": "not ready"}})
    def readyz():
        """Ready only once a model is loaded and its warm-up prediction passed; ``model_version`` is
        the model actually served. "degraded" (still 200: predictions are served) when the LF votes
        cannot be computed; ``detail`` says why, or why another run (or none) is not served."""
        if server.ready and server.current is not None:
            problem = server.lf_votes_problem()
            if problem:
                detail = "; ".join(filter(None, [f"LF votes unavailable: {problem}", server.last_error]))
                return Health(status="degraded", model_version=server.version, detail=detail, worker=worker,
                              lf_votes="unavailable")
            # detail: why the alias's run is not the one served, when it is not; an older label schema
            detail = "; ".join(filter(None, [server.last_error, server.schema_note()]))
            return Health(status="ready", model_version=server.version, detail=detail, worker=worker)
        return JSONResponse(Health(status="not ready", model_version=server.version, detail=server.last_error,
                                   worker=worker).model_dump(exclude_none=True), status_code=503)

    from .ls_backend import ls_router  # Label Studio's ML-backend protocol under /ls

    app.include_router(ls_router(server, settings))
    return app


def _span_dicts(spans) -> list[dict]:
    """Logged spans ``[start, end, label(, score)]`` as the API's objects."""
    return [dict(zip(("start", "end", "label", "score"), s)) for s in spans]


def app_from_env() -> FastAPI:
    """uvicorn factory for worker processes: settings arrive as JSON in ``$LABELING_SERVE_SETTINGS``."""
    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise LabelingError(f"${SETTINGS_ENV} is not set; start the server with python -m pipelines.serve")
    # A worker (started by uvicorn's supervisor from its main thread) ends with the supervisor, kill -9
    # included: else it keeps the port and answers for good. Nothing happens with one worker (no parent).
    die_with_parent(death_signal=True)
    return create_app(ServeSettings.from_json(text))
