"""The TensorRT plan cache: where plans live, what they are keyed on, and when one is stale. Pure Python.

A plan is only valid for the model bytes, TensorRT version, GPU and builder settings it was built with.
Each `<name>-<precision>-<digest>.plan` has a JSON header beside it (`.json`) recording those, so a plan
from another TensorRT or GPU is recognised and rebuilt (with a warning) instead of crashing the loader.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from perception.errors import EngineError

HEADER_FORMAT = 1


def default_cache_dir() -> Path:
    """`$PERCEPTION_ENGINE_CACHE`, else `$XDG_CACHE_HOME/perception/engines` (`~/.cache/...`)."""
    explicit = os.environ.get("PERCEPTION_ENGINE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "perception" / "engines"


@dataclass(frozen=True)
class BuildConfig:
    """Builder settings that change the plan (they go into the key through `config_hash`)."""

    flags: tuple[str, ...] = ()  # builder precision flags, from PrecisionChoice.flags
    workspace_mb: int = 1024
    optimization_level: int = 3  # TensorRT's default; higher searches longer for faster tactics

    def config_hash(self) -> str:
        text = json.dumps({"flags": sorted(self.flags), "workspace_mb": self.workspace_mb,
                           "optimization_level": self.optimization_level}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class PlanKey:
    """Everything a plan depends on. Two equal keys mean a plan can be reused."""

    model_sha256: str
    trt_version: str
    compute_capability: str  # "sm87"
    precision: str
    config_hash: str

    def digest(self) -> str:
        text = "|".join(str(getattr(self, f.name)) for f in fields(self))
        return hashlib.sha256(text.encode()).hexdigest()

    def plan_path(self, cache_dir: str | Path, model_name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_name) or "model"
        return Path(cache_dir) / f"{safe}-{self.precision}-{self.digest()[:16]}.plan"


@dataclass(frozen=True)
class PlanHeader:
    """The JSON written beside each plan."""

    key: PlanKey
    model_name: str
    model_path: str
    gpu_name: str
    built_at: str  # ISO 8601, UTC
    build_seconds: float = 0.0
    format: int = HEADER_FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["key"] = asdict(self.key)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PlanHeader":
        key = PlanKey(**{f.name: str(data["key"][f.name]) for f in fields(PlanKey)})
        return cls(key=key, model_name=str(data["model_name"]), model_path=str(data["model_path"]),
                   gpu_name=str(data["gpu_name"]), built_at=str(data["built_at"]),
                   build_seconds=float(data.get("build_seconds", 0.0)), format=int(data.get("format", 1)),
                   extra=dict(data.get("extra", {})))


def header_path(plan_path: str | Path) -> Path:
    return Path(plan_path).with_suffix(".json")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file + rename, so a crash mid-write never leaves a half plan under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_plan(plan_path: str | Path, plan: bytes, header: PlanHeader) -> Path:
    """Store a plan and then its header (a plan without a header is treated as stale)."""
    plan_path = Path(plan_path)
    try:
        _atomic_write(plan_path, bytes(plan))
        _atomic_write(header_path(plan_path), json.dumps(header.to_dict(), indent=2, sort_keys=True).encode())
    except OSError as err:
        raise EngineError(f"cannot write the plan cache: {err}", subject=str(plan_path),
                          hint="set PERCEPTION_ENGINE_CACHE to a writable folder") from err
    return plan_path


def read_header(plan_path: str | Path) -> PlanHeader:
    """The header beside a plan; EngineError when it is missing or unreadable."""
    path = header_path(plan_path)
    try:
        data = json.loads(path.read_text())
        return PlanHeader.from_dict(data)
    except FileNotFoundError as err:
        raise EngineError("has no header beside it", subject=str(plan_path)) from err
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise EngineError(f"has an unreadable header ({type(err).__name__}: {err})", subject=str(plan_path)) from err


def key_mismatches(header: PlanHeader, expected: PlanKey, gpu_name: str | None = None) -> list[str]:
    """Why a plan with `header` cannot serve `expected`, in words; empty when it can."""
    got = header.key
    reasons = []
    if got.model_sha256 != expected.model_sha256:
        reasons.append(f"the model changed (plan built from {got.model_sha256[:12]}, model is {expected.model_sha256[:12]})")
    if got.trt_version != expected.trt_version:
        reasons.append(f"built with TensorRT {got.trt_version}, this machine has {expected.trt_version}")
    if got.compute_capability != expected.compute_capability:
        reasons.append(f"built for {got.compute_capability}, this GPU is {expected.compute_capability}")
    elif gpu_name and header.gpu_name and header.gpu_name != gpu_name:
        reasons.append(f"built on {header.gpu_name}, this GPU is {gpu_name}")
    if got.precision != expected.precision:
        reasons.append(f"built at {got.precision}, {expected.precision} is wanted")
    if got.config_hash != expected.config_hash:
        reasons.append("built with other builder settings")
    return reasons


@dataclass(frozen=True)
class PlanDecision:
    """What to do with the cache slot for a key: "load" the plan there, or "build" one (and why)."""

    action: str  # "load" | "build"
    reason: str
    warn: bool = False  # a stale or broken plan (worth a WARNING), not just a first build


def decide_plan(plan_path: str | Path, expected: PlanKey, *, gpu_name: str | None = None,
                force: bool = False) -> PlanDecision:
    """Load the cached plan only when it exists and its header matches `expected` in every field."""
    plan_path = Path(plan_path)
    if force:
        return PlanDecision("build", "a rebuild was asked for (--force)")
    if not plan_path.is_file():
        return PlanDecision("build", "no cached plan yet")
    if plan_path.stat().st_size == 0:
        return PlanDecision("build", "the cached plan is empty", warn=True)
    try:
        header = read_header(plan_path)
    except EngineError as err:
        return PlanDecision("build", f"the cached plan {err.message}", warn=True)
    reasons = key_mismatches(header, expected, gpu_name)
    if reasons:
        return PlanDecision("build", "the cached plan is stale: " + "; ".join(reasons), warn=True)
    return PlanDecision("load", f"cached plan built {header.built_at}")


@dataclass(frozen=True)
class Machine:
    """This machine as far as plans care; None fields where unknown (no TensorRT / no GPU)."""

    trt_version: str | None = None
    compute_capability: str | None = None
    gpu_name: str | None = None


@dataclass(frozen=True)
class CachedPlan:
    """A plan found in the cache folder, its header (if readable), and whether it is current here."""

    path: Path
    header: PlanHeader | None
    current: bool | None  # None: cannot tell on this machine
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "header": self.header.to_dict() if self.header else None,
                "current": self.current, "reason": self.reason, "bytes": _size(self.path)}


def plan_currency(header: PlanHeader, machine: Machine) -> tuple[bool | None, str]:
    """Whether a cached plan would load on `machine` for the model file it was built from."""
    model = Path(header.model_path)
    reasons = []
    if model.is_file():
        from perception.engines.model_file import sha256_of

        if sha256_of(model) != header.key.model_sha256:
            reasons.append(f"{model.name} changed since the plan was built")
    if machine.trt_version and header.key.trt_version != machine.trt_version:
        reasons.append(f"built with TensorRT {header.key.trt_version}, this machine has {machine.trt_version}")
    if machine.compute_capability and header.key.compute_capability != machine.compute_capability:
        reasons.append(f"built for {header.key.compute_capability}, this GPU is {machine.compute_capability}")
    if reasons:
        return False, "; ".join(reasons)
    if not (machine.trt_version and machine.compute_capability):
        return None, "cannot tell here: no TensorRT or no GPU on this machine"
    return True, "current"


def list_plans(cache_dir: str | Path, machine: Machine) -> list[CachedPlan]:
    """Every `*.plan` in the cache folder with its header and currency."""
    folder = Path(cache_dir)
    found = []
    for plan in sorted(folder.glob("*.plan")) if folder.is_dir() else []:
        try:
            header = read_header(plan)
        except EngineError as err:
            found.append(CachedPlan(plan, None, False, err.message))
            continue
        current, reason = plan_currency(header, machine)
        found.append(CachedPlan(plan, header, current, reason))
    return found


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
