"""Label Studio's ML-backend protocol, served under ``/ls/`` beside ``/predict``.

A Label Studio user connects ``http://host:port/ls/`` (Settings > Model > Connect model,
or ``labeling review connect``); Label Studio joins each path onto that URL
(``ml/api_connector.py`` of Label Studio 1.23.2):

- ``GET /ls/health``, ``GET /ls/``: 200 at once, loading nothing (Label Studio waits 1 s).
- ``POST /ls/setup`` -> ``{"model_version"}``: the served run id. Label Studio skips a
  task that already holds a prediction of the version it gets here, so the version is
  the run actually served, and changes exactly when that run changes (a promotion, a
  rollback, an alias moved by a retrain: the live swap ``/predict`` follows too).
- ``POST /ls/predict`` -> ``{"results": [...]}``, one per task in order: the served end
  model's class (for the label config's ``Choices`` control, its names read from the
  config Label Studio sends) scored by its probability, with the row's LF votes as a
  readable explanation in the region's ``meta.text``. Texts go through the server's own
  prediction path (logged like any ``/predict``), in chunks of ``max_explain_batch``.
- ``POST /ls/webhook``: acknowledged at once (Label Studio waits 1 s and never retries);
  the work happens in the background, one event after the other, its outcome at
  ``GET /ls/jobs/<id>`` and in the server log. ``ANNOTATION_CREATED``/``UPDATED`` store
  the answer as gold (a multi-label project's: the set it ticks), ``ANNOTATIONS_DELETED``
  removes it; an answer that gives no single declared class (multi-label: ticks an undeclared
  one) keeps the gold stored before and is reported. ``START_TRAINING`` runs a
  retrain (``labeling retrain`` in a child process, so the server keeps answering) with
  the project's gold; one at a time, a second press joins the running job. The promotion
  gate decides as for any run (``promotion.auto``).
- ``GET /ls/versions`` -> ``{"versions": [run ids]}``.

A spans project (``project.task = "spans"``) answers a ``<Labels>`` control on a ``<Text>``
whose labels are its entity types: ``/ls/predict`` gives the served NER run's entities as
``labels`` regions (character offsets, end exclusive, each with its ``score``; the task's
score is its least sure entity's), a webhook answer is stored as gold spans
(``store.gold_spans``) after the offset checks a pull makes (``review.spans.result_spans``),
and ``ANNOTATIONS_DELETED`` removes the gold spans of the deleted answers.

Basic auth (``ServeSettings.ls_basic_auth_sha256``): when set, every ``/ls`` call needs it,
as Label Studio sends it on every call. Jobs are rows of the store (``labeling.store.jobs``):
any worker answers ``/ls/jobs/<id>``, and a START_TRAINING press on any worker joins the
training job that runs on another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, ConfigDict, Field

from ..errors import LabelingError
from ..review.gold import GoldStore, ReviewTask
from ..review.label_studio import (
    KEY_FIELD,
    LABEL_NAME,
    TEXT_NAME,
    ReviewError,
    Annotation,
    UnclearAnswer,
    annotation_choices,
    annotator_of,
    describe_unclear,
    format_votes,
    unclear_reason,
)
from ..review.spans import result_spans, span_result
from ..store.gold_spans import GoldSpans
from ..store.jobs import MAX_JOBS_KEPT, JobStore

logger = logging.getLogger(__name__)

GOLD_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED")
DELETE_ACTIONS = ("ANNOTATIONS_DELETED",)
TRAIN_ACTIONS = ("START_TRAINING",)
# Label Studio sends every project event to the backend's webhook: these are acknowledged and left alone.
IGNORED_ACTIONS = ("PROJECT_CREATED", "PROJECT_UPDATED", "PROJECT_DELETED", "TASKS_CREATED", "TASKS_DELETED",
                   "LABEL_LINK_CREATED", "LABEL_LINK_UPDATED", "LABEL_LINK_DELETED")
ACTIONS = GOLD_ACTIONS + DELETE_ACTIONS + TRAIN_ACTIONS + IGNORED_ACTIONS
PROGRESS_EVERY_S = 0.5  # a training job's progress is written to the store at most this often


class LabelConfigError(LabelingError):
    """A Label Studio label config this project's model cannot answer for."""


