from __future__ import annotations

import torch

from gansweep.losses import LOSSES, info_loss


def test_bce_from_logits_stays_finite_where_sigmoid_bce_clamps() -> None:
    # A confident D (score -200 on fakes) makes BCELoss on sigmoid outputs hit its log(0) = -100 clamp.
    fake = torch.tensor([-200.0])
    assert LOSSES["bce"].generator(fake).item() == 200.0
    assert torch.nn.functional.binary_cross_entropy(torch.sigmoid(fake), torch.ones(1)).item() == 100.0


def test_minimax_generator_saturates_and_non_saturating_does_not() -> None:
    fake = torch.tensor([-10.0], requires_grad=True)
    LOSSES["minimax"].generator(fake).backward()
    minimax_grad = fake.grad.abs().item()
    fake.grad = None
    LOSSES["bce"].generator(fake).backward()
    assert minimax_grad < 1e-3 < fake.grad.abs().item()


def test_lsgan_matches_report_002_equation_9() -> None:
    real, fake = torch.tensor([0.5, 1.5]), torch.tensor([0.2, -0.4])
    expected_d = 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()
    assert torch.isclose(LOSSES["lsgan"].discriminator(real, fake), expected_d)
    assert torch.isclose(LOSSES["lsgan"].generator(fake), 0.5 * ((fake - 1) ** 2).mean())


def test_info_loss_is_lowest_for_the_right_code() -> None:
    labels, continuous = torch.tensor([3]), torch.tensor([[0.5, -0.5]])
    logits = torch.full((1, 10), -5.0)
    logits[0, 3] = 5.0
    var = torch.full((1, 2), 0.1)
    right = info_loss(logits, continuous.clone(), var, labels, continuous)
    wrong = info_loss(logits.roll(1, dims=1), -continuous, var, labels, continuous)
    assert right < wrong
