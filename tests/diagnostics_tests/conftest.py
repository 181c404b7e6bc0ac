from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gansweep.diagnostics import Judge, load_judge, sample_metrics
from gansweep.diagnostics.metrics import Reference

FOLDER = Path(__file__).parent / "real_runs"
RUNS = json.loads((FOLDER / "runs.json").read_text())


@pytest.fixture(scope="session")
def judge(digits) -> Judge:
    return load_judge(digits)


@pytest.fixture(scope="session")
def sample_sets(digits) -> dict[str, torch.Tensor]:
    """Sample sets built from real digits the judge never trained on... and from the training split,
    which the judge did see but which stands in for a perfect generator."""
    g = torch.Generator().manual_seed(0)
    train = digits.train_images[torch.randperm(len(digits.train_images), generator=g)]
    labels = digits.train_labels[torch.randperm(len(digits.train_images), generator=torch.Generator().manual_seed(0))]

    def classes(*keep: int) -> torch.Tensor:
        return train[torch.isin(labels, torch.tensor(keep))][:1000]

    one = train[:1].float().repeat(1000, 1, 1, 1)
    return {
        "all ten": train[:1000],
        "one class": classes(3),
        "three classes": classes(1, 4, 7),
        "eight classes": classes(0, 1, 2, 3, 4, 5, 6, 8),
        "repeated": (one + torch.randn(one.shape, generator=g) * 8).clamp(0, 255).to(torch.uint8),
        "uniform noise": torch.randint(0, 256, (1000, 1, 28, 28), generator=g, dtype=torch.uint8),
        "blurred": torch.nn.functional.avg_pool2d(train[:1000].float(), 3, 1, 1).to(torch.uint8),
    }


@pytest.fixture(scope="session")
def histories(judge, digits) -> dict[str, list[dict]]:
    """Each run's epoch records, its evaluated epochs carrying the metrics of its stored samples."""
    reference = Reference.of(judge, digits.heldout_images)
    out = {}
    for name in RUNS:
        stored = np.load(FOLDER / f"{name}.npz")
        history = json.loads(str(stored["history"]))
        for epoch, samples in zip(stored["epochs"].tolist(), stored["samples"]):
            history[epoch - 1].update(sample_metrics(judge, torch.from_numpy(samples), reference))
        out[name] = history
    return out
