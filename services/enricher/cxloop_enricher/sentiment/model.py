"""The trainable linear model and its file format.

A model file is a NumPy `.npz` archive (no pickle) with the members `weights`, a float32 matrix
(features x classes), `idf`, float32 inverse document frequencies of the hashed features (when
the configuration asks for them), and `header`, a JSON document: format version, class names
and the feature configuration. Loading takes milliseconds and needs only NumPy.

Version 2 added the feature scheme (TF-IDF with character n-grams within words, see
`features`); version 1 files have none and are read as scheme 1, so they score as trained.
Version 3 added the negation words the model was trained with (`FeatureConfig.negators`); older
files score with the lexicon's current ones, as they always did. Version 4 added the sentence
encoder (`FeatureConfig.embedding`) and its weight; models without one are still written as
version 3.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cxloop_enricher.sentiment.embedding import EncoderUnavailableError, dimensions
from cxloop_enricher.sentiment.engine import LexiconScore
from cxloop_enricher.sentiment.features import FeatureConfig, featurize_scored

FORMAT = "cxloop-sentiment-linear"
VERSION = 4
READABLE = (1, 2, 3, 4)


class ModelFormatError(ValueError):
    """The file is not a sentiment model this version can read."""


@dataclass(frozen=True)
class LinearModel:
    """Multinomial logistic regression over hashed n-gram features."""

    classes: tuple[str, ...]
    config: FeatureConfig
    weights: npt.NDArray[np.float32]
    idf: npt.NDArray[np.float32] | None = None

    def probabilities(self, text: str, language: str) -> npt.NDArray[np.float64]:
        """Class probabilities of `text`, in the order of `classes`."""
        return self.predict(text, language)[0]

    def predict(
        self, text: str, language: str
    ) -> tuple[npt.NDArray[np.float64], LexiconScore | None]:
        """Class probabilities and, if the model uses it, the lexicon engine's score."""
        index, value, lexical = featurize_scored(text, language, self.config, self.idf)
        # A softmax over a handful of classes: plain floats cost less than NumPy's calls.
        logits = (value @ self.weights[index]).tolist()
        top = max(logits)
        exp = [math.exp(logit - top) for logit in logits]
        total = sum(exp)
        result: npt.NDArray[np.float64] = np.array([e / total for e in exp], dtype=np.float64)
        return result, lexical

    def save(self, path: str | Path) -> None:
        """Write the model to `path` (an .npz archive, whatever the name)."""
        features = asdict(self.config)
        version = VERSION
        if not self.config.embedding:
            # Nothing version 3 lacks: written as version 3, which cxloop releases from before
            # sentence embeddings read too (a model trained on a newer cxloop keeps working in
            # an older enricher during an upgrade).
            version = 3
            del features["embedding"], features["embedding_weight"]
        header = {
            "format": FORMAT,
            "version": version,
            "classes": list(self.classes),
            "features": features,
        }
        weights = self.weights.astype(np.float32)
        encoded = np.array(json.dumps(header))
        buffer = io.BytesIO()
        if self.idf is None:
            np.savez_compressed(buffer, weights=weights, header=encoded)
        else:
            idf = self.idf.astype(np.float32)
            np.savez_compressed(buffer, weights=weights, header=encoded, idf=idf)
        Path(path).write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> LinearModel:
        """Read a model written by `save`."""
        try:
            with np.load(Path(path), allow_pickle=False) as archive:
                header = json.loads(str(archive["header"]))
                weights = np.ascontiguousarray(archive["weights"], dtype=np.float32)
                idf = (
                    np.ascontiguousarray(archive["idf"], dtype=np.float32)
                    if "idf" in archive.files
                    else None
                )
        except (OSError, ValueError, KeyError) as exc:
            raise ModelFormatError(f"{path}: not a cxloop sentiment model ({exc})") from exc
        if header.get("format") != FORMAT:
            raise ModelFormatError(f"{path}: unsupported model format {header.get('format')!r}")
        version = header.get("version")
        if version not in READABLE:
            raise ModelFormatError(
                f"{path}: model format version {version!r}; this cxloop reads versions "
                f"{', '.join(map(str, READABLE))} (a newer cxloop wrote it?)"
            )
        try:
            features = dict(header["features"])
            if version == 1:
                features["scheme"] = 1
            if version >= 3:
                features["negators"] = tuple(
                    (str(language), tuple(str(word) for word in words))
                    for language, words in features["negators"]
                )
            elif "negators" in features:
                raise KeyError("negators before version 3")
            if version < 4 and ("embedding" in features or "embedding_weight" in features):
                raise KeyError("embedding before version 4")
            config = FeatureConfig(**features)
            classes = tuple(str(name) for name in header["classes"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{path}: inconsistent model header ({exc})") from exc
        if config.scheme not in (1, 2):
            raise ModelFormatError(f"{path}: unknown feature scheme {config.scheme!r}")
        if config.embedding and config.scheme != 2:
            raise ModelFormatError(f"{path}: sentence embeddings need feature scheme 2")
        try:
            dimensions(config.embedding)
        except EncoderUnavailableError as exc:
            raise ModelFormatError(f"{path}: {exc}") from exc
        if weights.shape != (config.size, len(classes)):
            raise ModelFormatError(f"{path}: weights of shape {weights.shape} do not match")
        if (idf is not None and idf.shape != (config.hashed,)) or (idf is None) == config.idf:
            raise ModelFormatError(f"{path}: inverse document frequencies do not match")
        return cls(classes, config, weights, idf)