@dataclass(frozen=True)
class ChoicesControl:
    """The ``Choices`` control a prediction answers: its name, the object it labels, the
    task-data field that object shows, and its class names."""

    from_name: str
    to_name: str
    data_key: str
    values: tuple[str, ...]
    choice: str = "single"  # the control's ``choice`` attribute: "multiple" ticks a set


def _xml(label_config: str) -> ET.Element:
    try:
        return ET.fromstring(label_config)
    except ET.ParseError as exc:
        raise LabelConfigError(f"the label config is not XML: {exc}") from None


def _shown_field(root: ET.Element, control: ET.Element, tag: str, objects: tuple[str, ...] = ()) -> tuple[str, str, str]:
    """(name, the object it labels, the task field that object shows) of ``control``; raises
    ``LabelConfigError`` for a missing name/toName, or an object that shows no ``$field`` (or,
    with ``objects``, is not one of those tags)."""
    name, to_name = control.get("name"), control.get("toName")
    if not name or not to_name:
        raise LabelConfigError(f"the <{tag}> control {name!r} needs both name and toName")
    to_name = to_name.split(",")[0]
    target = next((el for el in root.iter() if el.get("name") == to_name and el is not control), None)
    value = target.get("value", "") if target is not None else ""
    if not value.startswith("$") or len(value) < 2 or objects and target.tag not in objects:
        kind = " or ".join(f"<{o}>" for o in objects) if objects else "an object tag"
        raise LabelConfigError(f"the <{tag}> control {name!r} labels {to_name!r}, which is not {kind} showing a "
                               "task field (value=\"$field\")")
    return name, to_name, value[1:]


def _controls(root, tag: str, need: str) -> list:
    controls = [el for el in root.iter() if el.tag == tag]
    if not controls:
        raise LabelConfigError(f"the label config has no <{tag}> control: {need}")
    return controls


def parse_label_config(label_config: str, classes: tuple[str, ...]) -> ChoicesControl:
    """The ``Choices`` control of ``label_config`` whose choices are the project's ``classes``.

    Raises ``LabelConfigError`` naming the problem: not XML, no ``Choices`` control, no
    control whose choice values are exactly ``classes``, or an object without a ``$field``.
    """
    root = _xml(label_config)
    seen = []
    for control in _controls(root, "Choices", f"this model predicts one of the classes {list(classes)} for a text, "
                                              "and needs a <Choices> control to answer in"):
        values = tuple(str(c.get("value", "")) for c in control.iter("Choice"))
        seen.append(f"{control.get('name')!r}: {list(values)}")
        if set(values) != set(classes):
            continue
        name, to_name, field = _shown_field(root, control, "Choices")
        return ChoicesControl(name, to_name, field, values, control.get("choice") or "single")
    raise LabelConfigError(f"no <Choices> control of the label config has the project's classes {list(classes)} "
                           f"as its choices (found {'; '.join(seen)}): rename the choices to the project's classes")


@dataclass(frozen=True)
class LabelsControl:
    """The ``Labels`` control a spans prediction answers: its name, the ``<Text>`` it marks,
    the task-data field that text shows, and its entity types."""

    from_name: str
    to_name: str
    data_key: str
    values: tuple[str, ...]


