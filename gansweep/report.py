"""Tables of setting vs outcome, in the shape the seed reports use (lr | batch_size | latent_dim | outcome)."""

from __future__ import annotations

import math
from typing import Any

from gansweep.config import TrialPlan


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def best_key(plans: list[TrialPlan], finals: dict[str, dict[str, float]]) -> str | None:
    """The sweep's best trial: the lowest final ``fid_mnist`` among those that have one."""
    scored = [(finals[p.key]["fid_mnist"], p.key) for p in plans
              if math.isfinite(finals.get(p.key, {}).get("fid_mnist", math.nan))]  # fmt: skip
    return min(scored)[1] if scored else None


def trial_table(
    plans: list[TrialPlan],
    states: dict[str, str],
    finals: dict[str, dict[str, float]],
    run_ids: dict[str, str],
    verdicts: dict[str, str] | None = None,
) -> str:
    """A markdown table per model, rows in grid order; trials not yet complete are shown as such."""
    verdicts = verdicts or {}
    best = best_key(plans, finals)
    lines: list[str] = []
    for model in dict.fromkeys(p.model for p in plans):
        rows = [p for p in plans if p.model == model]
        has_reported = any(p.reported for p in rows)
        header = ["lr", "batch_size", "latent_dim", "seed", "outcome", "fid_mnist", "modes", "D loss", "G loss", "run"]
        if has_reported:
            header.insert(4, "reported")
        lines += [f"### {model}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for plan in rows:
            hp, final = plan.hp, finals.get(plan.key, {})
            lr = _number(hp.lr_g) if hp.lr_g == hp.lr_d else f"{hp.lr_g:g}/{hp.lr_d:g}"
            state = states.get(plan.key, "WAITING")
            outcome = verdicts.get(plan.key) or "" if state == "COMPLETE" else state.lower()
            if plan.key == best:
                outcome = f"**best** {outcome}"
            modes = f"{final['modes_covered']}/10" if "modes_covered" in final else ""
            cells = [lr, str(hp.batch_size), str(hp.latent_dim), str(plan.seed), outcome,
                     _number(final["fid_mnist"]) if "fid_mnist" in final else "", modes,
                     *(_number(final[k]) if k in final else "" for k in ("d_loss", "g_loss")),
                     run_ids.get(plan.key, "")[:8]]  # fmt: skip
            if has_reported:
                cells.insert(4, plan.reported or "")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)
