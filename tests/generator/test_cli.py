"""The CLI as users run it: exit codes, determinism, --check, all-or-nothing writes."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from generator import render
from generator.cli import main


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def out_dir(tmp_path: Path, repo_root: Path) -> Path:
    target = tmp_path / "templates"
    assert main(["generate", "--topology", str(repo_root / "topology.yaml"), "--out", str(target)]) == 0
    return target


def test_committed_templates_are_what_generate_writes(repo_root, default_topology):
    files = render.render(default_topology)
    assert render.stale_files(repo_root / "templates", files) == []


def test_same_input_same_bytes(default_topology, rich_topology):
    assert render.render(default_topology) == render.render(default_topology)
    assert render.render(rich_topology) == render.render(rich_topology)


def test_generate_writes_templates_and_params(out_dir):
    written = snapshot(out_dir)
    assert {"cluster.yaml", "service.yaml", "pipeline.yaml",
            "params/server.json", "params/client.json"} <= set(written)
    server = json.loads(written["params/server.json"])
    assert server["Parameters"]["PeerUrls"] == "http://client.my.demo:8080"
    assert written["service.yaml"].startswith(render.HEADER.encode())


def test_check_passes_when_fresh_and_fails_when_stale(out_dir, repo_root, capsys):
    args = ["generate", "--check", "--topology", str(repo_root / "topology.yaml"), "--out", str(out_dir)]
    assert main(args) == 0
    (out_dir / "service.yaml").write_text("tampered\n")
    (out_dir / "params" / "ghost.json").write_text("{}\n")
    before = snapshot(out_dir)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"{out_dir / 'service.yaml'}: out of date" in err
    assert f"{out_dir / 'params/ghost.json'}: out of date" in err
    assert snapshot(out_dir) == before  # --check writes nothing


def test_generate_removes_params_of_removed_services(out_dir, write_topology):
    topology = write_topology("app: demo\nnamespace: my.demo\nservices:\n  server: {port: 8080}\n")
    assert main(["generate", "--topology", str(topology), "--out", str(out_dir)]) == 0
    assert sorted(p.name for p in (out_dir / "params").iterdir()) == ["server.json"]


@pytest.mark.parametrize("text,field", [
    ("app: demo\nnamespace: my.demo\nservices:\n  a: {port: 99999}\n", "services.a.port"),
    ("app: demo\nnamespace: my.demo\nservices:\n  a: {port: 80, calls: [b]}\n", "services.a.calls[0]"),
    ("app: demo\nnamespace: my.demo\nservices:\n  a: {port: 80, cpu: 256, memory: 8192}\n",
     "services.a.memory"),
    ("app: [\n", "invalid YAML"),
])
def test_bad_topology_exits_2_with_one_line_and_touches_nothing(out_dir, write_topology, capsys,
                                                               text, field):
    before = snapshot(out_dir)
    topology = write_topology(text)
    assert main(["generate", "--topology", str(topology), "--out", str(out_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {topology}")
    assert field in err
    assert snapshot(out_dir) == before


def test_module_entry_point_exit_codes(tmp_path, repo_root):
    missing = subprocess.run(
        [sys.executable, "-m", "generator", "generate", "--topology", str(tmp_path / "none.yaml"),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=repo_root,
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"error: {tmp_path / 'none.yaml'}: file not found"
    assert not (tmp_path / "out").exists()
    plan = subprocess.run([sys.executable, "-m", "generator", "plan"], capture_output=True,
                          text=True, cwd=repo_root)
    assert plan.returncode == 0
    assert "demo-server, demo-client  (in parallel)" in plan.stdout
    assert "Cycle: server <-> client" in plan.stdout
    assert "```mermaid" in plan.stdout


def test_lint_is_clean_on_generated_templates_and_formats_parse(out_dir, tmp_path, capsys):
    assert main(["lint", "--out", str(out_dir)]) == 0
    assert "clean" in capsys.readouterr().out
    assert main(["lint", "--out", str(out_dir), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # Every template and params file; not the dashboards, which are no CloudFormation.
    generated = len([path for path in out_dir.rglob("*") if path.suffix in (".yaml", ".json")
                     and path.parent.name != "dashboards"])
    assert (out_dir / "dashboards" / "demo.json").is_file()
    assert report["findings"] == [] and len(report["files"]) == generated
    assert not [f for f in report["files"] if "dashboards" in f]
    junit = tmp_path / "reports" / "lint.xml"
    assert main(["lint", "--out", str(out_dir), "--format", "junit", "--output", str(junit)]) == 0
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == str(generated) and suite.get("failures") == "0"


def test_lint_reports_findings_with_exit_1(out_dir, tmp_path, capsys):
    service = out_dir / "service.yaml"
    # A port mapping without a name breaks the Service Connect PortName reference.
    service.write_text(service.read_text().replace("Name: http\n", "Name: web\n", 1))
    params_file = out_dir / "params" / "server.json"
    document = json.loads(params_file.read_text())
    document["Parameters"]["Memory"] = "512"  # not valid with Cpu 2048
    document["Parameters"]["Colour"] = "blue"
    params_file.write_text(json.dumps(document, indent=2))
    assert main(["lint", "--out", str(out_dir), "--format", "json"]) == 1
    findings = json.loads(capsys.readouterr().out)["findings"]
    rules = {(Path(f["file"]).name, f["rule"]) for f in findings}
    assert ("service.yaml", "E9001") in rules
    assert ("server.json", "P1001") in rules  # Colour
    assert ("server.json", "P1004") in rules  # the Fargate pair rule
    assert main(["lint", "--out", str(out_dir), "--format", "junit"]) == 1
    root = ET.fromstring(capsys.readouterr().out)
    assert root.get("failures") == "2"


def test_lint_without_templates_is_bad_input(tmp_path, capsys):
    assert main(["lint", "--out", str(tmp_path)]) == 2
    assert "run `python -m generator generate` first" in capsys.readouterr().err


def test_unwritable_outputs_are_one_line_errors(tmp_path, repo_root, out_dir, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    assert main(["generate", "--topology", str(repo_root / "topology.yaml"),
                 "--out", str(blocker / "templates")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err
    assert main(["lint", "--out", str(out_dir), "--format", "junit",
                 "--output", str(blocker / "lint.xml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{blocker / 'lint.xml'}: cannot write the report" in err
