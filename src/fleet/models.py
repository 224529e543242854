"""The fleet API's request bodies, validated at the edge (sizes capped; the app also caps any
body at 1 MiB)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fleet.rollout import Policy

# Cloudflare's Worker names: lower-case letters, digits, dashes and underscores, up to 63.
WorkerName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
ModuleName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\"\r\n\\]+$")]
Label = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
Short = Annotated[str, Field(min_length=1, max_length=100)]
Date = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
Message = Annotated[str, Field(max_length=100)]
VersionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
Modules = Annotated[dict[ModuleName, str], Field(min_length=1, max_length=50)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Binding(BaseModel):
    """A binding as Cloudflare's upload metadata has it (`type`, `name`, then its own fields:
    `text`, `namespace_id`, `service`...)."""

    model_config = ConfigDict(extra="allow")
    type: Annotated[str, Field(pattern=r"^[a-z_0-9]{1,40}$")]
    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class WorkerMetadata(_Body):
    type: Short
    environment: Short
    customer_id: Short | None = None


class _Code(_Body):
    main_module: ModuleName
    modules: Modules

    @model_validator(mode="after")
    def _main_is_a_module(self) -> _Code:
        if self.main_module not in self.modules:
            raise ValueError(f"main_module {self.main_module!r} is not one of the modules")
        return self


class WorkerIn(_Code):
    name: WorkerName
    compatibility_date: Date | None = None
    compatibility_flags: list[Short] = Field(default=[], max_length=20)
    bindings: list[Binding] = Field(default=[], max_length=100)
    routes: list[Annotated[str, Field(max_length=300)]] = Field(default=[], max_length=20)
    metadata: WorkerMetadata
    message: Message | None = None


class WorkerUpdate(_Body):
    modules: Modules | None = None
    main_module: ModuleName | None = None
    compatibility_date: Date | None = None
    bindings: list[Binding] | None = Field(default=None, max_length=100)
    deploy: bool = True
    message: Message | None = None

    @model_validator(mode="after")
    def _something(self) -> WorkerUpdate:
        if self.modules is None and self.bindings is None and self.compatibility_date is None:
            raise ValueError("give modules, bindings or compatibility_date")
        if self.modules is not None and self.main_module is None:
            raise ValueError("with modules, give main_module")
        if self.modules is not None and self.main_module not in self.modules:
            raise ValueError(f"main_module {self.main_module!r} is not one of the modules")
        if self.modules is None and not self.deploy:
            raise ValueError("a version without deploying needs modules (settings deploy)")
        return self


class VersionShare(_Body):
    version_id: VersionId
    percentage: Annotated[float, Field(ge=0, le=100)]


class DeploymentIn(_Body):
    versions: list[VersionShare] = Field(min_length=1, max_length=2)
    message: Message | None = None

    @model_validator(mode="after")
    def _sums_to_100(self) -> DeploymentIn:
        total = sum(v.percentage for v in self.versions)
        if abs(total - 100) > 1e-9:
            raise ValueError(f"the percentages sum to {total:g}, not 100")
        return self


class RollbackIn(_Body):
    version_id: VersionId | None = None
    message: Message | None = None


class RolloutIn(_Body):
    version_id: VersionId
    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field(default=[10, 50, 100], max_length=10)
    step_interval_s: Annotated[float, Field(ge=1, le=86_400)] = 300
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.05
    min_requests: Annotated[int, Field(ge=0, le=1_000_000)] = 100

    def policy(self) -> Policy:
        return Policy(
            steps=tuple(self.steps),
            step_interval_ms=int(self.step_interval_s * 1000),
            max_error_rate=self.max_error_rate,
            min_requests=self.min_requests,
        )

    @model_validator(mode="after")
    def _steps(self) -> RolloutIn:
        self.policy()  # raises ValueError with the reason
        return self


class ScaleIn(_Body):
    cpu_limit_ms: Annotated[int, Field(ge=10, le=300_000)] | None = None
    placement: Literal["smart", "off"] | None = None
    # Not settable on Workers: accepted here only to be answered with the reason (422).
    instances: Any = None
    memory_limit: Any = None


class AutoScaleIn(_Body):
    apply: bool = False


class TemplateIn(_Code):
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    type: Short
    default_bindings: list[Binding] = Field(default=[], max_length=50)


class FromR2In(_Body):
    r2_key: Annotated[str, Field(min_length=1, max_length=300)]
    worker_name: WorkerName
    environment: Short
    message: Message | None = None


VarName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]


class CustomerConfiguration(_Body):
    vars: dict[VarName, Annotated[str, Field(max_length=5000)]] = Field(default={}, max_length=50)
    cpu_limit_ms: Annotated[int, Field(ge=1, le=300_000)] = 50
    subrequest_limit: Annotated[int, Field(ge=1, le=1000)] = 50


class CustomerWorkerIn(_Body):
    customer_id: Short
    subdomain: Label
    template: Short
    configuration: CustomerConfiguration = CustomerConfiguration()
