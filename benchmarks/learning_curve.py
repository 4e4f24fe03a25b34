"""Learning curve of `cxloop sentiment train`: cross-validated macro-F1 by number of labels.

    .venv/bin/python -m benchmarks.learning_curve                       # GermEval, seed 13
    .venv/bin/python -m benchmarks.learning_curve FILE --sizes 250,500,all --c 0.25 --seed 1

Answers whether a trained model's score is limited by the recipe or by the number of labelled
texts: the same split as `cxloop sentiment train --cv 5` (`evaluation.folds`, fold seed 13 by
default), and in each fold a class-stratified subset of the training part of each size (a
smaller subset is part of a larger one, bar rare rounding cases), trained with the trainer's
defaults (`--c` fixes the L2 strength instead of the inner search, which takes minutes on
thousands of texts), scored on the whole held-out fold. `all` is the training part unchanged,
which is what the CLI trains on. Prints macro-F1 over every fold's predictions (as the CLI
does) and per class.

The de_* files may only be used for evaluation: the models here are trained inside the folds
and thrown away.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

from cxloop_enricher.sentiment.cli import predict_held_out, train_features
from cxloop_enricher.sentiment.evaluation import folds, read_tsv, score
from cxloop_enricher.sentiment.training import TrainingConfig

DEFAULT_FILE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "sentiment" / "de_germeval2017_db.tsv"
)


def stratified_subset(rows: list[int], labels: list[str], size: int, seed: int) -> list[int]:
    """`size` of `rows` in the classes' proportions (largest remainder), in `rows`' order.

    The same `seed` takes each class's rows in one shuffled order, so a smaller subset is part of
    a larger one whenever no class's count falls as the size grows (which largest remainders
    allow, by one row, in rare cases)."""
    if size >= len(rows):
        return list(rows)
    by_class: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        by_class[labels[row]].append(row)
    generator = random.Random(seed)
    for name in sorted(by_class):
        generator.shuffle(by_class[name])
    quota = {name: size * len(members) / len(rows) for name, members in by_class.items()}
    take = {name: int(share) for name, share in quota.items()}
    left = size - sum(take.values())
    for name in sorted(quota, key=lambda name: (take[name] - quota[name], name))[:left]:
        take[name] += 1
    chosen = {row for name, members in by_class.items() for row in members[: take[name]]}
    return [row for row in rows if row in chosen]


def main(argv: list[str] | None = None) -> int:
    """Print the learning curve of one labelled file."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.learning_curve")
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--sizes", default="150,300,450,all", help="training texts per fold")
    parser.add_argument("--seed", type=int, default=13, help="fold seed (the CLI's --cv: 13)")
    parser.add_argument("--k", type=int, default=5, help="folds")
    parser.add_argument("--language", default=None, help="default: the file name's first two")
    parser.add_argument("--embeddings", choices=("on", "off"), default="on", help="as the CLI's")
    parser.add_argument("--c", type=float, default=None, help="fix C (L2 = 1 / (C x texts))")
    args = parser.parse_args(argv)

    examples = read_tsv(args.file)
    texts = [example.text for example in examples]
    labels = [example.label for example in examples]
    languages = [args.language or args.file.name[:2]] * len(examples)
    features = train_features("auto", args.embeddings, languages)
    sizes = args.sizes.split(",")
    predicted = {size: [""] * len(examples) for size in sizes}
    started = time.perf_counter()
    for fold, (train_rows, test_rows) in enumerate(folds(len(examples), args.k, seed=args.seed)):
        for size in sizes:
            count = len(train_rows) if size == "all" else int(size)
            rows = stratified_subset(train_rows, labels, count, seed=1000 * args.seed + fold)
            training = (
                TrainingConfig() if args.c is None else TrainingConfig(l2=1 / (args.c * len(rows)))
            )
            predict_held_out(
                texts,
                labels,
                languages,
                rows,
                test_rows,
                features=features,
                training=training,
                predicted=predicted[size],
            )
        print(
            f"  fold {fold + 1} of {args.k} done, {time.perf_counter() - started:.0f} s", flush=True
        )
    setting = "inner L2 search" if args.c is None else f"C = {args.c}"
    print(f"{args.file.name}: {args.k}-fold CV, fold seed {args.seed}, {setting}")
    for size in sizes:
        scores = score(labels, predicted[size])
        classes = " / ".join(f"{scores.per_class[name]:.2f}" for name in sorted(scores.per_class))
        print(f"  {size:>5} texts per fold: macro-F1 {scores.macro_f1:.3f} (per class {classes})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
