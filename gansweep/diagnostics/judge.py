"""The judge: a small CNN digit classifier that scores generated samples.

A Fréchet distance means something only over one fixed feature network (pytorch-fid and clean-fid pin
their Inception weights by checksum for that reason), so the judges of ``mnist-5k`` and ``mnist`` ship
inside the package (``judges/``), made by ``scripts/make_judges.py`` from ``train_judge``, and every judge
is known by the sha256 of its weights (``Judge.sha256``, shown as ``Judge.name``). A sweep records the
judge its first worker loads, and every later worker must score with the same one (``sweep._judge``).
Data sets without a shipped judge (``fashion-mnist``) train theirs on first use, on the worker's device,
once per machine: the first worker trains under a file lock while the others wait, and the result is
cached (``$GANSWEEP_CACHE`` or ``~/.cache/gansweep``).

Example:
    >>> from gansweep.data import load_dataset
    >>> from gansweep.diagnostics.judge import load_judge
    >>> judge = load_judge(load_dataset("mnist-5k"))
    >>> judge.source, judge.accuracy > 0.97
    ('shipped', True)
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from gansweep.data import Digits
from gansweep.errors import GansweepError

JUDGE_VERSION = 4
"""Bump when the network or its training changes (and run ``scripts/make_judges.py``): judges of other
versions, shipped or cached, are not loaded. 4: shipped judges; the training length set in images."""
SHIPPED = Path(__file__).parent / "judges"
"""``<data set>.pt`` for each data set of ``SHIPPED_JUDGES``."""
SHIPPED_JUDGES = {
    "mnist-5k": "33f673a29ac71aaa9d7f9360ad80afebdf0af00ff76357992efe90d21b0a905e",
    "mnist": "7f3461b953fe15fa45f7b7cd9a8d1a8a25378c370aecb4043b9144965fd155c7",
}
"""Data set -> sha256 of the judge that ships for it (``scripts/make_judges.py`` prints it). The flags'
thresholds were measured with these, so such a data set's judge is never replaced: a file that is
missing (a wheel built without its package data), damaged or another judge is refused, not retrained."""
REINSTALL = "reinstall gansweep (pip install --force-reinstall gansweep; in a checkout, pip install -e .)"
FEATURES = 128
WIDTH = 16
IMAGES = 15 * 4500
"""Digits shown in training, whatever the set's size, in whole epochs: 15 epochs of mnist-5k's 4,500
(97.2 % held-out accuracy, ~40 s on 2 CPU cores; width 32 gained 0.4 points for 2.5x the time), 2 epochs
of mnist's or fashion-mnist's 60,000. Counted in images rather than epochs because fashion-mnist's judge
is trained where a sweep first needs it: 15 epochs of 60,000 digits would be ~9 minutes of a CPU."""
BATCH_SIZE = 64
OUTLIER_WEIGHT = 0.5
"""Outlier exposure (Hendrycks et al., 2019): besides digits, the judge sees noise images and is
trained towards a uniform prediction on them, so that garbage gets a low max-softmax (``confidence``)
instead of a confident wrong digit. Measured: uniform noise 0.10 confidence (0.997 without it)."""
SAY_AFTER = 20
"""Training steps timed before the progress line gives its estimate of the whole."""


class JudgeNet(nn.Module):
    """Two blocks of two 3x3 convs and a 128-wide feature layer (the Fréchet distance is taken there)."""

    def __init__(self, width: int = WIDTH) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(2 * w * 7 * 7, FEATURES),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(FEATURES, 10))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return features, self.head(features)


def to_judge_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1, H, W) images of any size -> float 28x28 in [-1, 1]."""
    x = images.float() / 127.5 - 1
    if x.shape[-1] != 28:
        x = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True)
    return x


def _outliers(n: int, generator: torch.Generator) -> torch.Tensor:
    """Non-digits in [-1, 1]: uniform pixel noise, smoothed noise, or random blobs."""
    kind = int(torch.randint(0, 3, (1,), generator=generator))
    x = torch.rand(n, 1, 28, 28, generator=generator) * 2 - 1
    if kind == 1:
        x = F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), 5, 1) * 3
    elif kind == 2:
        coarse = torch.rand(n, 1, 7, 7, generator=generator)
        x = (F.interpolate(coarse, size=(28, 28), mode="bilinear") > 0.6).float() * 2 - 1
    return x.clamp(-1, 1)


