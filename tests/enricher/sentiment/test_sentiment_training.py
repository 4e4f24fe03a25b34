"""Training, the model file format, evaluation and the `cxloop sentiment` commands."""

import argparse
import io
import json
import random
import re
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from cxloop_enricher.sentiment import SentimentAnalyzer, lexicon
from cxloop_enricher.sentiment.cli import format_report, language_code, register_sentiment
from cxloop_enricher.sentiment.evaluation import (
    bootstrap_interval,
    folds,
    majority_baseline,
    read_tsv,
    score,
)
from cxloop_enricher.sentiment.features import (
    FeatureConfig,
    _char_features_within_words,
    featurize,
    pin_negators,
    terms,
)
from cxloop_enricher.sentiment.model import LinearModel, ModelFormatError
from cxloop_enricher.sentiment.training import TrainingConfig, minimise, train

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
FAST = TrainingConfig(iterations=60, l2=1e-2)


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
    assert loaded.config == replace(SMALL, negators=pin_negators())
    assert "nicht" in loaded.config.negators_for("de")
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
    text = "Die Lieferung kam zu spät, zu spät :("
    index, value = featurize(text, "de", SMALL)
    again_index, again_value = featurize(text, "de", SMALL)
    np.testing.assert_array_equal(index, again_index)
    np.testing.assert_array_equal(value, again_value)
    assert index.max() < SMALL.size
    # The word block and the character block are each scaled to unit length.
    found = terms(text, "de", SMALL)
    words, chars = value[: found.words], value[found.words : len(found.index)]
    assert np.dot(words, words) == pytest.approx(1.0, rel=1e-5)
    assert np.dot(chars, chars) == pytest.approx(SMALL.char_weight**2, rel=1e-5)
    # Sublinear term frequency: "zu" and "spät" occur twice, one entry each.
    assert len(set(found.index[: found.words].tolist())) == found.words
    assert found.frequency.max() == pytest.approx(1 + np.log(2))
    empty_index, _ = featurize("", "de", SMALL)
    assert len(empty_index) >= 1  # the bias feature


def test_character_ngrams_stay_within_words() -> None:
    together = set(_char_features_within_words(["gute", "fahrt"], 2, 5).tolist())
    apart = set(_char_features_within_words(["gute"], 2, 5).tolist()) | set(
        _char_features_within_words(["fahrt"], 2, 5).tolist()
    )
    assert together == apart
    # " gute " has 5 + 4 + 3 + 2 n-grams of lengths 2 to 5.
    assert len(_char_features_within_words(["gute"], 2, 5)) == 14


def test_minimise_finds_the_minimum_of_a_quadratic() -> None:
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(20, 20))
    hessian = basis @ basis.T + np.eye(20)
    centre = rng.normal(size=20)

    def evaluate(point: np.ndarray) -> tuple[float, np.ndarray]:
        offset = point - centre
        return 0.5 * float(offset @ hessian @ offset), hessian @ offset

    found = minimise(evaluate, np.zeros(20), iterations=500, tolerance=1e-14)
    np.testing.assert_allclose(found, centre, atol=1e-4)


def test_cross_validation_separates_the_classes() -> None:
    rows = _dataset(240, seed=5)
    predicted = [""] * len(rows)
    for train_rows, test_rows in folds(len(rows), 3):
        # Default training: the penalty is chosen by inner cross-validation.
        model = train(
            [rows[i][0] for i in train_rows],
            [rows[i][1] for i in train_rows],
            ["de"] * len(train_rows),
            features=SMALL,
        )
        analyzer = SentimentAnalyzer(model)
        for row in test_rows:
            predicted[row] = analyzer.analyze(rows[row][0], "de").label
    assert score([label for _, label in rows], predicted).macro_f1 > 0.9


def test_unseen_words_do_not_dilute_known_ones() -> None:
    rows = _dataset(200, seed=6)
    model = train(
        [text for text, _ in rows],
        [label for _, label in rows],
        ["de"] * len(rows),
        features=FeatureConfig(bits=18),  # few hash collisions with the unseen n-grams
        training=FAST,
    )
    np.testing.assert_allclose(
        model.probabilities("blorp paket", "de"),
        model.probabilities("blorp paket xxxx", "de"),
        rtol=1e-5,
    )


