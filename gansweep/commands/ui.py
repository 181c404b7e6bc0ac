"""`gansweep ui`: the MLflow UI on a store, opened on the sweep's experiment."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from gansweep.commands._shared import on_sigterm
from gansweep.errors import GansweepError, redact
from gansweep.tracking import check_tracking, default_tracking_uri, experiment_id, holds_database


def main(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise GansweepError(f"--port must be 1 to 65535, got {args.port}")
    if not args.tracking_uri and not holds_database(args.store / "mlflow.db"):
        raise GansweepError(
            f"no MLflow store at {args.store}/mlflow.db: run `gansweep run grid.yaml` first, or pass --store"
        )
    uri = args.tracking_uri or default_tracking_uri(args.store)
    check_tracking(uri, read_only=True)
    experiment = experiment_id(uri, args.name)
    page = f"#/experiments/{experiment}/runs?workflowType=machine_learning" if experiment else ""
    print(f"MLflow UI for {redact(uri)} at http://{args.host}:{args.port}/{page} (Ctrl-C to stop)", flush=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    command += ["--host", args.host, "--port", str(args.port)]
    if not args.tracking_uri:
        command += ["--default-artifact-root", (args.store / "artifacts").resolve().as_uri()]
    # Its own process group: the server's workers go with it when gansweep ui is stopped, however.
    server = subprocess.Popen(command, start_new_session=True)
    try:
        with on_sigterm(KeyboardInterrupt):
            return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(server)


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
