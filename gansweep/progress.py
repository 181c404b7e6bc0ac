"""Terminal progress for trials: a bar over a trial's steps, one line per finished epoch. Where no terminal
draws the bars (output piped to a file, a CI log), a sweep prints a line per epoch of each trial instead, and
one every ``PIPED_EVERY`` seconds of an epoch that takes longer."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from gansweep.diagnostics.flags import illegible
from gansweep.diagnostics.metrics import distinct_words, unreadable
from gansweep.trainer import Trainer, TrainerCallback, precision_line

STDERR = Console(stderr=True)
PIPED_EVERY = 30.0
"""Seconds of silence, at most, within a trial's epoch when output is piped: on 2 CPU cores a quickstart
epoch takes 10-40 s, a full-MNIST one minutes."""


def epoch_line(record: dict[str, float]) -> str:
    info = f"  info {record['info_loss']:.3f}" if record.get("info_loss") else ""
    return (
        f"epoch {record['epoch']:>3}  D {record['d_loss']:.4f}  G {record['g_loss']:.4f}  "
        f"D(x) {record['d_real']:.3f}  D(G(z)) {record['d_fake']:.3f}{info}  "
        f"{record['images_per_s']:.0f} img/s"
    )


class EpochProgress(TrainerCallback):
    """A bar over the trial's steps (ETA included) on stderr; each epoch's losses printed as it ends."""

    def __init__(self, label: str, console: Console = STDERR) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epoch {task.fields[epoch]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = TaskID(-1)  # set by on_start

    def on_start(self, trainer: Trainer) -> None:
        if trainer.precision_rates:
            self.console.print(precision_line(trainer))
        total = trainer.hp.epochs * trainer.steps_per_epoch
        self.task = self.progress.add_task(
            "", total=total, completed=trainer.epoch * trainer.steps_per_epoch, epoch=trainer.epoch + 1
        )
        self.progress.start()

    def on_step(self, trainer: Trainer, epoch: int, step: int) -> None:
        self.progress.update(self.task, advance=1, epoch=epoch)

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None:
        self.progress.console.print(epoch_line(record))

    def on_end(self, trainer: Trainer, history) -> None:
        self.progress.stop()


class SweepProgress:
    """Renders worker events: a bar for the sweep (trials done / total, ETA), one per running trial, and
    a line per finished trial. ``live=False`` prints the lines only."""

    def __init__(self, console: Console = STDERR, live: bool = True) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not live,
        )
        self.sweep_task: TaskID | None = None
        self.trials: dict[str, tuple[TaskID, str]] = {}
        """Running trials: key -> (progress task, label)."""
        self.piped = not live or not (console.is_terminal or console.is_jupyter)
        """No bars to see: lines instead."""
        self.steps: dict[str, list[float]] = {}
        """Running trials, piped: key -> [steps done, steps in all, epochs, when its last line was printed]."""

    def __enter__(self) -> SweepProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: tuple[str, dict]) -> None:
        kind, payload = event
        if kind == "sweep":
            self.sweep_task = self.progress.add_task("sweep", total=payload["total"], completed=payload["done"])
            if payload["done"]:
                self.console.print(f"{payload['done']} of {payload['total']} trials already complete in the store")
        elif kind == "start":
            label = escape(payload["label"])  # a sweep's words (paths, errors), never rich's markup
            task = self.progress.add_task(f"  {label}", total=payload["total"], completed=payload["done"])
            self.trials[payload["key"]] = (task, label)
            epochs = payload.get("epochs", 0)
            self.steps[payload["key"]] = [payload["done"], payload["total"], epochs, time.monotonic()]
        elif kind == "step" and payload["key"] in self.trials:
            self.progress.advance(self.trials[payload["key"]][0])
            self._piped_step(payload["key"])
        elif kind == "epoch" and self.piped and payload["key"] in self.trials:
            record, (_, label) = payload["record"], self.trials[payload["key"]]
            epochs = int(self.steps[payload["key"]][2])
            of = f"/{epochs}" if epochs else ""
            fid = ""
            if "fid_mnist" in record:
                fid = "  samples unreadable" if unreadable(record) else f"  fid_mnist {record['fid_mnist']:.0f}"
            line = epoch_line(record).replace(f"epoch {record['epoch']:>3}", f"epoch {int(record['epoch'])}{of}")
            self.console.print(f"  {label}  {line}{fid}", soft_wrap=True)
            self.steps[payload["key"]][3] = time.monotonic()
        elif kind == "end":
            running = self.trials.pop(payload["key"], None)
            self.steps.pop(payload["key"], None)
            label = running[1] if running else escape(payload["key"])
            if running is not None:
                self.progress.remove_task(running[0])
            final = payload.get("final") or {}
            detail = escape(payload.get("verdict") or payload.get("error", ""))
            if final and "fid_mnist" in final:
                detail += f"  ({final_words(final)})"
            self.console.print(f"{payload['state'].upper():<11} {label}  {detail}", soft_wrap=True)
            if self.sweep_task is not None and payload["state"] != "interrupted":
                self.progress.advance(self.sweep_task)
        elif kind in ("warning", "note"):
            prefix = "warning: " if kind == "warning" else ""
            self.console.print(f"{prefix}{escape(payload['message'])}", soft_wrap=True)  # one line, however long

    def _piped_step(self, key: str) -> None:
        """Piped: a line when a trial's epoch has been silent for ``PIPED_EVERY`` seconds."""
        counts = self.steps.get(key)
        if counts is None:
            return
        counts[0] += 1
        if self.piped and time.monotonic() - counts[3] >= PIPED_EVERY:
            counts[3] = time.monotonic()
            self.console.print(f"  {self.trials[key][1]}  step {int(counts[0])}/{int(counts[1])}", soft_wrap=True)


def final_words(final: dict[str, float]) -> str:
    """What a trial's last evaluation measured, in a few words. Samples the judge cannot read get no digit
    count: on near-copies at confidence 0.19 it counted 4/10 digits, which read as progress."""
    if unreadable(final):
        return "samples unreadable"
    words = f"fid_mnist {final['fid_mnist']:.0f}"
    if illegible(final):
        return f"{words}, no legible digits (judge confidence {final['confidence']:.2f})"
    words += f", {final['modes_covered']}/10 digits"
    return words + (f", {distinct_words(final['distinct'])} distinct" if "distinct" in final else "")