def test_version_1_model_files_still_load_and_score(tmp_path: Path) -> None:
    legacy = FeatureConfig(bits=10, char_weight=0.5, lexicon=True, idf=False, scheme=1)
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(legacy.size, 3)).astype(np.float32)
    model = LinearModel(("negative", "neutral", "positive"), legacy, weights)
    header = {
        "format": "cxloop-sentiment-linear",
        "version": 1,
        "classes": list(model.classes),
        # Version 1 headers had no scheme (and no negators, which came with version 3, nor
        # an encoder, which came with version 4).
        "features": {
            name: value
            for name, value in asdict(legacy).items()
            if name not in ("scheme", "negators", "embedding", "embedding_weight")
        },
    }
    path = tmp_path / "v1.npz"
    np.savez_compressed(path, weights=weights, header=np.array(json.dumps(header)))
    loaded = LinearModel.load(path)
    assert loaded.config == legacy
    np.testing.assert_allclose(
        loaded.probabilities("Die Lieferung kam zu spät", "de"),
        model.probabilities("Die Lieferung kam zu spät", "de"),
    )
    header["version"] = 5
    np.savez_compressed(path, weights=weights, header=np.array(json.dumps(header)))
    with pytest.raises(ModelFormatError, match="version 5"):
        LinearModel.load(path)


def test_a_model_keeps_the_negation_words_it_was_trained_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _dataset(300, seed=1)
    texts = [text for text, _ in rows]
    model = train(
        texts, [label for _, label in rows], ["de"] * len(rows), features=SMALL, training=FAST
    )
    path = tmp_path / "model.npz"
    model.save(path)
    probe = ["nicht blorp paket", "kein grunk", "blorp nicht zindel"]
    before = [LinearModel.load(path).probabilities(text, "de") for text in probe]

    # A later lexicon without "nicht" and "kein" as negators.
    german = lexicon.german()
    fewer = german.rules.negators - {"nicht", "kein"}
    changed = replace(german, rules=replace(german.rules, negators=fewer))
    monkeypatch.setattr(lexicon, "german", lambda: changed)
    assert lexicon.for_language("de").rules.negators == fewer

    after = [LinearModel.load(path).probabilities(text, "de") for text in probe]
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)
    # A version-2 file (no pinned words) follows the lexicon, as it always did.
    unpinned = replace(model, config=replace(model.config, negators=()))
    assert not np.array_equal(unpinned.probabilities(probe[0], "de"), before[0])


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


