"""Takes README's pictures from a real browser on the quickstart's store, so that they can be retaken after
an MLflow or gansweep change:

    bash scripts/quickstart.sh                      # the store: ./mlruns
    .venv/bin/python scripts/screenshots.py         # docs/ui.png, docs/ui-table.png, docs/samples.png

It starts `gansweep ui` on the store, opens the address it prints in headless Chromium (``scripts/browser.py``),
waits until every trial's curves are drawn, and saves the page: the chart view, then the same view's table.
The one thing it changes from a first visit: MLflow 3.17 opens its Assistant panel the first time a browser
visits a local server; a user closes it once, and this script marks it shown, so the pictures show the page.
``docs/samples.png`` is the best trial's last sample grid, as its run holds it.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path

from browser import Browser
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CARDS = """Object.fromEntries(Array.from(document.querySelectorAll('[data-testid=experiment-view-compare-runs-card]'))
  .map(card => [card.innerText.split('\\n')[0], card.querySelectorAll('.scatterlayer .trace').length
    + Array.from(card.querySelectorAll('img')).filter(i => i.complete && i.naturalWidth > 0).length]))"""
ASSISTANT_SHOWN = "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true')"
"""The flag MLflow's UI sets once it has opened the Assistant panel on a first visit (key and version as its
``useLocalStorage`` writes them)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _small_png(path: Path, colors: int = 128) -> None:
    """A screenshot in a palette of ``colors``: a UI has few, and the file shrinks 3-4 times."""
    Image.open(path).convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def _best_samples(store: Path, out: Path) -> Path:
    """The best trial's last sample grid (``samples_final.png``: each pixel already a 2x2 block)."""
    sys.path.insert(0, str(ROOT))
    from gansweep.sweep import SweepSettings, open_study
    from gansweep.tables import study_rows

    settings = SweepSettings(None, "", "quickstart", store)  # type: ignore[arg-type]
    best = next(r for r in study_rows(open_study(settings, create=False), None) if r.best)
    grid = Image.open(store / "artifacts" / best.run_id / "artifacts" / "samples_final.png")
    grid.save(out, optimize=True)
    return out


def take(store: Path, out: Path, trials: int) -> list[Path]:
    port = _free_port()
    command = [sys.executable, "-m", "gansweep.cli", "ui", "--store", str(store), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        url = next(line.split()[1] for line in server.stdout or [] if line.startswith("open "))
        with Browser(1400, 1120) as page:
            page.open(url.split("#")[0])
            page.wait("document.readyState === 'complete'", "the page")
            page.evaluate(ASSISTANT_SHOWN)
            page.open(url)
            ready = f"(c => ['d_loss', 'g_loss', 'fid_mnist', 'samples'].every(k => c[k] >= {trials}) && c)({CARDS})"
            page.wait(ready, "every trial's curves")
            page.evaluate("new Promise(done => setTimeout(done, 2000))")  # the charts' last redraw
            shots = [page.screenshot(out / "ui.png")]
            page.open(url.replace("compareRunsMode=CHART", "compareRunsMode=TABLE"))
            page.wait("document.querySelectorAll('.ag-header-cell').length > 4", "the table's columns")
            page.evaluate("new Promise(done => setTimeout(done, 2000))")
            shots.append(page.screenshot(out / "ui-table.png", clip={"x": 0, "y": 0, "width": 1400, "height": 560}))
    finally:
        server.terminate()
        server.wait(timeout=30)
    for shot in shots:
        _small_png(shot)
    return [*shots, _best_samples(store, out / "samples.png")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=ROOT / "mlruns", help="the quickstart's store (default ./mlruns)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="where the PNGs go (default docs/)")
    parser.add_argument("--trials", type=int, default=4, help="trials whose curves must be drawn (default 4)")
    args = parser.parse_args()
    for path in take(args.store.resolve(), args.out, args.trials):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
