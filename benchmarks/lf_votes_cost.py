"""What the served LF-vote path costs per request, and where it goes.

    python benchmarks/lf_votes_cost.py [--config projects/youtube_spam/project.toml] [--repeats 30]

A run whose served predictor reads LF votes (``label_model_backoff``, ``blend``) runs
``labeling.serve.votes.lf_votes`` on each request's texts before answering. This times
that call on one text and on a batch of 100 (CPU milliseconds of this process, which a
loaded machine does not inflate, and wall milliseconds), then the parts of it: the spaCy
parse alone (``nlp.pipe``, the pipeline the LFs name), and the same call with only the
LFs that read no spaCy doc. Texts are the benchmark's own synthetic comments, never a split.
A multi-label project (``--config projects/goemotions/project.toml``) times its LFs as a served
multi-label run applies them: wrapped to return one vote code per label set.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from labeling.config import load_config  # noqa: E402
from labeling.lf.core import discover_lfs, resolve_spacy_model, uses_spacy  # noqa: E402
from labeling.lf.parse_cache import load_pipeline  # noqa: E402
from labeling.serve.votes import lf_votes, served_lfs, vote_cardinality  # noqa: E402

TEXT = "check out my channel for free giveaways http://example.com"


def timed(call, repeats: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call of ``call()``, after one warm-up call."""
    call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        call()
    return 1000 * (time.process_time() - cpu) / repeats, 1000 * (time.perf_counter() - wall) / repeats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "projects" / "youtube_spam" / "project.toml")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    lfs = served_lfs(discover_lfs(config.lfs.modules, root=config.resolve(config.lfs.root)), config.task)
    plain = [lf for lf in lfs if not uses_spacy(lf)]
    nlp = load_pipeline(resolve_spacy_model(config.lfs.spacy_model), ()) if len(plain) < len(lfs) else None
    k, model = vote_cardinality(config), config.lfs.spacy_model
    print(f"{len(lfs)} LFs, {len(lfs) - len(plain)} of them read a spaCy doc"
          + (f" ({', '.join(nlp.pipe_names)})" if nlp else ""))
    print(f"{'texts':>5}  {'part':<28} {'CPU ms':>8} {'wall ms':>8}")
    for n in (1, 100):
        texts = [f"{TEXT} {i}" for i in range(n)]
        repeats = args.repeats if n == 1 else max(1, args.repeats // 10)
        parts = [("lf_votes, every LF", lambda: lf_votes(lfs, texts, k, model)),
                 ("lf_votes, LFs without spaCy", lambda: lf_votes(plain, texts, k, model))]
        if nlp is not None:
            parts.append(("spaCy parse alone (nlp.pipe)", lambda: list(nlp.pipe(texts))))
        for name, call in parts:
            cpu, wall = timed(call, repeats)
            print(f"{n:>5}  {name:<28} {cpu:>8.1f} {wall:>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
