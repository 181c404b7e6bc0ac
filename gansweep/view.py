"""A sweep as MLflow's UI shows it: run names that say what varies, and the page `gansweep ui` opens.

The page is a *shared view*. MLflow 3.17's UI restores one when the experiment page's URL carries
``viewStateShareKey=KEY``: it reads the experiment tag ``mlflow.sharedViewState.KEY``, an envelope
``{"name", "createdAt", "updatedAt", "state"}`` (times in ms; since 3.15 such a tag is also listed as a
saved view under its name) whose ``state`` is the page's state as JSON text (deflate-compressed text is
read as well; a state this small needs none). From the state the UI takes its search facets
(``searchFilter``, ``orderByKey``, ``orderByAsc``, ...) and its UI state (``selectedColumns``,
``compareRunCharts``, ``compareRunSections``, ``groupBy``, ``runsHiddenMode``, ...), except
``runsExpanded``, ``runsPinned``, ``runsHidden``, ``runsVisibilityMap`` and ``autoRefreshEnabled``, which a
shared view never restores; a URL that also holds a search facet ignores the view. The URL itself picks the
chart view (``compareRunsMode=CHART``) and the classic sidebar rather than the GenAI one
(``workflowType=machine_learning``).

What the view holds, and why:

- The trials, flat: filtered on ``gansweep.role`` and ordered by ``fid_mnist``. In start-time order with no
  filter the UI nests the trials under the sweep's run, collapsed, and a shared view cannot expand them.
- Grouped by ``gansweep.outcome``, each run drawing its own curves: the chart view lists runs by name in a
  table of no other column (MLflow drops the rest there), so the groups say good, bad or unclear and the
  names what the trial varies.
- A first chart section with ``d_loss``, ``g_loss``, ``fid_mnist`` and the sample grids (an Image grid with
  a step slider over epochs); MLflow adds a chart per other metric to its "Model metrics", shown collapsed.
- The Table view's columns: the settings that vary, ``gansweep.outcome`` and ``fid_mnist``.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from gansweep.config import SweepConfig, TrialPlan
from gansweep.tracking import SAMPLES, Tracker, experiment_id

if TYPE_CHECKING:
    from mlflow import MlflowClient

KEY = "gansweep"
"""The view's share key: tag ``mlflow.sharedViewState.gansweep``, URL ``viewStateShareKey=gansweep``."""
TAG = f"mlflow.sharedViewState.{KEY}"
NAME = "gansweep: compare trials"
"""How the UI's saved-views menu names it."""
CURVES = ("d_loss", "g_loss", "fid_mnist")

LABELS = {"batch_size": "batch", "latent_dim": "z"}
"""Short names in run names: MLflow's chart view cuts a name past ~30 characters."""


def _short(value: Any) -> str:
    """A setting's value as a run name writes it: 2e-4 rather than 0.0002."""
    if isinstance(value, float):
        if value and not 1e-2 <= abs(value) < 1e4:
            mantissa, exponent = f"{value:.2e}".split("e")
            return f"{float(mantissa):g}e{int(exponent)}"
        return f"{value:g}"
    return str(value)


def settings_of(plan: TrialPlan, one_lr: bool = True) -> dict[str, str]:
    """The plan's settings by name as a run name writes them: ``lr`` for equal lr_g and lr_d (``one_lr``),
    ``betas`` as one."""
    params = plan.hp.as_params()
    lrs = {"lr": params["lr_g"]} if one_lr else {"lr_g": params["lr_g"], "lr_d": params["lr_d"]}
    rest = {k: v for k, v in params.items() if k not in ("lr_g", "lr_d", "beta1", "beta2")}
    settings = {"model": plan.model, **lrs, **rest, "betas": f"{params['beta1']:g},{params['beta2']:g}"}
    return {k: _short(v) for k, v in {**settings, "seed": plan.seed}.items()}


def varying(plans: list[TrialPlan]) -> list[str]:
    """The settings whose value differs between the sweep's plans (``model`` when there are several), in
    the order of `gansweep train --help`; ``lr``, or ``lr_g`` and ``lr_d`` where some plan sets them apart."""
    one_lr = all(p.hp.lr_g == p.hp.lr_d for p in plans)
    values = [settings_of(p, one_lr) for p in plans]
    names = dict.fromkeys(k for v in values for k in v)  # width: the DCGANs' only
    return [k for k in names if len({v.get(k) for v in values}) > 1]


def run_name(plan: TrialPlan, settings: list[str]) -> str:
    """``lr 2e-4 · batch 256 · z 100``: the plan's value of each of ``settings`` (the model's name alone when
    none)."""
    values = settings_of(plan, "lr" in settings or not {"lr_g", "lr_d"} & set(settings))
    parts = [values[s] if s == "model" else f"{LABELS.get(s, s)} {values[s]}" for s in settings if s in values]
    return " · ".join(parts) or plan.model


def run_names(plans: list[TrialPlan]) -> dict[str, str]:
    """Point key -> its run's name: what it varies among the sweep's plans."""
    settings = varying(plans)
    return {p.key: run_name(p, settings) for p in plans}


def params(settings: list[str]) -> list[str]:
    """The MLflow params that hold ``settings`` (``betas`` is two; ``sweep._runs.params_of`` logs ``lr``)."""
    return [p for s in settings for p in (("beta1", "beta2") if s == "betas" else (s,))]


