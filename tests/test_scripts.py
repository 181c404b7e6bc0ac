"""scripts/test.sh, run in a copy of the project whose setup, servers and pytest are stand-ins: what it
says at its end, and the status it ends with."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent.parent / "scripts"
SERVICES = """#!/usr/bin/env bash
mkdir -p .cache/services
printf 'export GANSWEEP_TEST_POSTGRES=postgresql://u:pw@127.0.0.1:25432/db\\nexport GANSWEEP_TEST_MLFLOW=http://127.0.0.1:25000\\n' > .cache/services/env
"""


def _project(tmp_path: Path, services: str, pytest_status: int) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(SCRIPTS / "test.sh", tmp_path / "scripts" / "test.sh")
    (tmp_path / "scripts" / "setup.sh").write_text("exit 0\n")
    (tmp_path / "scripts" / "services.sh").write_text(services)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/usr/bin/env bash\necho 'pytest ran'\nexit {pytest_status}\n")
    python.chmod(0o755)
    return tmp_path


@pytest.mark.parametrize("pytest_status", [0, 1])
def test_the_last_line_names_the_servers_left_running_and_how_to_stop_them(tmp_path: Path, pytest_status) -> None:
    project = _project(tmp_path, SERVICES, pytest_status)
    done = subprocess.run(
        ["bash", "scripts/test.sh"], cwd=project, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}
    )
    assert done.returncode == pytest_status  # pytest's status, whatever the note
    last = done.stdout.strip().splitlines()[-1]
    assert last == (
        "left running for the next run: PostgreSQL at 127.0.0.1:25432/db and the MLflow server at "
        "http://127.0.0.1:25000; stop them with: bash scripts/services.sh stop"
    )


def test_without_servers_it_names_none(tmp_path: Path) -> None:
    project = _project(tmp_path, "exit 0\n", 0)  # not root and no PostgreSQL: services.sh starts nothing
    done = subprocess.run(
        ["bash", "scripts/test.sh"], cwd=project, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}
    )
    assert done.returncode == 0 and done.stdout.strip().splitlines()[-1] == "pytest ran"
