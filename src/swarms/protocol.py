"""The swarm WebSocket protocol: every frame a JSON text `{"type": NAME, "data": {...}}`.

Heartbeats are the plain text frames `ping`/`pong`, answered by the hibernation auto-response
without waking the object. Each message's data is a pydantic model; `parse` turns any frame
into a message or a `ProtocolError` and never raises anything else, so no frame can crash the
object or reach its state unchecked.
"""

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ports import PortError, Socket

MAX_FRAME_BYTES = 64 * 1024
PING, PONG = "ping", "pong"
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# --- client -> server ---


class Join(_Data):
    invite_token: Annotated[str, Field(min_length=8, max_length=200)]


class Resume(_Data):
    device_id: Id
    ts: int = Field(ge=0)  # ms since the epoch
    nonce: Annotated[str, Field(min_length=8, max_length=64)]
    signature: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Capabilities(_Data):
    cpuCores: int = Field(ge=1, le=4096)
    memoryGB: float = Field(ge=0, le=1 << 20)
    gpuAvailable: bool
    gpuName: Annotated[str, Field(max_length=200)] | None = None


class DeviceRegister(_Data):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    capabilities: Capabilities


class BenchmarkResult(_Data):
    score: float = Field(gt=0, le=1e12)


class JobProgress(_Data):
    chunkId: Id
    pct: float = Field(ge=0, le=100)


class JobComplete(_Data):
    chunkId: Id
    result: Any = None
    error: Annotated[str, Field(max_length=2000)] | None = None
    durationMs: int | None = Field(default=None, ge=0, le=7 * 24 * 3600 * 1000)


class Sync(_Data):
    """Ask for state: a delta since `version`, or a full snapshot without one."""

    version: int | None = Field(default=None, ge=0)


CLIENT_MESSAGES: dict[str, type[_Data]] = {
    "JOIN": Join,
    "RESUME": Resume,
    "DEVICE_REGISTER": DeviceRegister,
    "BENCHMARK_RESULT": BenchmarkResult,
    "JOB_PROGRESS": JobProgress,
    "JOB_COMPLETE": JobComplete,
    "SYNC": Sync,
}
_ADAPTERS = {name: TypeAdapter(model) for name, model in CLIENT_MESSAGES.items()}


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: Annotated[str, Field(max_length=64)]
    data: dict[str, Any] = Field(default_factory=dict)


class ProtocolError(Exception):
    def __init__(self, code: Literal["too_large", "bad_json", "unknown_type", "invalid"], msg: str):
        super().__init__(msg)
        self.code = code
        self.message = msg


def parse(frame: str | bytes) -> tuple[str, _Data]:
    """A client frame as `(type, data)`; raises `ProtocolError` for anything else."""
    size = len(frame) if isinstance(frame, bytes) else len(frame.encode("utf-8", "replace"))
    if size > MAX_FRAME_BYTES:
        raise ProtocolError("too_large", f"frame over {MAX_FRAME_BYTES} bytes")
    if isinstance(frame, bytes):
        raise ProtocolError("bad_json", "binary frames are not part of the protocol")
    try:
        raw = json.loads(frame)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json", "frame is not JSON") from None
    try:
        envelope = _Envelope.model_validate(raw)
    except ValidationError:
        raise ProtocolError("invalid", 'expected {"type": NAME, "data": {...}}') from None
    adapter = _ADAPTERS.get(envelope.type)
    if adapter is None:
        raise ProtocolError("unknown_type", f"unknown message type {envelope.type[:64]!r}")
    try:
        return envelope.type, adapter.validate_python(envelope.data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})
        raise ProtocolError("invalid", f"invalid {envelope.type}: {', '.join(fields)}") from None


def frame(kind: str, data: dict[str, Any]) -> str:
    """A server frame: WELCOME, STATE, JOB_ASSIGN, SYSTEM_LOG or ERROR."""
    return json.dumps({"type": kind, "data": data}, separators=(",", ":"), default=str)


def deliver(socket: Socket, message: str) -> bool:
    """Send unless the socket has gone away (its close event follows); never raises."""
    try:
        socket.send(message)
    except PortError:
        return False
    return True


def hang_up(socket: Socket, code: int, reason: str) -> None:
    """Close from our side; frames already in flight from the client are then ignored."""
    socket.attach({**(socket.attachment or {}), "dev": None, "closed": True})
    socket.close(code, reason)
