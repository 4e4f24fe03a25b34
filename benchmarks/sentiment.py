"""Sentiment benchmark: quality per data file and tagger throughput on one core.

    .venv/bin/python -m benchmarks.sentiment            # everything (a few minutes)
    .venv/bin/python -m benchmarks.sentiment --quick    # skip cross-validation

Prints, for every file in ../shared/data/sentiment (or --data): macro-F1 of the shipped tagger
and of always answering the majority class; then 5-fold cross-validated macro-F1 of
`cxloop sentiment train` on GermEval (in-domain; the de_* files may not train a shipped model,
so they are only ever used inside the folds); then comments/s of the shipped tagger and of a
trained model, single-threaded, over the GermEval and Amazon texts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from cxloop_enricher.sentiment import SentimentAnalyzer
from cxloop_enricher.sentiment.evaluation import Example, folds, majority_baseline, read_tsv, score
from cxloop_enricher.sentiment.training import train

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentiment"


def _language(path: Path) -> str:
    return path.name[:2]


def quality(files: list[Path]) -> None:
    analyzer = SentimentAnalyzer.default()
    print("shipped tagger, macro-F1 (mixed counts as neutral; classes present in the file)")
    print(f"{'file':<32} {'n':>6} {'tagger':>7} {'majority':>9}  per-class F1 (neg/neu/pos)")
    for path in files:
        examples = read_tsv(path)
        gold = [example.label for example in examples]
        language = _language(path)
        predicted = [analyzer.analyze(example.text, language).label for example in examples]
        scores = score(gold, predicted)
        _, baseline = majority_baseline(gold)
        per_class = "/".join(
            f"{scores.per_class[name]:.2f}" if name in scores.per_class else "-"
            for name in ("negative", "neutral", "positive")
        )
        print(
            f"{path.name:<32} {len(examples):>6} {scores.macro_f1:>7.3f} "
            f"{baseline.macro_f1:>9.3f}  {per_class}"
        )


def cross_validate(path: Path, k: int = 5) -> None:
    examples = read_tsv(path)
    texts = [example.text for example in examples]
    labels = [example.label for example in examples]
    language = _language(path)
    predicted = [""] * len(examples)
    started = time.perf_counter()
    for train_rows, test_rows in folds(len(examples), k):
        model = train(
            [texts[i] for i in train_rows],
            [labels[i] for i in train_rows],
            [language] * len(train_rows),
        )
        analyzer = SentimentAnalyzer(model)
        for row in test_rows:
            predicted[row] = analyzer.analyze(texts[row], language).label
    scores = score(labels, predicted)
    per_class = ", ".join(f"{name} {value:.3f}" for name, value in scores.per_class.items())
    print(
        f"cxloop sentiment train, {k}-fold CV on {path.name}: macro-F1 {scores.macro_f1:.3f} "
        f"({per_class}) [{time.perf_counter() - started:.0f} s]"
    )


def _rate(analyzer: SentimentAnalyzer, corpus: list[tuple[str, str]], seconds: float) -> float:
    done = 0
    started = time.perf_counter()
    while True:
        for text, language in corpus:
            analyzer.analyze(text, language)
        done += len(corpus)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def throughput(files: list[Path], seconds: float) -> None:
    corpus: list[tuple[str, str]] = []
    for path in files:
        if path.name.startswith(("de_germeval", "en_amazon")):
            corpus += [(example.text, _language(path)) for example in read_tsv(path)]
    mean_length = sum(len(text) for text, _ in corpus) / len(corpus)
    shipped = SentimentAnalyzer.default()
    _rate(shipped, corpus[:200], 0.2)  # warm the lexicon caches
    print(
        f"throughput on one core over {len(corpus)} GermEval + Amazon texts "
        f"(mean {mean_length:.0f} characters):"
    )
    print(f"  shipped tagger: {_rate(shipped, corpus, seconds):,.0f} comments/s")
    sample: list[Example] = read_tsv(DEFAULT_DATA / "en_amazon_vader.tsv")
    model = train(
        [example.text for example in sample],
        [example.label for example in sample],
        ["en"] * len(sample),
    )
    print(f"  trained model:  {_rate(SentimentAnalyzer(model), corpus, seconds):,.0f} comments/s")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sentiment")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="skip the cross-validation")
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput figure")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    files = sorted(args.data.glob("*.tsv"))
    if not files:
        print(f"no .tsv files in {args.data}", file=sys.stderr)
        return 1
    quality(files)
    if not args.quick:
        cross_validate(args.data / "de_germeval2017_db.tsv")
    throughput(files, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
