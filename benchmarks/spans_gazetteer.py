"""Gazetteer speed: a 10k-term dictionary LF over 100k sentences.

    python benchmarks/spans_gazetteer.py [--terms 10000] [--sentences 100000]

Terms (one to three words) and sentences (12 words, a quarter of them holding a term)
are generated from a seeded vocabulary; the time printed is building the
``Gazetteer`` and applying it to every sentence on one core (``Gazetteer.__call__``,
spans checked as every span LF's are), with the number of spans found.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labeling.spans.lfs import Gazetteer  # noqa: E402


def make(n_terms: int, n_sentences: int, seed: int = 0):
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(20000)]
    terms = sorted({" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 3))) for _ in range(n_terms)})
    sentences = []
    for _ in range(n_sentences):
        words = [rng.choice(vocab) for _ in range(12)]
        if rng.random() < 0.25:
            words[rng.randrange(12)] = rng.choice(terms)
        sentences.append(" ".join(words) + ".")
    return terms, sentences


def run(n_terms: int = 10000, n_sentences: int = 100000) -> dict:
    terms, sentences = make(n_terms, n_sentences)
    start = time.perf_counter()
    gazetteer = Gazetteer("terms", {"TERM": terms}, case="insensitive")
    built = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    found = sum(len(gazetteer(s)) for s in sentences)
    applied, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"apply_cpu_s": cpu, "terms": len(terms), "sentences": len(sentences), "build_s": built, "apply_s": applied, "spans": found,
            "sentences_per_s": len(sentences) / applied}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terms", type=int, default=10000)
    parser.add_argument("--sentences", type=int, default=100000)
    args = parser.parse_args(argv)
    r = run(args.terms, args.sentences)
    print(f"{r['terms']} terms, {r['sentences']} sentences: build {r['build_s']:.2f} s, apply {r['apply_s']:.2f} s wall, {r['apply_cpu_s']:.2f} s CPU "
          f"({r['sentences_per_s']:,.0f} sentences/s), {r['spans']} spans")


if __name__ == "__main__":
    main()
