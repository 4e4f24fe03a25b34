"""Configuration of the closed_loop service (`CX_CLOSED_LOOP_*`)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from cxruntime.settings import CommonSettings


class ClosedLoopSettings(CommonSettings):
    """Everything `cxloop closed-loop` reads from the environment."""

    closed_loop_port: int = 8003
    closed_loop_group_id: str = "cxloop-closed-loop"
    closed_loop_max_batch: int = 100
    """Records per consumer batch (one transaction); small batches keep the loop responsive."""
    closed_loop_webhook_url: str | None = None
    """When set, a default webhook receiver with this URL gets every case event."""
    closed_loop_webhook_secret: SecretStr | None = None
    """`whsec_...` secret of the default webhook; generated under CX_DATA_DIR when unset."""
    closed_loop_webhook_previous_secrets: list[SecretStr] = Field(default_factory=list)
    """Earlier secrets of the default webhook, still signed with while its receiver moves to
    the new one (a JSON list)."""
    closed_loop_relay_interval_s: float = 0.5
    closed_loop_relay_backoff_max_s: float = 30.0
    """While relay passes fail (the database is down), the wait between them doubles from
    `closed_loop_relay_interval_s` up to this."""
    closed_loop_relay_batch: int = 50
    closed_loop_relay_concurrency: int = 32
    closed_loop_relay_workers: int = 4
    closed_loop_endpoint_concurrency: int = 32
    """Requests in flight to one receiver at most, across all relay loops."""
    closed_loop_max_attempts: int = 10
    closed_loop_retry_base_s: float = 1.0
    closed_loop_retry_max_s: float = 3600.0
    closed_loop_delivery_timeout_s: float = 10.0
    closed_loop_breaker_threshold: int = 5
    closed_loop_breaker_cooldown_s: float = 30.0
    closed_loop_timer_interval_s: float = 5.0
