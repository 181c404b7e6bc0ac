from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gansweep.config import SweepConfig
from gansweep.errors import GansweepError
from gansweep.mlruns import default_tracking_uri
from gansweep.options import GROUP_SIZE, HEARTBEAT

GRACE_HEARTBEATS = 4
"""A trial whose worker has missed this many heartbeats in a row is taken over by another worker."""


@dataclass(frozen=True)
class SweepSettings:
    """Where a sweep keeps its state, and how it spreads work. All fields are plain data so that
    worker processes can be started from them."""

    config: SweepConfig
    config_text: str
    study_name: str
    store: Path
    storage: str | None = None
    """An Optuna RDB URL (several processes or machines share the sweep); None = the journal file
    in ``store`` (one `gansweep run` at a time)."""
    tracking_uri: str | None = None
    """An MLflow tracking URI; None = SQLite in ``store``."""
    devices: tuple[str, ...] = ("auto",)
    """One worker per entry (``--devices``), or ``workers`` copies of the config's device."""
    auto_workers: bool = False
    """``--workers auto``: ``devices`` holds the config's one device, and ``run_sweep`` starts as many
    workers on it as ``auto_workers`` picks for the trials left (on a GPU: one)."""
    heartbeat: int = HEARTBEAT
    """Seconds between a worker's heartbeats (RDB storage only)."""
    retry_failed: bool = False
    """Queue points whose trial raised an error again (``--retry-failed``)."""
    group_size: int | Literal["auto"] = GROUP_SIZE
    """Trials trained together as one fused model (``--group-size``, else the grid's ``group_size``)."""

    def __post_init__(self) -> None:
        for flag, value in (("--storage", self.storage), ("--tracking-uri", self.tracking_uri)):
            if value is not None and not value.strip():  # else one check would read it as given, another not
                raise GansweepError(f"{flag} {value!r} names no store: give its URL, or leave {flag} out")

    @property
    def shared(self) -> bool:
        """True when other processes or machines may work on the sweep at the same time."""
        return self.storage is not None

    @property
    def journal(self) -> Path:
        """The default (unshared) storage's file."""
        return self.store / "optuna.journal"

    @property
    def grace_period(self) -> int:
        return GRACE_HEARTBEATS * self.heartbeat

    @property
    def mlflow_uri(self) -> str:
        return self.tracking_uri or default_tracking_uri(self.store)

    @property
    def artifact_root(self) -> Path | None:
        """Local artifacts for the default store; a tracking server decides its own."""
        return None if self.tracking_uri else self.store / "artifacts"
