"""The enricher's configuration, read from `CX_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cxruntime.errors import ConfigurationError
from cxruntime.settings import CommonSettings

KeptKind = Literal["name", "address"]
"""The PII kinds found by their form alone, which a deployment may leave in the text."""


class PiiPatternSetting(BaseModel):
    """One extra PII pattern: matches of `regex` become `placeholder`, counted as `name`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")
    regex: str = Field(min_length=1)
    placeholder: str | None = None


class EnricherSettings(CommonSettings):
    """`CX_ENRICHER_*` plus the common variables (SPEC.md, "Configuration")."""

    enricher_port: int = 8001
    enricher_sentiment_model: Path | None = None
    """A model trained with `cxloop sentiment train`; unset: the built-in tagger."""
    enricher_pii_patterns: list[PiiPatternSetting] = Field(default_factory=list)
    """Extra PII patterns as JSON, added to the `pii` section of `touchpoints.yaml`."""
    enricher_pii_keep: list[KeptKind] = Field(default_factory=list)
    """PII kinds found by their form alone to leave in the text, as JSON (`["name"]`), added to
    `pii.keep` of `touchpoints.yaml`."""
    enricher_group_id: str = "cxloop-enricher"
    enricher_max_batch: int = 500
    enricher_max_invalid_ratio: float = 0.5


def load_settings() -> EnricherSettings:
    """The settings from the environment; a bad variable is a `ConfigurationError` naming it."""
    try:
        return EnricherSettings()
    except ValidationError as exc:
        raise ConfigurationError(f"invalid CX_ENRICHER_* setting: {exc}") from exc
