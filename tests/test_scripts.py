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
    (tmp_path / "scripts" / "chromium.sh").write_text("exit 0\n")
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


def _path_of(tmp_path: Path, *tools: str) -> str:
    """A PATH holding only ``tools`` (each a link to the real one, or a stub where none exists)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in tools:
        real = shutil.which(tool)
        if real:
            (folder / tool).symlink_to(real)
        else:
            (folder / tool).write_text("#!/bin/sh\nexit 0\n")
            (folder / tool).chmod(0o755)
    return str(folder)


def _chromium_sh(path: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["/bin/bash", str(SCRIPTS / "chromium.sh")], capture_output=True, text=True, env={"PATH": path}
    )


def test_chromium_sh_does_nothing_where_a_chromium_is_installed(tmp_path: Path) -> None:
    done = _chromium_sh(_path_of(tmp_path, "chromium", "id", "dirname"))
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


def test_chromium_sh_without_apt_says_the_ui_test_will_be_skipped(tmp_path: Path) -> None:
    done = _chromium_sh(_path_of(tmp_path, "id", "dirname", "mkdir", "tail"))
    assert done.returncode == 0  # the suite runs on; the UI test skips
    assert done.stderr.strip() == (
        "warning: no Chromium, and no apt-get as root to install it: the UI test will be skipped"
    )
