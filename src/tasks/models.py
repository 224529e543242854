"""Request bodies for servers and tasks, with size caps. These models document the API."""

import json
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

PAYLOAD_LIMIT = 256 * 1024
METADATA_LIMIT = 8 * 1024

Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:\-]+$")]
Capability = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]


def _capped[V](value: V, limit: int, what: str) -> V:
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > limit:
        raise ValueError(f"{what} is {size} bytes; the limit is {limit}")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerIn(Strict):
    name: Name
    url: AnyHttpUrl
    capabilities: list[Capability] = Field(default_factory=list, max_length=32)
    capacity: int = Field(ge=1, le=10_000)
    metadata: dict[str, Any] | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_size(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _capped(value, METADATA_LIMIT, "metadata")


class HeartbeatIn(Strict):
    load: float | None = Field(default=None, ge=0)
    # A count, or better the ids of the tasks the server is working on: a task it holds that
    # two heartbeats leave out has lost its callback, and moves on without waiting out timeout_s.
    active_tasks: (
        Annotated[int, Field(ge=0)]
        | Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=10_000)]
        | None
    ) = None
    version: str | None = Field(default=None, max_length=64)


class TaskIn(Strict):
    type: Name
    payload: Any = None
    priority: int = Field(default=0, ge=-100, le=100)
    required_capabilities: list[Capability] = Field(default_factory=list, max_length=32)
    timeout_s: float = Field(default=300, gt=0, le=86_400)
    max_attempts: int = Field(default=3, ge=1, le=20)

    @field_validator("payload")
    @classmethod
    def _payload_size(cls, value: Any) -> Any:
        return _capped(value, PAYLOAD_LIMIT, "payload")


class TaskBatchIn(Strict):
    tasks: list[TaskIn] = Field(min_length=1, max_length=100)


class TaskUpdateIn(Strict):
    status: Literal["running", "succeeded", "failed", "cancelled"]
    result: Any = None
    error: str | None = Field(default=None, max_length=4096)
    progress: float | None = Field(default=None, ge=0, le=1)

    @field_validator("result")
    @classmethod
    def _result_size(cls, value: Any) -> Any:
        return _capped(value, PAYLOAD_LIMIT, "result")
