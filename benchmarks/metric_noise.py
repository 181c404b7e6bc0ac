"""The sample metrics' own noise: their spread between draws of ``EVAL_SAMPLES`` digits.

Draws resampled real training digits (all classes, three classes, one class, blurred) against the
held-out ones, as an evaluation would score a generator's samples, and draws with replacement from 50, 200
or 800 training digits with pixel noise (a generator that draws a few images again and again), and prints
each metric's mean and standard deviation. The trend thresholds in ``gansweep/diagnostics/flags.py``
(``FID_NOISE``, ``NOISE``, ``DISTINCT_NOISE``) were set from this output.

    .venv/bin/python benchmarks/metric_noise.py              # 30 draws of 256
    .venv/bin/python benchmarks/metric_noise.py --samples 1000 --draws 10 --json
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._args import MOST_REPEATS, Parser, whole  # noqa: E402
from gansweep.config import MAX_EVAL_SAMPLES  # noqa: E402
from gansweep.data import load_dataset  # noqa: E402
from gansweep.diagnostics import load_judge, sample_metrics  # noqa: E402
from gansweep.diagnostics.evaluate import EVAL_SAMPLES  # noqa: E402
from gansweep.diagnostics.metrics import Reference  # noqa: E402

SHOWN = ("fid_mnist", "diversity", "pixel_diversity", "modes_covered", "confidence", "distinct")
AGAIN = (50, 200, 800)
"""How many training digits the 'again' pools draw from, with replacement."""


def pools(digits) -> dict[str, torch.Tensor]:
    images, labels = digits.train_images, digits.train_labels
    return {
        "all digits": images,
        "three classes": images[torch.isin(labels, torch.tensor([1, 4, 7]))],
        "one class": images[labels == 3],
        "blurred": torch.nn.functional.avg_pool2d(images.float(), 3, 1, 1).to(torch.uint8),
    }


def again(chosen: torch.Tensor, samples: int, generator: torch.Generator) -> torch.Tensor:
    """``samples`` draws with replacement from the ``chosen`` digits, each with pixel noise (sd 8/255)."""
    drawn = chosen[torch.randint(0, len(chosen), (samples,), generator=generator)].float()
    return (drawn + 8 * torch.randn(drawn.shape, generator=generator)).clamp(0, 255).to(torch.uint8)


def main() -> None:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--samples", type=whole(10, MAX_EVAL_SAMPLES, " (as a sweep's eval_samples)"), default=EVAL_SAMPLES
    )
    parser.add_argument("--draws", type=whole(2, MOST_REPEATS, " (a spread needs two)"), default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    digits = load_dataset("mnist-5k")
    smallest = min(pools(digits).items(), key=lambda pool: len(pool[1]))
    if args.samples > len(smallest[1]):  # randperm(n)[:samples] would draw every image, fewer than asked
        parser.error(f"argument --samples: the {smallest[0]!r} pool holds {len(smallest[1])} images; give at most that")
    judge = load_judge(digits)
    reference = Reference.of(judge, digits.heldout_images)
    generator = torch.Generator().manual_seed(0)
    draw = {
        name: lambda pool=pool: pool[torch.randperm(len(pool), generator=generator)[: args.samples]]
        for name, pool in pools(digits).items()
    }
    chosen = {n: digits.train_images[torch.randperm(len(digits.train_images), generator=generator)[:n]] for n in AGAIN}
    draw |= {f"{n} again": lambda n=n: again(chosen[n], args.samples, generator) for n in AGAIN}
    results = {}
    for name, make in draw.items():
        draws = [sample_metrics(judge, make(), reference) for _ in range(args.draws)]
        results[name] = {
            k: (statistics.fmean(d[k] for d in draws), statistics.pstdev(d[k] for d in draws)) for k in SHOWN
        }
    if args.json:
        print(json.dumps({"samples": args.samples, "draws": args.draws, "results": results}))
        return
    print(f"{args.draws} draws of {args.samples} samples; mean +- standard deviation")
    print(f"{'':<15}" + "".join(f"{k:>22}" for k in SHOWN))
    for name, metrics in results.items():
        print(f"{name:<15}" + "".join(f"{m:>13.3f} +- {s:<6.3f}" for m, s in metrics.values()))


if __name__ == "__main__":
    main()
