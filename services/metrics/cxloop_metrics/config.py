"""The KPI configuration file `kpis.yaml`: thresholds, taxonomy roll-up, Prometheus labels."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cxruntime.config import config_path, load_yaml
from cxruntime.errors import ConfigurationError

WINDOWS = ("1h", "24h", "7d", "28d", "90d")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NpsThresholds(_Section):
    """Promoters score at least `promoter_min`, detractors at most `detractor_max` (0-10)."""

    promoter_min: Annotated[int, Field(ge=1, le=10)] = 9
    detractor_max: Annotated[int, Field(ge=0, le=9)] = 6

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.detractor_max >= self.promoter_min:
            raise ValueError("nps.detractor_max must be below nps.promoter_min")
        return self


class CsatThresholds(_Section):
    """Top-box answers score at least `top_box_min` (1-5)."""

    top_box_min: Annotated[int, Field(ge=2, le=5)] = 4


class CesThresholds(_Section):
    """The "easy" share counts answers of at least `high_min` (1-7)."""

    high_min: Annotated[int, Field(ge=2, le=7)] = 5


class Taxonomy(_Section):
    """Explicit parents of touchpoint ids (besides the dotted-prefix hierarchy)."""

    parents: dict[str, str] = Field(default_factory=dict)

    def ancestors(self, touchpoint: str) -> list[str]:
        """The chain from the root down to `touchpoint` itself."""
        chain = [touchpoint]
        seen = {touchpoint}
        current = touchpoint
        while True:
            parent = self.parents.get(current)
            if parent is None and "." in current:
                parent = current.rsplit(".", 1)[0]
            if parent is None or parent in seen:
                break
            chain.append(parent)
            seen.add(parent)
            current = parent
        chain.reverse()
        return chain

    def at_level(self, touchpoint: str, level: int) -> str:
        """The ancestor of `touchpoint` at depth `level` (1 = root), or itself if shallower."""
        chain = self.ancestors(touchpoint)
        return chain[min(level, len(chain)) - 1]

    def children_of(self, touchpoint: str) -> set[str]:
        """Configured (non-dotted) descendants of `touchpoint`, transitively."""
        found: set[str] = set()
        frontier = [touchpoint]
        while frontier:
            current = frontier.pop()
            for child, parent in self.parents.items():
                if parent == current and child not in found:
                    found.add(child)
                    frontier.append(child)
        return found


class PrometheusLabels(_Section):
    """Which windows the gauges report and how many touchpoint label values they may use."""

    windows: tuple[str, ...] = ("24h", "7d", "28d")
    max_touchpoints: Annotated[int, Field(ge=1, le=500)] = 30

    @model_validator(mode="after")
    def _known_windows(self) -> Self:
        unknown = [w for w in self.windows if w not in WINDOWS]
        if unknown:
            raise ValueError(f"prometheus.windows: unknown {unknown}; use {list(WINDOWS)}")
        return self


class KpiConfig(_Section):
    """The whole `kpis.yaml`."""

    nps: NpsThresholds = Field(default_factory=NpsThresholds)
    csat: CsatThresholds = Field(default_factory=CsatThresholds)
    ces: CesThresholds = Field(default_factory=CesThresholds)
    taxonomy: Taxonomy = Field(default_factory=Taxonomy)
    prometheus: PrometheusLabels = Field(default_factory=PrometheusLabels)


def load_kpi_config(config_dir: Path | None) -> KpiConfig:
    """Read and validate `kpis.yaml` (CX_CONFIG_DIR first, else the packaged default)."""
    path = config_path("kpis.yaml", config_dir=config_dir, default_package="cxloop_metrics")
    raw = load_yaml(path) or {}
    try:
        return KpiConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"{path}: {problems}") from exc