def parse_labels_config(label_config: str, types: tuple[str, ...]) -> LabelsControl:
    """The ``Labels`` control of ``label_config`` on a ``<Text>`` whose labels are the spans
    project's entity ``types`` (``project.classes``).

    Raises ``LabelConfigError`` naming the problem: not XML, no ``Labels`` control, no control
    whose labels are exactly ``types`` (naming the types missing and those extra), or a
    control that marks no ``<Text>`` showing a ``$field``."""
    root = _xml(label_config)
    seen = []
    for control in _controls(root, "Labels", f"this spans model marks entities of the types {list(types)} in a "
                                             "text, and needs a <Labels> control on a <Text> to answer in"):
        values = tuple(str(c.get("value", "")) for c in control.iter("Label"))
        if set(values) == set(types):
            name, to_name, field = _shown_field(root, control, "Labels", ("Text",))
            return LabelsControl(name, to_name, field, values)
        missing, extra = [t for t in types if t not in values], [v for v in values if v not in types]
        seen.append(f"{control.get('name')!r}" + (f" lacks the entity type(s) {missing}" if missing else "")
                    + (" and" if missing and extra else "")
                    + (f" has {extra}, not in the project's types" if extra else ""))
    raise LabelConfigError(f"no <Labels> control of the label config has the project's entity types {list(types)} "
                           f"as its labels: {'; '.join(seen)}; make the labels the project's classes")


def prediction_result(control: ChoicesControl, class_name: str | list[str], explanation: str) -> list[dict]:
    """A prediction's ``result``: ``class_name`` (a multi-label run: its set, a list) ticked in
    ``control``, the explanation in ``meta``."""
    names = class_name if isinstance(class_name, list) else [class_name]
    return [{"from_name": control.from_name, "to_name": control.to_name, "type": "choices",
             "value": {"choices": names}, "meta": {"text": [explanation]}}]


def set_confidence(probabilities) -> float:
    """A multi-label prediction's score: its least sure class's probability of the side it took
    (``max(p, 1 - p)``, lowest over the classes), so Label Studio shows the doubtful sets first."""
    p = np.asarray(probabilities, dtype=np.float64)
    return float(np.maximum(p, 1 - p).min()) if p.size else 1.0


def job_view(row: dict) -> dict:
    """A job row of the store as ``GET /ls/jobs/<id>`` shows it."""
    return {"id": row["id"], "kind": row["kind"], "action": row["action"], "status": row["status"],
            "progress": row["progress"], "outcome": row["outcome"], "error": row["error"], "presses": row["presses"],
            "age_s": round(time.time() - row["created_at"], 3)}


