"""Terminal progress for trials: a bar over a trial's steps, one line per finished epoch."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gansweep.trainer import Trainer, TrainerCallback

STDERR = Console(stderr=True)


def epoch_line(record: dict[str, float]) -> str:
    info = f"  info {record['info_loss']:.3f}" if record.get("info_loss") else ""
    return (
        f"epoch {record['epoch']:>3}  D {record['d_loss']:.4f}  G {record['g_loss']:.4f}  "
        f"D(x) {record['d_real']:.3f}  D(G(z)) {record['d_fake']:.3f}{info}  "
        f"{record['images_per_s']:.0f} img/s"
    )


class EpochProgress(TrainerCallback):
    """A bar over the trial's steps (ETA included) on stderr; each epoch's losses printed as it ends."""

    def __init__(self, label: str, console: Console = STDERR, print_epochs: bool = True) -> None:
        self.console = console
        self.print_epochs = print_epochs
        self.progress = Progress(
            TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("epoch {task.fields[epoch]}"),
            TimeRemainingColumn(), console=console, transient=True,
        )  # fmt: skip
        self.task = None

    def on_start(self, trainer: Trainer) -> None:
        total = trainer.hp.epochs * trainer.steps_per_epoch
        self.task = self.progress.add_task("", total=total, completed=trainer.epoch * trainer.steps_per_epoch, epoch=trainer.epoch + 1)
        self.progress.start()

    def on_step(self, trainer: Trainer, epoch: int, step: int) -> None:
        self.progress.update(self.task, advance=1, epoch=epoch)

    def on_epoch(self, trainer: Trainer, record: dict[str, float]) -> None:
        if self.print_epochs:
            self.progress.console.print(epoch_line(record))

    def on_end(self, trainer: Trainer, history) -> None:
        self.progress.stop()
