"""Tables of setting vs outcome, in the shape the seed reports use (lr | batch_size | latent_dim | ...)."""

from __future__ import annotations

from typing import Any

from gansweep.config import TrialPlan


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def trial_table(
    plans: list[TrialPlan],
    states: dict[str, str],
    finals: dict[str, dict[str, float]],
    run_ids: dict[str, str],
) -> str:
    """A markdown table per model, rows in grid order; trials not yet complete are shown as such."""
    lines: list[str] = []
    for model in dict.fromkeys(p.model for p in plans):
        rows = [p for p in plans if p.model == model]
        has_reported = any(p.reported for p in rows)
        header = ["lr", "batch_size", "latent_dim", "seed", "state", "D loss", "G loss", "D(x)", "D(G(z))", "run"]
        if has_reported:
            header.insert(4, "reported")
        lines += [f"### {model}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for plan in rows:
            hp, final = plan.hp, finals.get(plan.key, {})
            lr = _number(hp.lr_g) if hp.lr_g == hp.lr_d else f"{hp.lr_g:g}/{hp.lr_d:g}"
            cells = [lr, str(hp.batch_size), str(hp.latent_dim), str(plan.seed), states.get(plan.key, "WAITING")]
            cells += [_number(final[k]) if k in final else "" for k in ("d_loss", "g_loss", "d_real", "d_fake")]
            cells.append(run_ids.get(plan.key, "")[:8])
            if has_reported:
                cells.insert(4, plan.reported or "")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
