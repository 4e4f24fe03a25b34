"""Offline sentiment for German and English feedback: a rule-based tagger and trainable models."""

from cxloop_enricher.sentiment.analyzer import SentimentAnalyzer
from cxloop_enricher.sentiment.result import LABELS, Label, SentimentResult

__all__ = ["LABELS", "Label", "SentimentAnalyzer", "SentimentResult"]
