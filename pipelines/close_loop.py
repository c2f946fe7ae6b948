"""Close the loop on YouTube: weak LFs -> review in Label Studio -> refine -> retrain.

    scripts/label_studio.sh install && eval "$(scripts/label_studio.sh start)"
    python -m pipelines.close_loop [--n 50] [--strategy entropy] [--workdir DIR]

Starting from a weak LF set (``labeling_functions.youtube_spam_weak``), it
trains and evaluates once, pushes ``n`` train rows to Label Studio, answers
them as a simulated reviewer would (with the dataset's own gold labels,
through Label Studio's API), pulls the answers into the store, refines (the
suggested keyword LFs that the dev split confirms are written to a module and
added), and retrains with the gold labels. It prints the end model's test
accuracy before and after. Everything it writes goes to ``--workdir``.

It is a simulation, so it never writes into the project's own review project
in Label Studio: it uses its own (``<project name> (close_loop simulation)``
unless ``--title`` names another), refuses the title ``review push`` uses, and
its simulated reviewer marks its answers (``labeling.review.label_studio.program_result``)
and skips any task that already has an answer, reporting how many.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from labeling.config import load_config
from labeling.data.datasets import load_dataset
from labeling.errors import ConfigError
from labeling.review.gold import GoldStore
from labeling.review.refinement import format_lf_code, format_report
from labeling.pipeline.retrain import run_retrain
from labeling.review.label_studio import LabelStudioReview
from labeling.review.jobs import label_studio_from_env, pull_review, push_review, refine_from_gold, review_title

WEAK_MODULE = "labeling_functions.youtube_spam_weak"
REFINED_MODULE = "refined_lfs"
PROGRAM = "close_loop"


@dataclass(frozen=True)
class LoopResult:
    before: float
    after: float
    pushed: int
    annotated: int
    accepted_lfs: tuple[str, ...]
    report: str
    skipped: int = 0  # pushed tasks that already had an answer: left alone


@dataclass(frozen=True)
class ReviewerResult:
    answered: int
    skipped: int  # tasks that already held an answer (a person's or an earlier run's)


def simulation_title(config) -> str:
    return f"{config.name} (close_loop simulation)"


def simulated_reviewer(config, review: LabelStudioReview, task_ids: dict[str, int]) -> ReviewerResult:
    """Answer each pushed task with the dataset's gold label, through the Label Studio API,
    marked as this program's; a task that already has an answer is skipped and counted."""
    splits = load_dataset(config)
    gold = dict(zip(splits.train["id"].astype(str), splits.train["label"].astype(int)))
    with GoldStore(config.resolve(config.store)) as store:
        rows = {r["task_key"]: r["row_id"] for r in store.tasks()}
    answered = skipped = 0
    for key, task_id in sorted(task_ids.items()):
        label = gold.get(str(rows.get(key)), -1)
        if label >= 0:
            if review.annotate(task_id, label, program=PROGRAM) is None:
                skipped += 1
            else:
                answered += 1
    return ReviewerResult(answered, skipped)


def run_loop(config_path: str, workdir: Path, *, n: int = 50, strategy: str = "entropy", title: str = "",
             weak_module: str = WEAK_MODULE, httpx_client=None, log=print) -> LoopResult:
    workdir.mkdir(parents=True, exist_ok=True)
    # No incumbent label model: the loop adds LFs (some near-copies of each other, which
    # Snorkel's model handles badly), so every candidate competes on dev plus gold.
    # One fixed end model (the project's sklearn settings) before and after, so the change is
    # what the reviews, LFs and gold did, not another end-model choice made on a dev split the
    # gold rows themselves change.
    base = [f"lfs.modules={json.dumps([weak_module])}", "label_model.type=auto", 'label_model.prefer=""',
            "end_model.type=sklearn",
            f"project.store={json.dumps(str(workdir / 'loop.db'))}",
            f"project.artifacts={json.dumps(str(workdir / 'artifacts'))}"]
    users_title = review_title(load_config(config_path))
    title = title or simulation_title(load_config(config_path))
    if title == users_title:
        raise ConfigError(f"Label Studio project {title!r} is the one `review push` uses for this project; "
                          "a simulation never writes into it: pick another --title")
    base.append(f"review.title={json.dumps(title)}")
    config = load_config(config_path, base)

    before = run_retrain(config)
    log(f"before: end model test accuracy {before.metric('end model'):.4f} ({len(before.lfs)} LFs, no gold)")
    review = label_studio_from_env(config, httpx_client=httpx_client)
    pushed = push_review(config, review, strategy=strategy, n=n)
    log(f"pushed {pushed.result.created} tasks to Label Studio project {review_title(config)!r} "
        f"(strategy {strategy}, {pushed.result.skipped} already there)")
    reviewer = simulated_reviewer(config, review, pushed.result.task_ids)
    annotated = reviewer.answered
    pulled, disagreements = pull_review(config, review)
    log(f"simulated reviewer answered {annotated}, skipped {reviewer.skipped} already answered; pulled "
        f"{pulled.stored} answers ({pulled.inserted} new), {len(disagreements)} disagreements")

    report = refine_from_gold(config)
    text = format_report(report, config.classes)
    log(text)
    accepted = report.accepted()
    module = workdir / f"{REFINED_MODULE}.py"
    module.write_text(format_lf_code(accepted, config.classes, taken=[n for n, _ in before.lfs]), encoding="utf-8")
    modules = [weak_module] + ([REFINED_MODULE] if accepted else [])
    after_config = load_config(config_path, base + [f"lfs.modules={json.dumps(modules)}",
                                                     f"lfs.root={json.dumps(str(workdir))}"])
    after = run_retrain(after_config)
    result = LoopResult(before.metric("end model"), after.metric("end model"), pushed.result.created, annotated,
                        tuple(s.ngram for s in accepted), text, reviewer.skipped)
    log(f"added {len(accepted)} suggested LFs confirmed on dev: {', '.join(result.accepted_lfs) or '-'}")
    log(f"after: end model test accuracy {result.after:.4f} ({len(after.lfs)} LFs, "
        f"gold {after.end_model['gold']})")
    log(f"end model test accuracy: before {result.before:.4f} -> after {result.after:.4f} "
        f"({result.after - result.before:+.4f})")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="projects/youtube_spam/project.toml")
    parser.add_argument("--n", type=int, default=50, help="rows to push for review (default 50)")
    parser.add_argument("--strategy", default="entropy", help="sampling strategy (labeling.review.label_studio.STRATEGIES)")
    parser.add_argument("--workdir", default="", help="where the store, artifacts and refined LFs go (default: a temp dir)")
    parser.add_argument("--title", default="", help="Label Studio project title (default: '<project name> (close_loop "
                        "simulation)'; never the project's own review project)")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="close_loop-"))
    result = run_loop(args.config, workdir, n=args.n, strategy=args.strategy, title=args.title)
    return 0 if result.after > result.before else 1


if __name__ == "__main__":
    sys.exit(main())
