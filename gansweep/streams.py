"""A trial's dropout stream: the states of the global generators that ``F.dropout`` draws from.

Dropout takes no generator argument, so a trial keeps the global generators' states as its own
(``Trainer.streams``, from its seed) and swaps them in while it trains. Trials that share a process — a
group's members, amp's measurement — then never draw from each other's stream, and a checkpoint saves a
trial's stream whoever else trained beside it.

Example:
    >>> import torch
    >>> from gansweep.streams import Streams, own_streams
    >>> owner = Streams(torch.device("cpu"), {"torch": torch.Generator().manual_seed(0).get_state()})
    >>> with own_streams(owner):
    ...     first = torch.rand(1)
    >>> with own_streams(Streams(torch.device("cpu"), {"torch": torch.Generator().manual_seed(0).get_state()})):
    ...     again = torch.rand(1)
    >>> bool(first == again)
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import torch


class Owner(Protocol):
    device: torch.device
    streams: dict[str, torch.Tensor]


@dataclass
class Streams:
    """A holder of one trial's streams (a fused network's dropout layers keep one per member)."""

    device: torch.device
    streams: dict[str, torch.Tensor]


def global_streams(device: torch.device) -> dict[str, torch.Tensor]:
    """The global generators' states for ``device``, named as a checkpoint's ``rng`` names them."""
    streams = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        streams["cuda"] = torch.cuda.get_rng_state(device)
    return streams


def set_global_streams(streams: dict[str, torch.Tensor], device: torch.device) -> None:
    torch.set_rng_state(streams["torch"])
    if device.type == "cuda" and "cuda" in streams:
        torch.cuda.set_rng_state(streams["cuda"], device)


@contextmanager
def own_streams(owner: Owner) -> Iterator[None]:
    """Inside, dropout draws from ``owner.streams``; on leaving, the owner keeps their new states and the
    global generators get back the ones they had."""
    saved = global_streams(owner.device)
    set_global_streams(owner.streams, owner.device)
    try:
        yield
    finally:
        owner.streams = global_streams(owner.device)
        set_global_streams(saved, owner.device)
