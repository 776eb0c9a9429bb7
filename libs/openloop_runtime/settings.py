"""Settings every service has, read from ``OPENLOOP_<SERVICE>_*`` environment variables.

Each service subclasses :class:`ServiceSettings` and sets its own ``env_prefix``
so that one environment can hold the settings of the whole mesh side by side.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OPENLOOP_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    host: str = "127.0.0.1"
    """Address the gRPC server binds; 0.0.0.0 in containers."""
    port: int = Field(default=0, ge=0, le=65535)
    """Port the gRPC server binds; 0 picks a free one (tests)."""
    database_url: str = ""
    """SQLAlchemy URL of the service's own database, ``postgresql+asyncpg://...``."""
    db_pool_size: int = Field(default=10, ge=1)
    """Connections kept per process; keep the mesh's sum under PostgreSQL's max_connections."""
    otlp_endpoint: str = ""
    """OTLP/gRPC collector address; spans are exported there when set, over TLS unless the
    address is ``http://...`` (a collector on the pod's own network)."""
    trace_file: Path | None = None
    """Spans are also appended here as JSON lines when set: traces without a collector."""
    log_level: str = "INFO"
    grace_period_seconds: float = Field(default=5.0, ge=0)
    """How long in-flight calls may finish after SIGTERM."""
    max_connection_age_seconds: int = Field(default=300, ge=1)
    """Clients reconnect this often so load spreads over new replicas."""
