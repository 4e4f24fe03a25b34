"""`cxloop sentiment score|eval|train`."""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Sequence
from typing import Any

import orjson

from cxloop_enricher.language import LANGUAGES, detect_language
from cxloop_enricher.sentiment.analyzer import SentimentAnalyzer
from cxloop_enricher.sentiment.embedding import USE_MULTILINGUAL
from cxloop_enricher.sentiment.evaluation import (
    EVALUATED,
    Example,
    bootstrap_interval,
    folds,
    majority_baseline,
    read_tsv,
    score,
)
from cxloop_enricher.sentiment.features import FeatureConfig
from cxloop_enricher.sentiment.model import ModelFormatError
from cxloop_enricher.sentiment.training import TrainingConfig, train
from cxruntime.cli import at_least

BATCH = 256
"""Lines `score` reads at a time for a model that encodes many texts in one call."""
INTERVAL_MINIMUM = 30  # examples; fewer give no useful bootstrap interval
TSV_HELP = (
    "TSV whose header names the columns text and label (any order; other columns ignored), "
    "or without a header text<TAB>label lines"
)


def language_code(value: str) -> str:
    """An argparse type: an ISO 639-1 code the detector knows ("de", also "DE" or "de-AT")."""
    code = value.strip().lower().replace("_", "-").split("-")[0]
    if code not in LANGUAGES:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a language code cxloop knows; use one of {', '.join(LANGUAGES)}"
        )
    return code


def register_sentiment(commands: Any) -> None:
    """Add `sentiment` with its sub-commands to the `cxloop` sub-parser collection."""
    parser = commands.add_parser("sentiment", help="score, evaluate and train sentiment models")
    sub = parser.add_subparsers(dest="sentiment_command", required=True, metavar="COMMAND")

    scorer = sub.add_parser("score", help="stdin: one text per line; stdout: one JSON line each")
    scorer.add_argument("--model", default=None, help="a model from `cxloop sentiment train`")
    scorer.add_argument(
        "--language", type=language_code, default=None, help="ISO 639-1 code (default: detect)"
    )
    scorer.add_argument(
        "--hint", type=language_code, default=None, help="language hint for detection"
    )
    scorer.add_argument(
        "--batch",
        type=at_least(1),
        default=None,
        help="lines read before they are scored and written (default: 256 for a model with "
        "sentence embeddings, which encodes them in one call; 1 otherwise). Pass 1 to have "
        "each answer written as its line arrives",
    )
    scorer.add_argument(
        "--explain",
        action="store_true",
        help="add what moved each score: the lexicon engine's words with their values, and "
        "the model's P(positive) - P(negative) where a model takes part",
    )
    scorer.set_defaults(handler=_score)

    evaluator = sub.add_parser("eval", help="macro-F1 against a labelled TSV file")
    evaluator.add_argument("file", help=TSV_HELP)
    evaluator.add_argument("--model", default=None, help="a model (default: shipped tagger)")
    evaluator.add_argument(
        "--language", type=language_code, default=None, help="ISO 639-1 code (default: detect)"
    )
    evaluator.set_defaults(handler=_eval)

    trainer = sub.add_parser("train", help="train a model on labelled comments")
    trainer.add_argument("--data", required=True, help=TSV_HELP)
    trainer.add_argument("--out", required=True, help="where to write the model")
    trainer.add_argument(
        "--language", type=language_code, default=None, help="ISO 639-1 code (default: detect)"
    )
    trainer.add_argument(
        "--epochs",
        type=at_least(1),
        default=TrainingConfig.iterations,
        metavar="N",
        help="at most N optimiser (L-BFGS) iterations",
    )
    trainer.add_argument(
        "--l2",
        type=float,
        default=None,
        help="L2 penalty (default: chosen by cross-validation inside the training data)",
    )
    trainer.add_argument(
        "--lexicon",
        choices=("auto", "on", "off"),
        default="auto",
        help="also use the lexicon engine's scores as features; auto (default): on for mostly "
        "English data, whose VADER-based lexicon is broad (+0.10 macro-F1 on the Amazon "
        "snippets in CV), off otherwise (on GermEval the German lexicon's scores gained "
        "nothing: 0.621 against 0.623 over four fold seeds)",
    )
    trainer.add_argument(
        "--embeddings",
        choices=("on", "off"),
        default="on",
        help="also use each comment's sentence embedding (multilingual Universal Sentence "
        "Encoder, offline) as features; on (default): +0.02 to +0.06 macro-F1 in CV on every "
        "file measured (GermEval 0.625 to 0.65), but scoring costs about 1 to 12 ms per "
        "comment instead of about 0.3; off: n-grams only",
    )
    trainer.add_argument(
        "--cv", type=at_least(0), default=0, metavar="K", help="also report K-fold cross-validation"
    )
    trainer.set_defaults(handler=_train)


def _analyzer(model: str | None) -> SentimentAnalyzer:
    return SentimentAnalyzer.load(model) if model else SentimentAnalyzer.default()


def _languages(examples: list[Example], language: str | None) -> list[str]:
    return [language or detect_language(example.text) for example in examples]


