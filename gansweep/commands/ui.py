"""`gansweep ui`: the MLflow UI on a store, its address printed once it answers, opening on the sweep's
trials compared (``view``)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from gansweep.commands._shared import on_sigterm
from gansweep.errors import GansweepError, redact
from gansweep.mlruns import default_tracking_uri, holds_database
from gansweep.tracking import check_tracking
from gansweep.view import sweep_page

QUIET = {
    "PYTHONWARNINGS": "ignore:starlette.middleware.wsgi is deprecated:UserWarning",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}
"""The server's own environment: the deprecation warning MLflow's server raises in each worker says nothing a
user can act on, and `gansweep ui` needs no server-side jobs (each is a process)."""


def main(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise GansweepError(f"--port must be 1 to 65535, got {args.port}")
    if not args.tracking_uri and not holds_database(args.store / "mlflow.db"):
        raise GansweepError(
            f"no MLflow store at {args.store}/mlflow.db: run `gansweep run grid.yaml` first, or pass --store"
        )
    uri = args.tracking_uri or default_tracking_uri(args.store)
    check_tracking(uri, read_only=True)
    url = f"http://{args.host}:{args.port}/" + sweep_page(uri, args.name)
    print(f"starting the MLflow UI for {redact(uri)} ...", flush=True)
    # One worker: one person browses (MLflow's default of 4 took 4 times the start-up on 2 cores).
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--registry-store-uri", uri]
    command += ["--host", args.host, "--port", str(args.port), "--workers", "1"]
    command += ["--uvicorn-opts", "--log-level warning"]  # not a line per request
    if not args.tracking_uri:
        command += ["--default-artifact-root", (args.store / "artifacts").resolve().as_uri()]
    # Its own process group: the server's workers go with it when gansweep ui is stopped, however.
    server = subprocess.Popen(command, start_new_session=True, env={**os.environ, **QUIET})
    try:
        with on_sigterm(KeyboardInterrupt):
            if _answers(server, args.host, args.port):
                print(f"open {url} (Ctrl-C to stop)", flush=True)
            return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(server)


def _answers(server: subprocess.Popen, host: str, port: int) -> bool:
    """Waits until the server answers (a busy machine took 49 s), or has exited (False)."""
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host.strip("[]")
    health = f"http://{local if ':' not in local else f'[{local}]'}:{port}/health"
    while server.poll() is None:
        try:
            urllib.request.urlopen(health, timeout=2).close()
            return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    return False


def _stop(server: subprocess.Popen) -> None:
    """Ends the server and every process it started: SIGTERM to its group, SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
            server.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue
