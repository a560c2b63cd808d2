"""The service template and the container it runs agree on timeouts and the health check."""
from __future__ import annotations

import json

from generator.stacks import service as service_stack
from service import config as service_config


def test_peer_timeout_bounds_match_the_app(default_topology):
    parameters = json.loads(service_stack.build(default_topology).to_json())["Parameters"]
    peer_timeout = parameters["PeerTimeoutSeconds"]
    assert peer_timeout["Default"] == service_config.DEFAULT_PEER_TIMEOUT_SECONDS
    assert peer_timeout["MaxValue"] == service_config.MAX_PEER_TIMEOUT_SECONDS
    # The app's longest peer wait stays inside Service Connect's per-request timeout.
    assert peer_timeout["MaxValue"] < service_stack.DEFAULT_PER_REQUEST_TIMEOUT


def test_gunicorn_outlives_envoy_idle_and_fits_the_stop_timeout(repo_root):
    settings = {}
    source = (repo_root / "service" / "gunicorn.conf.py").read_text()
    for line in source.splitlines():
        for key in ("keepalive", "graceful_timeout"):
            if line.startswith(f"{key} = "):
                settings[key] = int(line.split("=", 1)[1])
    assert settings["keepalive"] > service_stack.DEFAULT_IDLE_TIMEOUT
    assert settings["graceful_timeout"] < service_stack.STOP_TIMEOUT


def test_health_check_command_is_a_module_of_the_image(repo_root):
    assert service_stack.HEALTH_CHECK_COMMAND[:3] == ["CMD", "python", "-m"]
    module = service_stack.HEALTH_CHECK_COMMAND[3]
    assert (repo_root / (module.replace(".", "/") + ".py")).is_file()
    assert f'CMD ["python", "-m", "{module}"]' in (repo_root / "service" / "Dockerfile").read_text()


def test_root_filesystem_is_read_only_unless_ecs_exec_and_gunicorn_needs_no_writable_root(
        default_topology, repo_root, monkeypatch):
    template = json.loads(service_stack.build(default_topology).to_json())
    (container,) = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert container["ReadonlyRootFilesystem"] == {"Fn::If": [service_stack.WRITABLE_ROOT, False, True]}
    assert template["Conditions"][service_stack.WRITABLE_ROOT] == {"Fn::Or": [
        {"Condition": service_stack.EXEC_ENABLED},
        {"Fn::Equals": [{"Ref": "ReadonlyRootFilesystem"}, "false"]}]}
    # Gunicorn's only file writes (worker heartbeats) go to the container's tmpfs.
    monkeypatch.setenv("PORT", "8080")
    monkeypatch.setenv("SERVICE_NAME", "server")
    settings: dict = {"__file__": str(repo_root / "service" / "gunicorn.conf.py")}
    exec(compile((repo_root / "service" / "gunicorn.conf.py").read_text(), "gunicorn.conf.py", "exec"),
         settings)
    assert settings["worker_tmp_dir"] == "/dev/shm"