def _line(metric: str, section: str, runs: int) -> dict[str, Any]:
    return {
        "uuid": f"{KEY}-{metric}",
        "type": "LINE",
        "metricSectionId": section,
        "metricKey": metric,
        "selectedMetricKeys": [metric],
        "runsCountToCompare": runs,
        "lineSmoothness": 0,
        "scaleType": "linear",
        "xAxisKey": "step",
        "xAxisScaleType": "linear",
        "useGlobalXaxisKey": False,
        "useGlobalLineSmoothing": False,
        "isGenerated": False,
        "deleted": False,
    }


def _section(uuid: str, name: str, shown: bool) -> dict[str, Any]:
    """A chart section, open or collapsed; an open one in two columns of taller cards than MLflow's three of
    360 px, wide enough for a sample grid."""
    layout = {"columns": 2, "cardHeight": 400} if shown else {}
    return {"uuid": uuid, "name": name, "display": shown, "isReordered": shown, "deleted": False, **layout}


def compare_view(columns: list[str], trials: int, epochs: int) -> dict[str, Any]:
    """The page's state: the trials of ``columns`` (MLflow params) compared over ``epochs`` epochs."""
    section = f"{KEY}-curves"
    images: dict[str, Any] = {"uuid": f"{KEY}-{SAMPLES}", "type": "IMAGE", "metricSectionId": section}
    images |= {"imageKeys": [SAMPLES], "step": epochs, "showRunParams": False, "runsCountToCompare": trials}
    images |= {"isGenerated": False, "deleted": False}
    return {
        "searchFilter": "tags.`gansweep.role` = 'trial'",
        "orderByKey": "metrics.`fid_mnist`",
        "orderByAsc": True,
        "selectedColumns": [f"params.`{c}`" for c in columns] + ["tags.`gansweep.outcome`", "metrics.`fid_mnist`"],
        "runsHiddenMode": "SHOW_ALL",
        "groupBy": {"aggregateFunction": "min", "groupByKeys": [{"mode": "tag", "groupByData": "gansweep.outcome"}]},
        "useGroupedValuesInCharts": False,
        "hideEmptyCharts": True,
        "isAccordionReordered": False,
        # The UI sorts sections by name, then puts its last two given last: MLflow's own two.
        "compareRunSections": [
            _section(section, "Curves and samples", True),
            _section(f"{KEY}-model", "Model metrics", False),
            _section(f"{KEY}-system", "System metrics", False),
        ],
        "compareRunCharts": [*(_line(m, section, trials) for m in CURVES), images],
    }


def share(client: MlflowClient, experiment_id: str, state: dict[str, Any]) -> None:
    """Stores ``state`` as the experiment's shared view ``KEY`` (replacing an older one)."""
    now = int(time.time() * 1000)
    envelope = {"name": NAME, "createdAt": now, "updatedAt": now, "state": json.dumps(state)}
    client.set_experiment_tag(experiment_id, TAG, json.dumps(envelope))


def share_plans(tracker: Tracker, config: SweepConfig, plans: list[TrialPlan]) -> None:
    """The view of a sweep about to train ``plans`` (and ``config``'s search, whose settings vary too)."""
    varied = varying(plans)
    searched = [s for s in (config.search.space if config.search else ()) if s not in varied]
    columns = params(varied + searched)
    share(tracker.client, tracker.experiment_id, compare_view(columns, len(plans) + config.n_search, config.epochs))


ORDER = ("model", "lr", "lr_g", "lr_d", "batch_size", "latent_dim", "beta1", "beta2", "epochs", "loss", "d_steps")


def share_runs(client: MlflowClient, experiment_id: str) -> bool:
    """The view of a sweep recorded before sweeps stored one, from its trial runs' params (`gansweep ui`
    on an older store); False when the experiment holds no trial run (not a sweep's)."""
    runs = client.search_runs([experiment_id], "tags.`gansweep.role` = 'trial'", max_results=50000)
    if not runs:
        return False
    names = sorted(
        {k for r in runs for k in r.data.params}, key=lambda k: (ORDER.index(k) if k in ORDER else len(ORDER), k)
    )
    columns = [k for k in names if len({r.data.params.get(k) for r in runs}) > 1]
    if "lr" in columns:  # lr_g and lr_d say the same
        columns = [k for k in columns if k not in ("lr_g", "lr_d")]
    epochs = max(int(r.data.params.get("epochs", 0)) for r in runs)
    share(client, experiment_id, compare_view(columns, len(runs), epochs))
    return True


def sweep_page(uri: str, name: str | None) -> str:
    """The URL fragment `gansweep ui` opens: sweep ``name``'s page (the newest sweep's when None; "" when
    the store holds none), its view written first for a sweep recorded before sweeps kept one."""
    experiment = experiment_id(uri, name)  # imports MLflow, quietened
    if experiment is None:
        return ""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    shared = TAG in client.get_experiment(experiment).tags or share_runs(client, experiment)
    return page(experiment, shared)


def page(experiment_id: str, shared: bool = True) -> str:
    """The URL fragment of the sweep's page: its shared view in the chart view, else its runs."""
    query = f"viewStateShareKey={KEY}&compareRunsMode=CHART&" if shared else ""
    return f"#/experiments/{experiment_id}/runs?{query}workflowType=machine_learning"