def _score(args: argparse.Namespace) -> int:
    try:
        analyzer = _analyzer(args.model)
    except ModelFormatError as exc:
        print(f"cxloop sentiment: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout
    size = args.batch or (BATCH if analyzer.batches else 1)
    lines = iter(sys.stdin)
    while chunk := [line.rstrip("\r\n") for line in itertools.islice(lines, size)]:
        languages = [args.language or detect_language(text, args.hint) for text in chunk]
        results = analyzer.analyze_many(chunk, languages, chunk=size)
        for text, result, language in zip(chunk, results, languages, strict=True):
            record: dict[str, Any] = {
                "label": result.label,
                "score": result.score,
                "language": language,
            }
            if args.explain:
                record["explain"] = analyzer.explain(text, language)
            out.write(orjson.dumps(record).decode() + "\n")
        out.flush()
    return 0


def format_report(gold: Sequence[str], predicted: Sequence[str]) -> str:
    """The text `cxloop sentiment eval` prints."""
    scores = score(gold, predicted)
    majority, baseline = majority_baseline(gold)
    lines = [f"examples: {len(gold)}", f"macro-F1: {scores.macro_f1:.3f}", "per-class F1:"]
    for name in EVALUATED:
        if name in scores.per_class:
            lines.append(
                f"  {name:<9} {scores.per_class[name]:.3f}  (support {scores.support[name]})"
            )
    lines.append(f"majority-class baseline ({majority}): macro-F1 {baseline.macro_f1:.3f}")
    if len(gold) >= INTERVAL_MINIMUM:
        low, high = bootstrap_interval(gold, predicted)
        lines.append(f"macro-F1 95 % bootstrap interval: {low:.3f} to {high:.3f}")
    return "\n".join(lines)


def _eval(args: argparse.Namespace) -> int:
    try:
        analyzer = _analyzer(args.model)
        examples = read_tsv(args.file)
    except (ModelFormatError, OSError, ValueError) as exc:
        print(f"cxloop sentiment: {exc}", file=sys.stderr)
        return 2
    if not examples:
        print(f"cxloop sentiment: {args.file}: no examples", file=sys.stderr)
        return 2
    languages = _languages(examples, args.language)
    texts = [example.text for example in examples]
    predicted = [result.label for result in analyzer.analyze_many(texts, languages)]
    print(format_report([example.label for example in examples], predicted))
    return 0


def use_lexicon(choice: str, languages: Sequence[str]) -> bool:
    """`--lexicon`: on, off, or auto = on when most training texts are English."""
    if choice != "auto":
        return choice == "on"
    return sum(language == "en" for language in languages) * 2 > len(languages)


def train_features(lexicon: str, embeddings: str, languages: Sequence[str]) -> FeatureConfig:
    """The feature configuration of `cxloop sentiment train --lexicon L --embeddings E`."""
    return FeatureConfig(
        lexicon=use_lexicon(lexicon, languages),
        embedding=USE_MULTILINGUAL if embeddings == "on" else "",
    )


def predict_held_out(
    texts: Sequence[str],
    labels: Sequence[str],
    languages: Sequence[str],
    train_rows: Sequence[int],
    test_rows: Sequence[int],
    *,
    features: FeatureConfig,
    training: TrainingConfig,
    predicted: list[str],
) -> None:
    """Train on `train_rows` and write the model's label of each of `test_rows` into
    `predicted` (one fold of a cross-validation)."""
    model = train(
        [texts[row] for row in train_rows],
        [labels[row] for row in train_rows],
        [languages[row] for row in train_rows],
        features=features,
        training=training,
    )
    results = SentimentAnalyzer(model).analyze_many(
        [texts[row] for row in test_rows], [languages[row] for row in test_rows]
    )
    for row, result in zip(test_rows, results, strict=True):
        predicted[row] = result.label


def _train(args: argparse.Namespace) -> int:
    try:
        examples = read_tsv(args.data)
    except (OSError, ValueError) as exc:
        print(f"cxloop sentiment: {exc}", file=sys.stderr)
        return 2
    texts = [example.text for example in examples]
    labels = [example.label for example in examples]
    languages = _languages(examples, args.language)
    config = TrainingConfig(iterations=args.epochs, l2=args.l2)
    features = train_features(args.lexicon, args.embeddings, languages)
    if len(set(labels)) < 2:
        print("cxloop sentiment: need at least two different labels", file=sys.stderr)
        return 2
    if args.cv > 1:
        predicted = [""] * len(examples)
        for train_rows, test_rows in folds(len(examples), args.cv):
            predict_held_out(
                texts,
                labels,
                languages,
                train_rows,
                test_rows,
                features=features,
                training=config,
                predicted=predicted,
            )
        print(f"{args.cv}-fold cross-validation")
        print(format_report(labels, predicted))
    started = time.perf_counter()
    model = train(texts, labels, languages, features=features, training=config)
    model.save(args.out)
    elapsed = time.perf_counter() - started
    print(f"trained on {len(texts)} examples ({', '.join(model.classes)}) in {elapsed:.1f} s")
    print(f"wrote {args.out}")
    return 0
