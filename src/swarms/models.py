"""The swarm HTTP API's request bodies: validated at the edge, plain dicts past it."""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

SWARMS = "SWARMS"  # the SwarmCoordinator binding: one object per swarm, named by its id
Origin = Annotated[str, Field(pattern=r"^https?://[^/\s]+$", max_length=200)]


class SwarmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    broadcast_interval_ms: int = Field(default=2000, ge=100, le=600_000)
    heartbeat_timeout_s: float = Field(default=60, ge=2, le=3600)
    join_timeout_s: float = Field(default=10, ge=1, le=300)  # upgrade to JOIN/RESUME
    max_devices: int | None = Field(default=None, ge=1, le=100_000)
    allowed_origins: list[Origin] = Field(default_factory=list, max_length=50)


class SwarmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    settings: SwarmSettings = Field(default_factory=SwarmSettings)


class InviteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_uses: int = Field(default=1, ge=1, le=10_000)
    ttl_s: int = Field(default=86_400, ge=1, le=30 * 86_400)


class Requirements(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gpu: bool = False
    min_memory_gb: float = Field(default=0, ge=0, le=1 << 20)


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    chunks: list[Any] = Field(min_length=1, max_length=10_000)
    requirements: Requirements = Field(default_factory=Requirements)
    chunk_timeout_s: float = Field(default=60, ge=1, le=86_400)