def _shifted(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    # Random shifts of up to 2 pixels: 4,500 digits are few, and GAN samples are rarely centred.
    dx, dy = torch.randint(-2, 3, (2,), generator=generator).tolist()
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    """sha256 of a network's weights: names, dtypes, shapes and values, in name order (the same weights
    give the same fingerprint whatever file or memory layout they come in)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


@dataclass
class Judge:
    """A trained judge with its measured held-out accuracy and the fingerprint of its weights."""

    net: JudgeNet
    dataset: str
    accuracy: float
    source: str = "trained"
    """shipped (with the package), cached (trained on this machine before) or trained (just now)."""
    references: dict[str, dict[str, Any]] = field(default_factory=dict)
    """sha256 of held-out images (``images_sha256``) -> what ``metrics.Reference`` keeps of them under
    this judge. A shipped judge carries its data set's: computing it takes each worker ~2.4 s on full
    MNIST's 10,000 held-out digits (1 CPU thread), which every sweep would wait for."""

    def __post_init__(self) -> None:
        self.net.cpu()
        self.sha256 = fingerprint(self.net.state_dict())
        # channels_last: the judge runs after every epoch, and on the CPU its convolutions take 0.6x the
        # time in that layout (256 digits on 2 cores: 21 ms against 34 ms), with the same features.
        self.net.to(memory_format=torch.channels_last)

    @property
    def name(self) -> str:
        """How stores and tables name it: ``mnist-5k/v4/1a2b3c4d5e6f`` (data set, version, sha256 prefix)."""
        return f"{self.dataset}/v{JUDGE_VERSION}/{self.sha256[:12]}"

    @property
    def record(self) -> dict[str, Any]:
        """What a sweep records of the judge that scores it."""
        return {"name": self.name, "sha256": self.sha256, "accuracy": round(self.accuracy, 5)}

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images -> (features (N, 128), class probabilities (N, 10))."""
        self.net.eval()
        inputs = (
            to_judge_input(images[i : i + batch]).contiguous(memory_format=torch.channels_last)
            for i in range(0, len(images), batch)
        )
        outputs = [self.net(x) for x in inputs]
        return torch.cat([f for f, _ in outputs]), torch.cat([logits for _, logits in outputs]).softmax(dim=1)


def images_sha256(images: torch.Tensor) -> str:
    return hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()


def train_judge(
    digits: Digits, seed: int = 0, device: str | torch.device = "cpu", say: Callable[[str], None] | None = None
) -> Judge:
    """A judge trained on ``digits``' training split for ``IMAGES`` digits; ``say`` hears, once
    ``SAY_AFTER`` steps are timed, what is being trained and about how long it will take."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = JudgeNet().to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = to_judge_input(digits.train_images).to(device), digits.train_labels.to(device)
    epochs = math.ceil(IMAGES / len(x))
    steps = (len(x) + BATCH_SIZE - 1) // BATCH_SIZE
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=epochs * steps)
    started, step = time.perf_counter(), 0
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(x), generator=generator).to(device)
        for i in range(0, len(x), BATCH_SIZE):
            idx = order[i : i + BATCH_SIZE]
            _, logits = net(_shifted(x[idx], generator))
            _, outlier_logits = net(_outliers(BATCH_SIZE // 2, generator).to(device))
            uniform = -outlier_logits.log_softmax(dim=1).mean()  # cross-entropy to the uniform distribution
            loss = F.cross_entropy(logits, y[idx]) + OUTLIER_WEIGHT * uniform
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if step == SAY_AFTER and say is not None:
                left = (time.perf_counter() - started) / step * (epochs * steps - step)
                say(
                    f"training the {digits.name} judge on {device}: {epochs} epoch(s) of {len(x):,} digits, "
                    f"about {left:.0f} s more"
                )
    judge = Judge(net, digits.name, 0.0)
    _, probs = judge(digits.heldout_images)
    judge.accuracy = (probs.argmax(dim=1) == digits.heldout_labels).float().mean().item()
    return judge


def cache_dir() -> Path:
    """``$GANSWEEP_CACHE``, or ``~/.cache/gansweep`` when it is unset or empty (an empty one named the
    working folder)."""
    return Path(os.environ.get("GANSWEEP_CACHE") or Path.home() / ".cache" / "gansweep")


def save_judge(judge: Judge, path: Path, made: dict[str, Any] | None = None) -> None:
    """Writes ``judge`` to ``path`` at once (a reader never sees half a file), with its accuracy, version
    and fingerprint; ``made`` says how it was made (shipped judges: the script, seed, threads, torch)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    state = {k: v.contiguous() for k, v in judge.net.state_dict().items()}
    saved = {"net": state, "dataset": judge.dataset, "accuracy": judge.accuracy, "version": JUDGE_VERSION}
    torch.save(saved | {"sha256": judge.sha256, "made": made or {}, "references": judge.references}, partial)
    partial.replace(path)


class OtherDataset(GansweepError):
    """A judge file that reads, of another data set: put there by hand, not a damaged write."""


def read_judge(path: Path, source: str, dataset: str | None = None) -> Judge:
    """The judge saved at ``path``; ``GansweepError`` when it is not one of this version (of ``dataset``,
    when given) or its weights are not the ones it was saved with."""
    try:
        saved = torch.load(path, weights_only=True)
        net = JudgeNet()
        net.load_state_dict(saved["net"])
        judge = Judge(net, saved["dataset"], float(saved["accuracy"]), source, saved.get("references", {}))
    except Exception as error:  # torch's unpickler and load_state_dict raise many kinds
        raise GansweepError(f"judge file {path} cannot be read ({type(error).__name__})") from None
    if saved.get("version") != JUDGE_VERSION or saved.get("sha256") != judge.sha256:
        raise GansweepError(f"judge file {path} is not a version {JUDGE_VERSION} judge with the weights it names")
    if dataset is not None and judge.dataset != dataset:
        raise OtherDataset(f"judge file {path} is a judge of {judge.dataset}, not of {dataset}")
    return judge


def shipped_judge(dataset: str) -> Judge:
    """The judge that ships for ``dataset`` (one of ``SHIPPED_JUDGES``); ``GansweepError``, with the fix,
    when its file is missing, damaged or another judge."""
    path = SHIPPED / f"{dataset}.pt"
    if path.is_dir():  # it said "missing ... lacks its package data"
        raise GansweepError(f"judge file {path} is a folder: not the judge that ships with gansweep; {REINSTALL}")
    if not path.is_file():
        raise GansweepError(
            f"the {dataset} judge that ships with gansweep is missing ({path}): this installation lacks its "
            f"package data (a wheel built without it?); {REINSTALL}"
        )
    try:
        judge = read_judge(path, "shipped", dataset)
    except GansweepError as error:
        raise GansweepError(
            f"{error}: not the judge that ships with gansweep (damaged or replaced); {REINSTALL}"
        ) from None
    if judge.sha256 != SHIPPED_JUDGES[dataset]:
        raise GansweepError(
            f"judge file {path} is not the {dataset} judge this gansweep ships (sha256 {judge.sha256[:12]}, not "
            f"{SHIPPED_JUDGES[dataset][:12]}): the flags are calibrated on the latter; {REINSTALL}"
        )
    return judge


def shipped_name(dataset: str) -> str | None:
    """``Judge.name`` of the judge that ships for ``dataset``, or None when its judge is trained on first use."""
    sha256 = SHIPPED_JUDGES.get(dataset)
    return None if sha256 is None else f"{dataset}/v{JUDGE_VERSION}/{sha256[:12]}"


def shipped(dataset: str) -> Path | None:
    """The shipped judge's file for ``dataset`` (which may be missing: ``shipped_judge`` says so), or None
    when its judge is trained on first use."""
    return SHIPPED / f"{dataset}.pt" if dataset in SHIPPED_JUDGES else None


def cached(dataset: str) -> Path:
    return cache_dir() / f"judge-{dataset}-v{JUDGE_VERSION}.pt"


def check_cache() -> None:
    """The judge cache takes files: checked before a sweep or ``diagnose`` that may train a judge starts,
    which would otherwise fail after the work (a file, a path under a file, /proc)."""
    folder = cache_dir()
    where = f"GANSWEEP_CACHE={folder}" if os.environ.get("GANSWEEP_CACHE") else f"judge cache {folder}"
    fix = "; the judges trained on first use are cached there: point GANSWEEP_CACHE at a writable folder"
    try:
        if (folder.exists() or folder.is_symlink()) and not folder.is_dir():  # mkdir would say "File exists"
            raise GansweepError(f"{where}: not a folder (a file, or a link to no folder){fix}")
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise GansweepError(f"{where}: cannot write into that folder ({error.strerror}){fix}") from None


def check_judge(dataset: str) -> None:
    """Before a sweep writes anything: the judge that ships for ``dataset`` is there and whole, or the
    cache that one trained on first use goes to takes files and holds no judge of another data set."""
    if dataset in SHIPPED_JUDGES:
        shipped_judge(dataset)
        return
    check_cache()
    path = cached(dataset)
    for taken in (path, path.with_name(path.name + ".lock")):
        if taken.exists() and not taken.is_file():
            raise GansweepError(f"judge cache: {taken} is not a file (a folder?); move it aside")
    if path.is_file():
        try:
            read_judge(path, "cached", dataset)
        except OtherDataset as error:
            raise _put_by_hand(error, dataset) from None
        except GansweepError:  # damaged: trained again, or fetched from the sweep's run
            pass


def _put_by_hand(error: OtherDataset, dataset: str) -> GansweepError:
    return GansweepError(f"{error}: move it aside, and a {dataset} judge is trained on first use")


def load_judge(digits: Digits, device: str | torch.device = "cpu", say: Callable[[str], None] | None = None) -> Judge:
    """The shipped judge for this data set; else the one this machine trained and cached, trained
    now (on ``device``, see ``train_judge`` for ``say``) if there is none yet."""
    if digits.name in SHIPPED_JUDGES:
        return shipped_judge(digits.name)
    check_cache()
    path = cached(digits.name)
    with _machine_lock(path):  # one worker trains; the others wait here, then read its file
        if path.exists():
            try:
                return read_judge(path, "cached", digits.name)
            except OtherDataset as error:  # put there by hand: replacing it would hide that
                raise _put_by_hand(error, digits.name) from None
            except GansweepError as error:  # a damaged cache entry is trained again, not fatal
                if say is not None:
                    say(f"{error}: training it again")
        heard = None if say is None else lambda line: say(f"{line} (once per machine; cached in {path.parent})")
        judge = train_judge(digits, device=device, say=heard)
        save_judge(judge, path)
    return judge


@contextmanager
def _machine_lock(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        opened = lock.open("a")
    except OSError as error:  # a folder in its place, say
        raise GansweepError(f"judge cache: cannot open {lock} ({error.strerror}); move it aside") from None
    with opened as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)
