"""Sentiment benchmark: quality per data file and tagger throughput on one core.

    .venv/bin/python -m benchmarks.sentiment            # everything (a few minutes)
    .venv/bin/python -m benchmarks.sentiment --quick    # skip the cross-validations
    .venv/bin/python -m benchmarks.sentiment --every-file [--only sb10k]   # trained, every file

For every file in ../shared/data/sentiment (or --data): macro-F1 of the shipped tagger, of its
lexicon engine alone and of always answering the majority class. The shipped English model was
trained on en_amazon_vader, so on that file the shipped tagger's figure is 5-fold cross-validated
(the same recipe trained on four fifths, scored on the fifth), never in-sample. Then 5-fold
cross-validated macro-F1 of `cxloop sentiment train` with its defaults on GermEval (the de_*
files may not train a shipped model, so they are only ever used inside the folds) and on the
Amazon snippets; with --every-file also on every other file, with the L2 strength fixed
(the inner search takes minutes per fold on thousands of texts). Last, comments/s on one
core of the shipped tagger and of a model trained with the defaults (on the MIT Amazon
snippets), German and English texts.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cxloop_enricher.sentiment import SentimentAnalyzer
from cxloop_enricher.sentiment.cli import predict_held_out, train_features
from cxloop_enricher.sentiment.embedding import forget
from cxloop_enricher.sentiment.evaluation import Example, folds, majority_baseline, read_tsv, score
from cxloop_enricher.sentiment.features import FeatureConfig
from cxloop_enricher.sentiment.model import LinearModel
from cxloop_enricher.sentiment.shipped import FEATURES, TRAINING, TRAINING_CONFIG
from cxloop_enricher.sentiment.training import TrainingConfig, train

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentiment"
K = 5


def _language(path: Path) -> str:
    return path.name[:2]


def _fit(
    examples: list[Example],
    language: str,
    features: FeatureConfig | None,
    training: TrainingConfig | None = None,
) -> LinearModel:
    return train(
        [example.text for example in examples],
        [example.label for example in examples],
        [language] * len(examples),
        features=features,
        training=training,
    )


def _cross_validated(
    examples: list[Example], language: str, analyzer_for: Callable[[LinearModel], SentimentAnalyzer]
) -> list[str]:
    predicted = [""] * len(examples)
    for train_rows, test_rows in folds(len(examples), K):
        model = _fit([examples[i] for i in train_rows], language, FEATURES, TRAINING_CONFIG)
        analyzer = analyzer_for(model)
        for row in test_rows:
            predicted[row] = analyzer.analyze(examples[row].text, language).label
    return predicted


def _per_class(gold: list[str], predicted: list[str]) -> str:
    scores = score(gold, predicted)
    return "/".join(
        f"{scores.per_class[name]:.2f}" if name in scores.per_class else "-"
        for name in ("negative", "neutral", "positive")
    )


def quality(files: list[Path], quick: bool) -> None:
    shipped = SentimentAnalyzer.default()
    lexicon = SentimentAnalyzer()
    print("macro-F1 over the classes present in each file (mixed counts as neutral)")
    print(
        f"{'file':<32} {'n':>6} {'shipped':>8} {'lexicon':>8} {'majority':>9}  "
        "shipped per-class F1 (neg/neu/pos)"
    )
    for path in files:
        examples = read_tsv(path)
        gold = [example.label for example in examples]
        language = _language(path)
        mark = " "
        if path.name in TRAINING:
            if quick:
                continue
            predicted = _cross_validated(
                examples, language, lambda model: SentimentAnalyzer(language_models={"en": model})
            )
            mark = "*"
        else:
            predicted = [shipped.analyze(example.text, language).label for example in examples]
        lexical = [lexicon.analyze(example.text, language).label for example in examples]
        _, baseline = majority_baseline(gold)
        print(
            f"{path.name:<32} {len(examples):>6} {score(gold, predicted).macro_f1:>7.3f}{mark} "
            f"{score(gold, lexical).macro_f1:>8.3f} {baseline.macro_f1:>9.3f}  "
            f"{_per_class(gold, predicted)}"
        )
    if any(path.name in TRAINING for path in files) and not quick:
        print(f"* {K}-fold cross-validated: the shipped English model is trained on this file")


EVERY_FILE_C = 0.25
"""The L2 strength of `--every-file` (C, as in scikit-learn): the value the inner search of
`cxloop sentiment train` picks in most folds, fixed because the search takes minutes per fold
on thousands of texts."""


def trained(files: list[Path], every_file: bool = False) -> None:
    # (file, title, features, C fixed or None for the inner search)
    runs: list[tuple[Path, str, FeatureConfig, float | None]] = []
    for path in files:
        languages = [_language(path)]
        if path.name.startswith(("de_germeval", "en_amazon")):
            runs += [
                (path, "defaults", train_features("auto", "on", languages), None),
                (path, "--embeddings off", train_features("auto", "off", languages), None),
            ]
        elif every_file:
            features = train_features("auto", "on", languages)
            runs.append((path, f"defaults, C = {EVERY_FILE_C}", features, EVERY_FILE_C))
    for path, title, features, strength in runs:
        examples = read_tsv(path)
        texts = [example.text for example in examples]
        gold = [example.label for example in examples]
        languages = [_language(path)] * len(examples)
        predicted = [""] * len(examples)
        started = time.perf_counter()
        for train_rows, test_rows in folds(len(examples), K):
            # The inner search for the L2 strength, or (--every-file) C fixed: the penalty is
            # 1 / (C x training texts), as `--l2` takes it.
            training = (
                TrainingConfig()
                if strength is None
                else TrainingConfig(l2=1.0 / (strength * len(train_rows)))
            )
            predict_held_out(
                texts,
                gold,
                languages,
                train_rows,
                test_rows,
                features=features,
                training=training,
                predicted=predicted,
            )
        scores = score(gold, predicted)
        print(
            f"cxloop sentiment train ({title}), {K}-fold CV on {path.name}: macro-F1 "
            f"{scores.macro_f1:.3f} (neg/neu/pos F1 {_per_class(gold, predicted)}) "
            f"[{time.perf_counter() - started:.0f} s]"
        )


def _rate(analyzer: SentimentAnalyzer, corpus: list[tuple[str, str]], seconds: float) -> float:
    # CPU time of this process: on a shared machine, wall time would measure the neighbours.
    done = 0
    started = time.process_time()
    while True:
        forget()  # a trained model with embeddings would recall every sentence of a second pass
        for text, language in corpus:
            analyzer.analyze(text, language)
        done += len(corpus)
        elapsed = time.process_time() - started
        if elapsed >= seconds:
            return done / elapsed


def throughput(data: Path, seconds: float) -> None:
    analyzers = {"shipped tagger": SentimentAnalyzer.default()}
    amazon = data / "en_amazon_vader.tsv"
    if amazon.exists():
        # Scoring cost depends on the features, not on what the model learned: a model trained
        # on the MIT Amazon snippets stands for a team's model (lexicon features on, the costlier).
        for embeddings in ("off", "on"):
            features = train_features("on", embeddings, ["en"])
            analyzers[f"trained model (lexicon on, embeddings {embeddings})"] = SentimentAnalyzer(
                _fit(read_tsv(amazon), "en", features=features)
            )
    for title, analyzer in analyzers.items():
        print(f"{title} throughput, one core, single thread (comments per CPU second):")
        for name in ("de_germeval2017_db.tsv", "de_sb10k_tweets.tsv", "en_amazon_vader.tsv",
                     "en_tweets_vader.tsv"):  # fmt: skip
            path = data / name
            if not path.exists():
                continue
            corpus = [(example.text, _language(path)) for example in read_tsv(path)]
            _rate(analyzer, corpus[:300], 0.2)  # warm the lexicon caches
            mean = sum(len(text) for text, _ in corpus) / len(corpus)
            rate = _rate(analyzer, corpus, seconds)
            print(f"  {name:<32} mean {mean:>4.0f} characters: {rate:>8,.0f} comments/s")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sentiment")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="skip the cross-validations")
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput figure")
    parser.add_argument(
        "--every-file",
        action="store_true",
        help=f"also cross-validate `cxloop sentiment train` (defaults, C = {EVERY_FILE_C}) on "
        "every other file (about 45 minutes more)",
    )
    parser.add_argument(
        "--only", default="", help="only the files whose names contain this (e.g. sb10k)"
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    files = [path for path in sorted(args.data.glob("*.tsv")) if args.only in path.name]
    if not files:
        print(f"no .tsv files in {args.data} (matching {args.only!r})", file=sys.stderr)
        return 1
    quality(files, args.quick)
    if not args.quick:
        trained(files, args.every_file)
    throughput(args.data, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