class LabelStudioBackend:
    """The background side of ``/ls/webhook``: one thread applies events to the gold store in
    arrival order; a training job runs ``labeling retrain`` as a child process, one at a time."""

    def __init__(self, server):
        self.server = server
        self.config = server.config
        self._jobs: JobStore | None = None
        self._lock = threading.Lock()
        self._events = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ls-events")
        self._proc: subprocess.Popen | None = None

    @property
    def jobs(self) -> JobStore:
        """The store's ``ls_jobs`` (opened at first use: the server opens the store after start-up)."""
        with self._lock:
            if self._jobs is None:
                self._jobs = JobStore(self.config.resolve(self.config.store), synchronous=self.server.settings.synchronous)
            return self._jobs

    def close(self) -> None:
        """Finish the queued events; stop a running retrain (its job says so): a retrain
        outliving its server would record a run nobody asked to watch."""
        self._events.shutdown(wait=True, cancel_futures=False)
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        with self._lock:
            if self._jobs is not None:
                self._jobs.close()
                self._jobs = None

    def submit_event(self, action: str, payload: dict) -> str:
        job_id = uuid.uuid4().hex[:16]
        self.jobs.add(job_id, "event", action)
        self._events.submit(self._run_event, job_id, action, payload)
        return job_id

    def _run_event(self, job_id: str, action: str, payload: dict) -> None:
        try:
            self.jobs.update(job_id, status="running")
            spans = self.config.task == "spans"
            if action in GOLD_ACTIONS:
                outcome = self._store_span_answers(payload) if spans else self._store_answers(payload)
            else:
                outcome = self._remove_span_answers(payload) if spans else self._remove_answers(payload)
            self.jobs.update(job_id, status="done", outcome=outcome)
            level = logging.WARNING if outcome.get("kept") else logging.INFO
            logger.log(level, "Label Studio %s (job %s): %s", action, job_id, outcome.get("summary"))
        except Exception as exc:  # an event's failure is reported on its job, never raised into the executor
            self._failed(job_id, action, exc)

    def _failed(self, job_id: str, action: str, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        logger.error("Label Studio %s (job %s) failed: %s", action, job_id, error)
        try:
            self.jobs.update(job_id, status="failed", error=error)
        except Exception as again:  # the store itself failed: the log says so
            logger.error("Label Studio job %s: cannot record its failure: %s", job_id, again)

    def _store(self) -> GoldStore:
        return GoldStore(self.config.resolve(self.config.store))

    def _answered(self, payload: dict, parse) -> tuple[dict, str, list[dict], object]:
        """An answer event's project, its review title, its annotations and the label config's
        control (``parse``; None when the config is absent or not this project's)."""
        project = payload["project"]
        title = str(project.get("title") or self.config.review.title or self.config.name)
        annotations = payload.get("annotations") if "annotation" not in payload else [payload["annotation"]]
        control = None
        if project.get("label_config"):
            try:
                control = parse(project["label_config"], tuple(self.config.classes))
            except LabelConfigError:
                control = None
        return project, title, annotations, control

    @staticmethod
    def _task_of(store: GoldStore, payload: dict, project: dict, title: str, ann: dict) -> tuple[int, dict, str]:
        """(Label Studio task id, task data, our task key) of an answer: the key pushed with the
        task, else the key of the task pushed as that id, else ``ls:<project id>:<task id>``."""
        task = payload.get("task") if isinstance(payload.get("task"), dict) else {}
        task_id = int(task.get("id") or ann.get("task"))
        data = task.get("data") or {}
        key = (str(data[KEY_FIELD]) if data.get(KEY_FIELD) is not None
               else store.task_key_for(title, task_id) or f"ls:{project.get('id')}:{task_id}")
        return task_id, data, key

    def _store_answers(self, payload: dict) -> dict:
        project, title, annotations, control = self._answered(payload, parse_label_config)
        from_name = control.from_name if control else "label"
        data_key = control.data_key if control else "text"
        counts = {"inserted": 0, "updated": 0, "unchanged": 0, "skipped": 0}
        unclear: list[UnclearAnswer] = []
        classes, multi_label = list(self.config.classes), self.config.task == "multi_label"
        with self._store() as store:
            for ann in annotations:
                task_id, data, key = self._task_of(store, payload, project, title, ann)
                if ann.get("was_cancelled"):
                    counts["skipped"] += 1
                    continue
                chosen = annotation_choices(ann.get("result"), from_name)
                who = annotator_of(ann)
                undeclared = [c for c in chosen or () if c not in classes]
                if multi_label and undeclared or not multi_label and (chosen is None or len(chosen) != 1 or undeclared):
                    reason = (f"the undeclared class {undeclared[0]!r}" if undeclared
                              else unclear_reason(ann.get("result"), from_name))
                    unclear.append(UnclearAnswer(int(ann["id"]), key, who, reason))
                    continue
                text = data.get(data_key)
                if text is None and store.task_key_for(title, task_id) is None and not data.get(KEY_FIELD):
                    counts["skipped"] += 1  # no text to learn from: nothing to store
                    continue
                review_task = ReviewTask(key, "label_studio", None, str(text or ""), "label_studio")
                # a multi-label answer is the set it ticks (none ticked: the empty set, a row with no class)
                labels = tuple(sorted({classes.index(c) for c in chosen or ()})) if multi_label else None
                answer = Annotation(int(ann["id"]), key, who, -1 if multi_label else classes.index(chosen[0]),
                                    str(ann.get("updated_at") or ann.get("created_at") or ""), labels)
                counts[store.record_answer(title, review_task, task_id, answer)] += 1
        report = (describe_unclear(unclear, "tick only the project's classes to change it") if multi_label
                  else describe_unclear(unclear))
        summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "nothing stored"
        return {**counts, "kept": len(unclear), "report": report,
                "kept_tasks": sorted({u.task_key for u in unclear}),
                "summary": summary + (f"; {report}" if report else "")}

    def _store_span_answers(self, payload: dict) -> dict:
        """A spans project's answers -> ``gold_spans``, each answer's spans checked against its
        task's text as a pull checks them (``review.spans.result_spans``); an answer that fails
        the check keeps the gold stored before and is reported."""
        project, title, annotations, control = self._answered(payload, parse_labels_config)
        types = tuple(self.config.classes)
        from_name, data_key = (control.from_name, control.data_key) if control else (LABEL_NAME, TEXT_NAME)
        counts = {"stored": 0, "spans": 0, "skipped": 0}
        kept: list[UnclearAnswer] = []
        with self._store() as store, GoldSpans(self.config.resolve(self.config.store)) as gold:
            for ann in annotations:
                _, data, key = self._task_of(store, payload, project, title, ann)
                text = data.get(data_key)
                if ann.get("was_cancelled") or not isinstance(text, str):
                    counts["skipped"] += 1  # a skip, or no text to check the offsets against
                    continue
                try:
                    spans = result_spans(ann.get("result"), text, where=f"task {key!r}", types=types,
                                         from_name=from_name)
                except ReviewError as exc:
                    kept.append(UnclearAnswer(int(ann["id"]), key, annotator_of(ann), str(exc)))
                    continue
                counts["spans"] += gold.replace(self.config.name, {key: (text, spans)},
                                                annotation_ids={key: int(ann["id"])})
                counts["stored"] += 1
        report = "; ".join(f"{u.reason} (annotation {u.annotation_id}): its gold spans were kept" for u in kept)
        summary = (f"{counts['spans']} gold spans of {counts['stored']} answer(s) stored"
                   + (f", {counts['skipped']} skipped" if counts["skipped"] else ""))
        return {**counts, "kept": len(kept), "report": report, "kept_tasks": sorted({u.task_key for u in kept}),
                "summary": summary + (f"; {report}" if report else "")}

    def _remove_span_answers(self, payload: dict) -> dict:
        ids = [int(a["id"]) for a in payload["annotations"]]
        with GoldSpans(self.config.resolve(self.config.store)) as gold:
            tasks = gold.remove_answers(self.config.name, ids)
        return {"removed": len(tasks), "tasks": tasks, "annotations": ids,
                "summary": f"gold spans of {len(tasks)} task(s) removed for {len(ids)} annotation(s) deleted "
                           "in Label Studio"}

    def _remove_answers(self, payload: dict) -> dict:
        ids = [int(a["id"]) for a in payload["annotations"]]
        with self._store() as store:
            removed = store.remove_answers(ids)
        return {"removed": removed, "annotations": ids,
                "summary": f"{removed} gold answer(s) removed for {len(ids)} annotation(s) deleted in Label Studio"}

    def start_training(self) -> tuple[str, bool]:
        """The running training job's id (joined: ``True``), whichever worker runs it, or a new
        one's, started here. The claim is one store transaction (``JobStore.claim_training``)."""
        job, joined = self.jobs.claim_training(uuid.uuid4().hex[:16])
        if not joined:
            threading.Thread(target=self._train, args=(job["id"],), name="ls-training", daemon=True).start()
        return job["id"], joined

    def _train(self, job_id: str) -> None:
        s = self.server.settings
        command = [sys.executable, "-m", "labeling", "retrain", "--config", s.config_path, "--json", "--progress"]
        for override in s.overrides:
            command += ["--set", override]
        logger.warning("Label Studio START_TRAINING (job %s): retrain started", job_id)
        try:
            self.jobs.update(job_id, status="running", progress="retrain started")
            proc = self._proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out_lines: list[str] = []
            reader = threading.Thread(target=lambda: out_lines.append(proc.stdout.read()), daemon=True)
            reader.start()
            tail: list[str] = []
            saved = 0.0
            for chunk in iter(lambda: proc.stderr.readline(), ""):
                for line in chunk.replace("\r", "\n").splitlines():
                    if line.strip():
                        tail = (tail + [line.strip()[-200:]])[-20:]
                if tail and time.monotonic() - saved > PROGRESS_EVERY_S:  # a progress bar writes many lines
                    self.jobs.update(job_id, progress=tail[-1])
                    saved = time.monotonic()
            code = proc.wait()
            reader.join(timeout=10)
            if code != 0:
                raise LabelingError(f"retrain exited with {code}: {' | '.join(tail[-5:])}")
            out = "".join(out_lines)
            # the JSON record is the last thing printed; stage notes may come before it
            start = 0 if out.startswith("{") else out.find("\n{") + 1
            result = json.loads(out[start:])
            promotion = result.get("promotion") or {}
            outcome = {"run_id": result.get("run_id"), "promoted": bool(promotion.get("promoted")),
                       "reason": promotion.get("reason", "")}
            self.jobs.update(job_id, status="done", progress="finished", outcome=outcome)
            logger.warning("Label Studio START_TRAINING (job %s): run %s, %s: %s", job_id, outcome["run_id"],
                           "promoted" if outcome["promoted"] else "not promoted", outcome["reason"])
        except Exception as exc:
            self._failed(job_id, "START_TRAINING", exc)


# -- HTTP edge -----------------------------------------------------------------


class SetupRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    project: str | int | None = None
    schema_: str | None = Field(None, alias="schema", description="the project's label config")
    hostname: str | None = None
    access_token: str | None = None
    extra_params: dict | None = None


class SetupResponse(BaseModel):
    model_version: str


class LSTask(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int | None = None
    data: dict[str, Any]


class LSPredictRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    tasks: list[LSTask] = Field(max_length=100_000)
    label_config: str = Field(min_length=1, max_length=1_000_000)
    project: str | int | None = None
    params: dict | None = None


class LSPrediction(BaseModel):
    result: list[dict]
    score: float
    model_version: str


class LSPredictResponse(BaseModel):
    results: list[LSPrediction]


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    action: str = Field(min_length=1, max_length=100)
    project: dict | None = None
    annotation: dict | None = None
    annotations: list[dict] | None = None
    task: dict | None = None


class WebhookAck(BaseModel):
    status: str
    job: str | None = Field(None, description="GET /ls/jobs/<job> for the outcome")
    detail: str = ""


class VersionsResponse(BaseModel):
    versions: list[str]


def hash_basic_auth(user: str, password: str) -> str:
    return hashlib.sha256(f"{user}:{password}".encode("utf-8")).hexdigest()


def _webhook_problem(body: WebhookRequest) -> str:
    if body.action not in ACTIONS:
        return f"unknown action {body.action!r}; expected one of {', '.join(ACTIONS)}"
    if body.action in IGNORED_ACTIONS:
        return ""
    if body.project is None:
        return f"{body.action} needs 'project' (the Label Studio project)"
    if body.action in GOLD_ACTIONS:
        answers = [body.annotation] if body.annotation is not None else body.annotations
        if not answers:
            return f"{body.action} needs 'annotation' (the answer)"
        for ann in answers:
            if not isinstance(ann.get("id"), int) or ann.get("result") is not None and not isinstance(ann["result"], list):
                return f"{body.action}: an annotation needs an integer 'id' and a list 'result'"
            task = body.task or {}
            if not isinstance(task.get("id") or ann.get("task"), int):
                return f"{body.action}: the annotation's task id is missing ('task' with an integer 'id')"
    if body.action in DELETE_ACTIONS:
        if not body.annotations or not all(isinstance(a.get("id"), int) for a in body.annotations):
            return f"{body.action} needs 'annotations': a list of objects with an integer 'id'"
    return ""


def ls_router(server, settings) -> APIRouter:
    """The ``/ls`` routes over ``server`` (``app._Server``): its served model, store and LFs."""
    classes = tuple(server.config.classes)
    multi_label = server.config.task == "multi_label"
    spans_task = server.config.task == "spans"
    parse = parse_labels_config if spans_task else parse_label_config
    backend = LabelStudioBackend(server)
    server.ls_backend = backend
    basic = HTTPBasic(auto_error=False, description="Label Studio's ML backend Basic auth (when the server sets it)")

    def require_basic(credentials: HTTPBasicCredentials | None = Depends(basic)) -> None:
        expected = settings.ls_basic_auth_sha256
        if not expected:
            return
        presented = hash_basic_auth(credentials.username, credentials.password) if credentials else ""
        if not (hmac.compare_digest(presented.encode(), expected.encode()) and credentials):
            raise HTTPException(401, "missing or invalid Basic auth for the Label Studio backend",
                                headers={"WWW-Authenticate": "Basic"})

    # Declared only when set: the schema then says exactly which calls need it.
    router = APIRouter(prefix="/ls", tags=["Label Studio ML backend"],
                       dependencies=[Depends(require_basic)] if settings.ls_basic_auth_sha256 else [])
    errors = {401: {"description": "Basic auth required"}, 422: {"description": "the request names the problem"},
              503: {"description": "no model is ready"}}

    def served_version() -> str:
        if server.current is None or not server.ready:
            raise HTTPException(503, "no model is ready yet")
        return server.version

    @router.get("/health")
    @router.get("/")
    async def health():
        """Up: answers at once, loads nothing."""
        return {"status": "UP", "model_class": "labeling", "model_version": server.version}

    @router.post("/setup", response_model=SetupResponse, responses=errors)
    async def setup(body: SetupRequest):
        """The served run id: Label Studio re-predicts a task only when this changes."""
        if body.schema_:
            try:
                parse(body.schema_, classes)
            except LabelConfigError as exc:
                raise HTTPException(422, str(exc)) from None
        return SetupResponse(model_version=served_version())

    @router.post("/predict", response_model=LSPredictResponse, responses=errors)
    async def predict(body: LSPredictRequest):
        """One pre-annotation per task, in order: the served model's class and probability, the LF votes."""
        try:
            control = parse(body.label_config, classes)
        except LabelConfigError as exc:
            raise HTTPException(422, str(exc)) from None
        if multi_label and control.choice != "multiple":
            raise HTTPException(422, f"the <Choices> control {control.from_name!r} takes one class (choice="
                                     f"{control.choice!r}); a multi-label run answers a set: set choice=\"multiple\"")
        texts = []
        for i, task in enumerate(body.tasks):
            value = task.data.get(control.data_key)
            if not isinstance(value, str) or not value or len(value) > settings.max_text_chars:
                raise HTTPException(422, f"task {task.id if task.id is not None else f'#{i}'}: data.{control.data_key} "
                                         f"(shown by {control.to_name!r}) must be a text of 1 to "
                                         f"{settings.max_text_chars} characters")
            texts.append(value)
        served_version()
        results = []
        chunk = max(1, settings.max_explain_batch)
        for start in range(0, len(texts), chunk):
            if spans_task:  # the entities with their scores; the text's score is its least sure entity's
                served, records = await server.predict_spans(texts[start:start + chunk])
                results += [LSPrediction(
                    result=span_result([(s[0], s[1], s[2]) for s in r.spans], text, from_name=control.from_name,
                                       to_name=control.to_name, scores=[s[3] for s in r.spans]),
                    score=min((float(s[3]) for s in r.spans), default=1.0), model_version=served.run_id)
                    for r, text in zip(records, texts[start:start + chunk])]
                continue
            # the served run's own LFs explain its answers; a live swap between chunks brings its LFs
            current = server.current
            explain = current is not None and bool(current.lfs) and not current.lfs_error
            served, records, _ = await server.predict(texts[start:start + chunk], explain)
            names = [lf.name for lf in served.lfs]
            if multi_label:  # the set its per-class thresholds (chosen on dev) give, every class's probability
                results += [LSPrediction(
                    result=prediction_result(control, [classes[c] for c in r.labels], "probabilities: " + ", ".join(
                        f"{c} {p:.2f}" for c, p in zip(classes, r.probabilities)) + f"; model {served.run_id}"),
                    score=set_confidence(r.probabilities), model_version=served.run_id) for r in records]
                continue
            for r in records:
                if r.lf_votes is not None and names:
                    explanation = "LF votes: " + format_votes(r.lf_votes, names, classes)
                else:
                    explanation = f"no LF votes: {r.lf_votes_error or served.lfs_error or 'the run has no LFs'}"
                results.append(LSPrediction(
                    result=prediction_result(control, classes[r.label], f"{explanation}; model {served.run_id}"),
                    score=float(r.probabilities[r.label]), model_version=served.run_id))
        return LSPredictResponse(results=results)

    @router.post("/webhook", response_model=WebhookAck, responses=errors)
    async def webhook(body: WebhookRequest):
        """Acknowledged at once; the work runs in the background (``GET /ls/jobs/<id>``)."""
        problem = _webhook_problem(body)
        if problem:
            raise HTTPException(422, problem)
        if body.action in IGNORED_ACTIONS:
            return WebhookAck(status="ignored", detail=f"{body.action} needs nothing from this backend")
        if body.action in TRAIN_ACTIONS:
            job, joined = backend.start_training()
            detail = ("a training job is already running: this press joined it (coalesced)" if joined
                      else "training started")
            return WebhookAck(status="coalesced" if joined else "accepted", job=job, detail=detail)
        job = backend.submit_event(body.action, body.model_dump(exclude_none=True))
        return WebhookAck(status="accepted", job=job)

    @router.get("/jobs", responses=errors)
    def recent_jobs(limit: int = Query(20, ge=1, le=MAX_JOBS_KEPT)):
        """The latest jobs of every worker, newest first."""
        return {"jobs": [job_view(row) for row in backend.jobs.recent(limit)]}

    @router.get("/jobs/{job_id}", responses={**errors, 404: {"description": "unknown job"}})
    def job_status(job_id: str):
        """A webhook event's or training job's status, progress and outcome (any worker's)."""
        row = backend.jobs.get(job_id)
        if row is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job_view(row)

    @router.get("/versions", response_model=VersionsResponse, responses=errors)
    def versions():
        """Every recorded run id, oldest first."""
        if server.log is None:
            raise HTTPException(503, "store not open yet")
        return VersionsResponse(versions=server.log.run_ids())

    return router


def read_basic_auth_file(path: str) -> str:
    """``user:password`` from the first line of ``path`` -> the sha256 the server keeps."""
    with open(path, encoding="utf-8") as handle:
        line = handle.readline().strip()
    user, sep, password = line.partition(":")
    if not sep or not user or not password:
        raise LabelingError(f"{path}: the Basic auth file needs one line 'user:password'")
    return hash_basic_auth(user, password)


__all__ = ["ChoicesControl", "LabelConfigError", "LabelStudioBackend", "LabelsControl", "parse_labels_config", "hash_basic_auth", "job_view", "ls_router",
           "parse_label_config", "prediction_result", "read_basic_auth_file"]
