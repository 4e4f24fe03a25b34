"""The collector's configuration: `CX_COLLECTOR_*` on top of the common `CX_*` variables."""

from __future__ import annotations

from pydantic import Field, SecretStr

from cxloop_collector.ratelimit import Report
from cxruntime.settings import CommonSettings


class CollectorSettings(CommonSettings):
    """Everything the collector reads from the environment, built once at start-up."""

    collector_port: int = 8000
    collector_produce_timeout_s: float = Field(default=2.0, gt=0)
    """How long a request waits for Kafka's acknowledgement before answering 503."""
    collector_max_in_flight: int = Field(default=5000, ge=1)
    """Events awaiting Kafka's acknowledgement at once; beyond it requests get 429."""
    collector_rate_limit_per_s: float = Field(default=1000.0, gt=0)
    """Requests per second per API key (token bucket)."""
    collector_rate_limit_burst: int | None = Field(default=None, ge=1)
    """Bucket size; default twice the rate."""
    collector_rate_limit_headers: Report = "near-limit"
    """Which accepted answers carry the RateLimit fields: `near-limit` once the key has used
    half its bucket, `always` on every one. Every 429 carries them."""
    collector_dedup_memo_size: int = Field(default=100_000, ge=0)
    """How many recently accepted (source, id) pairs are remembered to answer duplicates."""
    collector_rating_secret: SecretStr | None = None
    """HMAC secret of one-click rating links; generated into CX_DATA_DIR when unset."""
    collector_public_url: str = "http://127.0.0.1:8000"
    """Base URL the rating links printed by `cxloop rating-link` point at."""
    collector_csv_timezone: str = "Europe/Berlin"
    """Time zone of contact-centre CSV times written without an offset."""
    collector_auth_cache_s: float = Field(default=5.0, ge=0)
    """How long an API key lookup is cached (a revoked key works at most this long)."""
    collector_linger_ms: int = Field(default=5, ge=0)
    """The longest a record waits for its batch to leave; with group commit batches leave
    earlier, as soon as no earlier batch awaits the broker's acknowledgement."""
    collector_group_commit: bool = True
    """Ship batches as soon as the previous one is acknowledged (lower latency, more produce
    requests at moderate load); false: every `collector_linger_ms`."""

    def rate_limit_burst(self) -> int:
        """The token bucket size."""
        if self.collector_rate_limit_burst is not None:
            return self.collector_rate_limit_burst
        return max(1, int(self.collector_rate_limit_per_s * 2))
