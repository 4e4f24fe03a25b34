"""Cheap regression guards against the shared evaluation data (../shared/data/sentiment).

Floors sit a little under the measured figures in docs/sentiment.md, so that a lexicon or rule
change that costs quality fails here. Files the shipped English model was trained on are only
checked through the lexicon engine.
"""

import os
from pathlib import Path

import pytest

from cxloop_enricher.sentiment import SentimentAnalyzer
from cxloop_enricher.sentiment.evaluation import read_tsv, score

DATA = Path(
    os.environ.get(
        "CX_SENTIMENT_DATA", Path(__file__).resolve().parents[4] / "shared/data/sentiment"
    )
)


@pytest.mark.parametrize(
    ("name", "analyzer", "floor"),
    [
        ("de_germeval2017_db.tsv", SentimentAnalyzer.default(), 0.45),
        ("de_potts_tweets.tsv", SentimentAnalyzer.default(), 0.62),
        ("de_tweets_vader_translated.tsv", SentimentAnalyzer.default(), 0.46),
        ("en_tweets_vader.tsv", SentimentAnalyzer.default(), 0.68),
        ("en_amazon_vader.tsv", SentimentAnalyzer(), 0.55),
    ],
    ids=[
        "germeval-shipped",
        "potts-shipped",
        "tweets-de-shipped",
        "tweets-shipped",
        "amazon-lexicon",
    ],
)
def test_macro_f1_floor(name: str, analyzer: SentimentAnalyzer, floor: float) -> None:
    examples = read_tsv(DATA / name)
    language = name[:2]
    predicted = [analyzer.analyze(example.text, language).label for example in examples]
    assert score([example.label for example in examples], predicted).macro_f1 >= floor
