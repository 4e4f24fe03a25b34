"""Training, the model file format, evaluation and the `cxloop sentiment` commands."""

import argparse
import io
import json
import random
from pathlib import Path

import numpy as np
import pytest

from cxloop_enricher.sentiment import SentimentAnalyzer
from cxloop_enricher.sentiment.cli import format_report, register_sentiment
from cxloop_enricher.sentiment.evaluation import (
    folds,
    majority_baseline,
    read_tsv,
    score,
)
from cxloop_enricher.sentiment.features import FeatureConfig, featurize
from cxloop_enricher.sentiment.model import LinearModel, ModelFormatError
from cxloop_enricher.sentiment.training import TrainingConfig, train

# Made-up vocabulary, so the model cannot lean on the shipped lexicons.
_GOOD = ["blorp", "zindel", "quaff", "mervy"]
_BAD = ["grunk", "splee", "drabb", "vorn"]
_FILL = ["paket", "lieferung", "kunde", "rechnung", "app", "heute", "wieder", "order"]


def _dataset(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        label = rng.choice(["positive", "negative", "neutral"])
        words = rng.sample(_FILL, 4)
        if label == "positive":
            words += rng.sample(_GOOD, 2)
        elif label == "negative":
            words += rng.sample(_BAD, 2)
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def _write_tsv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text(
        "text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8"
    )
    return path


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cxloop")
    commands = parser.add_subparsers(dest="command", required=True)
    register_sentiment(commands)
    args = parser.parse_args(argv)
    status = args.handler(args)
    assert isinstance(status, int)
    return status


SMALL = FeatureConfig(bits=12)
FAST = TrainingConfig(epochs=60)


def test_train_save_load_round_trip(tmp_path: Path) -> None:
    rows = _dataset(300, seed=1)
    model = train(
        [text for text, _ in rows],
        [label for _, label in rows],
        ["de"] * len(rows),
        features=SMALL,
        training=FAST,
    )
    path = tmp_path / "model.bin"
    model.save(path)
    loaded = LinearModel.load(path)
    assert loaded.classes == ("negative", "neutral", "positive")
    assert loaded.config == SMALL
    np.testing.assert_array_equal(loaded.weights, model.weights)

    analyzer = SentimentAnalyzer.load(path)
    test = _dataset(200, seed=2)
    predicted = [analyzer.analyze(text, "de").label for text, _ in test]
    assert score([label for _, label in test], predicted).macro_f1 > 0.9
    result = analyzer.analyze("blorp zindel paket", "de")
    assert result.label == "positive"
    assert 0 < result.score <= 1
    assert analyzer.analyze("grunk vorn kunde", "de").score < 0


def test_features_are_stable_and_normalised() -> None:
    index, value = featurize("Die Lieferung kam zu spät :(", "de", SMALL)
    again_index, again_value = featurize("Die Lieferung kam zu spät :(", "de", SMALL)
    np.testing.assert_array_equal(index, again_index)
    np.testing.assert_array_equal(value, again_value)
    hashed = index < SMALL.hashed
    assert np.dot(value[hashed], value[hashed]) == pytest.approx(1.0, rel=1e-5)
    assert index.max() < SMALL.size
    empty_index, _ = featurize("", "de", SMALL)
    assert len(empty_index) >= 1  # the bias feature


def test_load_rejects_other_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelFormatError):
        SentimentAnalyzer.load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.zeros((2, 2)), header=np.array(json.dumps({"format": "x"})))
    with pytest.raises(ModelFormatError):
        LinearModel.load(other)


def test_training_needs_two_classes() -> None:
    with pytest.raises(ValueError, match="two classes"):
        train(["a", "b"], ["positive", "positive"], ["en", "en"], features=SMALL)


def test_scores_and_baseline() -> None:
    gold = ["positive", "negative", "neutral", "neutral"]
    perfect = score(gold, ["positive", "negative", "mixed", "neutral"])
    assert perfect.macro_f1 == 1.0
    assert perfect.support == {"positive": 1, "negative": 1, "neutral": 2}
    majority, baseline = majority_baseline(gold)
    assert majority == "neutral"
    assert baseline.per_class == {"negative": 0.0, "neutral": pytest.approx(2 / 3), "positive": 0.0}
    assert baseline.macro_f1 == pytest.approx(2 / 9)


def test_folds_partition_the_data() -> None:
    seen = []
    for train_rows, test_rows in folds(23, 5):
        assert not set(train_rows) & set(test_rows)
        assert len(train_rows) + len(test_rows) == 23
        seen += test_rows
    assert sorted(seen) == list(range(23))


def test_read_tsv(tmp_path: Path) -> None:
    path = _write_tsv(tmp_path / "d.tsv", [("gut", "POSITIVE"), ('"quoted" text', "negative")])
    examples = read_tsv(path)
    assert [(e.text, e.label) for e in examples] == [
        ("gut", "positive"),
        ('"quoted" text', "negative"),
    ]
    bad = tmp_path / "bad.tsv"
    bad.write_text("no label here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected text<TAB>label"):
        read_tsv(bad)


def test_eval_report_format() -> None:
    report = format_report(["positive", "negative", "neutral"], ["positive", "neutral", "neutral"])
    lines = report.splitlines()
    assert lines[0] == "examples: 3"
    assert lines[1] == "macro-F1: 0.556"
    assert lines[2] == "per-class F1:"
    assert lines[3].split() == ["negative", "0.000", "(support", "1)"]
    assert lines[4].split() == ["neutral", "0.667", "(support", "1)"]
    assert lines[5].split() == ["positive", "1.000", "(support", "1)"]
    assert lines[6].startswith("majority-class baseline (")


def test_cli_train_eval_and_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _write_tsv(tmp_path / "train.tsv", _dataset(200, seed=3))
    held_out = _write_tsv(tmp_path / "test.tsv", _dataset(60, seed=4))
    model = tmp_path / "team.model"
    argv = ["sentiment", "train", "--data", str(data), "--out", str(model), "--language", "de"]
    assert _run([*argv, "--epochs", "40", "--cv", "3"]) == 0
    out = capsys.readouterr().out
    assert "3-fold cross-validation" in out
    assert f"wrote {model}" in out
    assert model.exists()

    assert _run(["sentiment", "eval", str(held_out), "--model", str(model)]) == 0
    out = capsys.readouterr().out
    macro = float(out.splitlines()[1].removeprefix("macro-F1: "))
    assert macro > 0.8
    assert "majority-class baseline" in out

    assert _run(["sentiment", "eval", str(held_out)]) == 0  # the shipped tagger
    assert capsys.readouterr().out.startswith("examples: 60\n")

    monkeypatch.setattr("sys.stdin", io.StringIO("Super Service, danke!\nnever again\n\n"))
    assert _run(["sentiment", "score"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert records[0] == {"label": "positive", "score": records[0]["score"], "language": "de"}
    assert records[1]["label"] == "negative"
    assert records[1]["language"] == "en"
    assert records[2] == {"label": "neutral", "score": 0.0, "language": "und"}


def test_cli_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.tsv"
    assert _run(["sentiment", "eval", str(missing)]) == 2
    assert "cxloop sentiment:" in capsys.readouterr().err
    one_class = _write_tsv(tmp_path / "one.tsv", [("a", "positive"), ("b", "positive")])
    assert _run(["sentiment", "train", "--data", str(one_class), "--out", "x"]) == 2
