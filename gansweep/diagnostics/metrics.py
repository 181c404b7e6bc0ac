"""Sample-quality metrics from the judge: how many digits, how far from real, how varied.

Example:
    >>> from gansweep.data import load_dataset
    >>> from gansweep.diagnostics import load_judge, sample_metrics
    >>> digits = load_dataset("mnist-5k")
    >>> m = sample_metrics(load_judge(digits), digits.heldout_images[:250], digits.heldout_images[250:])
    >>> m["modes_covered"], round(m["diversity"], 1)
    (10, 1.0)
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from gansweep.diagnostics.judge import Judge

METRICS = ("modes_covered", "class_kl", "fid_mnist", "mnist_score", "diversity", "confidence", "pixel_diversity")

N_CLASSES = 10
FAIR_SHARE = 0.25
"""A class is covered when it gets at least a quarter of its uniform share (2.5 % of samples for 10
classes). Why: the rarest MNIST digit is 9 % of the data and a 97 %-accurate judge scatters at most a
few percent of any class's samples over the others, so a generator that really makes a digit clears
2.5 %, while a class it no longer makes only receives the judge's confusions, well under it."""


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (rows = samples)."""
    from scipy import linalg

    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # singular products (dead ReLU features) are handled below
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(covmean).all():  # regularise as pytorch-fid does
            offset = np.eye(len(cov_a)) * 1e-6
            covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean.real))


def _mean_pairwise_distance(features: torch.Tensor, limit: int = 1000) -> float:
    f = features[:limit].double()
    distances = torch.cdist(f, f)
    n = len(f)
    return float(distances.sum() / (n * (n - 1))) if n > 1 else 0.0


def sample_metrics(judge: Judge, samples: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """Metrics of uint8 ``samples`` against uint8 held-out ``real`` digits (any image size).

    - ``modes_covered``: classes that get a fair share (``FAIR_SHARE``) of the samples, 0-10.
    - ``class_kl``: KL(generated class histogram || real class histogram).
    - ``fid_mnist``: Fréchet distance between judge features of real and generated images.
    - ``mnist_score``: exp(E_x KL(p(y|x) || p(y))), the Inception-score analogue (1-10).
    - ``diversity``: mean pairwise feature distance of samples / the same for real (~1 healthy, -> 0 collapsed).
    - ``confidence``: mean max-softmax of the judge on the samples (garbage scores low).
    - ``pixel_diversity``: ``diversity`` measured on raw pixels, which tells identical garbage (-> 0)
      from varied garbage (~1), where the judge's features cannot: it maps all garbage alike.
    """
    gen_features, gen_probs = judge(samples)
    real_features, real_probs = judge.reference(real)
    eps = 1e-8
    gen_hist = torch.bincount(gen_probs.argmax(dim=1), minlength=N_CLASSES).double() / len(samples)
    real_hist = torch.bincount(real_probs.argmax(dim=1), minlength=N_CLASSES).double() / len(real)
    marginal = gen_probs.double().mean(dim=0)
    per_sample_kl = (gen_probs.double() * ((gen_probs.double() + eps).log() - (marginal + eps).log())).sum(dim=1)
    real_spread = _mean_pairwise_distance(real_features)
    pixel_spread = _mean_pairwise_distance(real.flatten(1).float())
    return {
        "modes_covered": int((gen_hist >= FAIR_SHARE / N_CLASSES).sum()),
        "class_kl": float((gen_hist * ((gen_hist + eps).log() - (real_hist + eps).log())).sum()),
        "fid_mnist": frechet_distance(gen_features.double().numpy(), real_features.double().numpy()),
        "mnist_score": float(per_sample_kl.mean().exp()),
        "diversity": _mean_pairwise_distance(gen_features) / real_spread if real_spread else 0.0,
        "confidence": float(gen_probs.max(dim=1).values.mean()),
        "pixel_diversity": _mean_pairwise_distance(samples.flatten(1).float()) / pixel_spread if pixel_spread else 0.0,
    }