def test_read_tsv_reads_german_label_names_and_refuses_unknown_labels(tmp_path: Path) -> None:
    path = tmp_path / "de.tsv"
    path.write_text("Text\tLabel\ngut\tPositiv\nmies\tNEGATIV\nnaja\tgemischt\n", "utf-8")
    assert [e.label for e in read_tsv(path)] == ["positive", "negative", "mixed"]
    path.write_text("gut\tpositive\nmies\tnegtive\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"de.tsv:2: unknown label 'negtive' \(expected one of"):
        read_tsv(path)


@pytest.mark.parametrize(
    "content",
    [
        "text\tlabel\nsuper\tpositive\nmies\tnegativ\n",
        "label\ttext\npositive\tsuper\nnegativ\tmies\n",
        " Label \tTEXT\npositive\tsuper\nnegativ\tmies\n",
        "text\tlabel\textra\nsuper\tpositive\tx\nmies\tnegativ\ty\n",
        "id\tlabel\tsource\ttext\n1\tpositive\tweb\tsuper\n2\tnegativ\tapp\tmies\n",
        # Columns a header names after text and label may be missing from a line.
        "text\tlabel\tnote\nsuper\tpositive\tok\nmies\tnegativ\n",
        # No header: text<TAB>label, as documented.
        "super\tpositive\nmies\tnegativ\n",
    ],
)
def test_read_tsv_reads_the_columns_its_header_names(tmp_path: Path, content: str) -> None:
    path = tmp_path / "d.tsv"
    path.write_text(content, encoding="utf-8")
    assert [(e.text, e.label) for e in read_tsv(path)] == [
        ("super", "positive"),
        ("mies", "negative"),
    ]


@pytest.mark.parametrize(
    "content",
    [
        "a\tb\tpositive\n",
        "text\tlabel\na\tb\tpositive\n",
        "label\ttext\npositive\ta\tb\n",
        "id\ttext\tlabel\n1\ta\tb\tpositive\n",
        "text\tnote\tlabel\na\tb\tn\tpositive\n",
    ],
)
def test_read_tsv_gives_the_tabs_of_a_line_beyond_the_headers_to_the_text(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "d.tsv"
    path.write_text(content, encoding="utf-8")
    assert [(e.text, e.label) for e in read_tsv(path)] == [("a\tb", "positive")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "id\tlabel\ttext\n1\tpositive\tgut\n2\tnegative\n",
            "d.tsv:3: expected 3 tab-separated columns as in the header (text in column 3, "
            "label in column 2), got 2",
        ),
        (
            "text\tlabel\tText\ngut\tpositive\tx\n",
            "d.tsv:1: the header names the column 'text' twice",
        ),
        (
            "text\tsentiment\ngut\tpositive\n",
            "d.tsv:1: unknown label 'sentiment' (expected one of negative, neutral, positive, "
            "mixed; German negativ, positiv, gemischt); a header line names the columns text "
            "and label",
        ),
        ("label\ttext\nsuper\tpositive\n", "d.tsv:2: unknown label 'super'"),
        (f"gut\tpositive\n{'x' * 200_000}\tpositive\n", "d.tsv:2: field larger than field limit"),
    ],
)
def test_read_tsv_names_the_line_that_does_not_fit(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "d.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match="^" + re.escape(f"{tmp_path}/{message}")):
        read_tsv(path)


def test_cli_eval_and_train_read_the_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _dataset(60, seed=5)
    plain = _write_tsv(tmp_path / "plain.tsv", rows)
    swapped = tmp_path / "swapped.tsv"
    swapped.write_text(
        "label\ttext\tcomment\n" + "".join(f"{label}\t{text}\tx\n" for text, label in rows),
        encoding="utf-8",
    )
    assert _run(["sentiment", "eval", str(plain), "--language", "de"]) == 0
    expected = capsys.readouterr().out
    assert _run(["sentiment", "eval", str(swapped), "--language", "de"]) == 0
    assert capsys.readouterr().out == expected
    model = tmp_path / "m.model"
    argv = ["sentiment", "train", "--data", str(swapped), "--out", str(model)]
    assert _run([*argv, "--language", "de", "--embeddings", "off", "--epochs", "20"]) == 0
    assert "trained on 60 examples" in capsys.readouterr().out
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\ngut\tprima\n", encoding="utf-8")
    for command in (["eval", str(bad)], ["train", "--data", str(bad), "--out", str(model)]):
        assert _run(["sentiment", *command]) == 2
        assert capsys.readouterr().err == (
            f"cxloop sentiment: {bad}:2: unknown label 'prima' (expected one of negative, "
            "neutral, positive, mixed; German negativ, positiv, gemischt)\n"
        )


def test_bootstrap_interval_of_the_macro_f1() -> None:
    gold = ["negative", "neutral", "positive", "neutral"] * 25
    assert bootstrap_interval(gold, gold) == (1.0, 1.0)
    # Mixed counts as neutral.
    assert bootstrap_interval(gold, ["mixed"] * 100) == bootstrap_interval(gold, ["neutral"] * 100)
    # Half the positives missed: the interval holds the figure, is the same on every call, and
    # narrows with ten times the examples.
    predicted = ["negative", "neutral", "positive", "neutral"] * 25
    predicted += ["negative", "neutral", "neutral", "neutral"] * 25
    gold = gold * 2
    figure = score(gold, predicted).macro_f1
    low, high = bootstrap_interval(gold, predicted)
    assert low < figure < high
    assert bootstrap_interval(gold, predicted) == (low, high)
    wide = high - low
    low, high = bootstrap_interval(gold * 10, predicted * 10)
    assert low < figure < high
    assert high - low < wide / 2
    # `cxloop sentiment eval` prints it from 30 examples on.
    low, high = bootstrap_interval(gold, predicted)
    report = format_report(gold, predicted).splitlines()
    assert report[-1] == f"macro-F1 95 % bootstrap interval: {low:.3f} to {high:.3f}"


def test_eval_report_format() -> None:
    report = format_report(["positive", "negative", "neutral"], ["positive", "neutral", "neutral"])
    lines = report.splitlines()
    assert lines[0] == "examples: 3"
    assert len(lines) == 7  # too few examples for an interval
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
    assert float(out.splitlines()[2].removeprefix("macro-F1: ")) > 0.8
    assert f"wrote {model}" in out
    assert model.exists()
    assert not LinearModel.load(model).config.lexicon
    with_lexicon = tmp_path / "lexicon.model"
    assert (
        _run([*argv[:-3], str(with_lexicon), "--language", "de", "--lexicon", "on", "--l2", "0.01"])
        == 0
    )
    capsys.readouterr()
    assert LinearModel.load(with_lexicon).config.lexicon
    # auto: on for mostly English training data, off for German.
    english = tmp_path / "english.model"
    assert _run([*argv[:-3], str(english), "--language", "en", "--l2", "0.01"]) == 0
    capsys.readouterr()
    assert LinearModel.load(english).config.lexicon
    german = tmp_path / "german.model"
    assert _run([*argv[:-3], str(german), "--language", "de", "--l2", "0.01"]) == 0
    capsys.readouterr()
    assert not LinearModel.load(german).config.lexicon

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
    # In batches (as for a model with sentence embeddings): the same answers, in order.
    monkeypatch.setattr("sys.stdin", io.StringIO("Super Service, danke!\nnever again\n\n"))
    assert _run(["sentiment", "score", "--batch", "2"]) == 0
    batched = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert batched == records
    # --explain adds what moved each score; a trained model's answer is the model's alone.
    monkeypatch.setattr("sys.stdin", io.StringIO("Super Service, danke!\n"))
    assert _run(["sentiment", "score", "--explain"]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert explained["label"] == records[0]["label"]
    assert [term for term, _ in explained["explain"]["terms"]] == ["Super", "danke", "!"]
    monkeypatch.setattr("sys.stdin", io.StringIO("Super Service, danke!\n"))
    assert _run(["sentiment", "score", "--explain", "--model", str(model)]) == 0
    assert set(json.loads(capsys.readouterr().out)["explain"]) == {"model"}
    with pytest.raises(SystemExit):
        _run(["sentiment", "score", "--batch", "0"])
    assert "must be at least 1" in capsys.readouterr().err


def test_cli_reports_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.tsv"
    assert _run(["sentiment", "eval", str(missing)]) == 2
    assert "cxloop sentiment:" in capsys.readouterr().err
    one_class = _write_tsv(tmp_path / "one.tsv", [("a", "positive"), ("b", "positive")])
    assert _run(["sentiment", "train", "--data", str(one_class), "--out", "x"]) == 2


def _biased(classes: tuple[str, ...], bias: list[float]) -> LinearModel:
    """A word-only model whose answer is its bias alone (every other weight zero)."""
    config = FeatureConfig(bits=10, char_min=2, char_max=1, idf=False, scheme=2)
    weights = np.zeros((config.size, len(classes)), dtype=np.float32)
    weights[config.hashed] = bias
    return LinearModel(classes, config, weights)


def test_a_trained_model_answers_in_its_own_labels() -> None:
    # Torn between negative and positive (both about 0.4): still the likelier one, not mixed.
    torn = SentimentAnalyzer(_biased(("negative", "neutral", "positive"), [1.0, 0.0, 0.9]))
    result = torn.analyze("Die Lieferung war schnell, der Service schlecht.", "de")
    assert result.label == "negative"
    assert result.score == pytest.approx(-0.042, abs=1e-3)
    # A team that labels mixed gets it from its model.
    labelled = SentimentAnalyzer(
        _biased(("mixed", "negative", "neutral", "positive"), [2.0, 1.0, 0.0, 1.0])
    )
    assert labelled.analyze("Gut und schlecht zugleich.", "de").label == "mixed"


@pytest.mark.parametrize("flag", ["--language", "--hint"])
def test_language_options_take_only_known_codes(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad in ("english", "xx", ""):
        with pytest.raises(SystemExit) as stopped:
            _run(["sentiment", "score", flag, bad])
        assert stopped.value.code == 2
        assert "not a language code cxloop knows" in capsys.readouterr().err
    assert language_code("DE-at") == "de"
