"""buildspec.yml and the generated pipeline agree: every path a deploy action reads is
produced by the build's artifacts, and every params key is a parameter of service.yaml."""
from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest
import yaml

from generator import names, render
from generator import topology as topology_module
from pipeline import stack as pipeline_stack


def cfn_yaml(path: Path) -> dict:
    """A template with its short-form intrinsics (!If, !Sub) read as long form."""
    from cfn_flip import load_yaml

    return json.loads(json.dumps(load_yaml(path.read_text(encoding="utf-8"))))


@pytest.fixture(scope="module")
def buildspec(repo_root) -> dict:
    return yaml.safe_load((repo_root / "buildspec.yml").read_text(encoding="utf-8"))


def artifact_globs(spec: dict) -> list[str]:
    return spec["artifacts"]["files"]


def produced_by_build(path: str, spec: dict) -> bool:
    # CodeBuild globs: "**/*" matches any depth; fnmatch's "*" already crosses "/".
    return any(fnmatch.fnmatch(path, glob.replace("**/", "")) or fnmatch.fnmatch(path, glob)
               for glob in artifact_globs(spec))


def artifact_reads(template: dict):
    """(artifact, path) for every file a CloudFormation action reads, incl. Fn::GetParam."""
    for stage in template["Resources"]["Pipeline"]["Properties"]["Stages"]:
        stage = stage["Fn::If"][1] if "Fn::If" in stage else stage
        for action in stage["Actions"]:
            config = action["Configuration"]
            if action["ActionTypeId"]["Provider"] != "CloudFormation":
                continue
            for key in ("TemplatePath", "TemplateConfiguration"):
                if key in config:
                    artifact, path = config[key].split("::", 1)
                    yield artifact, path, None
            overrides = config.get("ParameterOverrides")
            if isinstance(overrides, str):
                for value in json.loads(overrides).values():
                    if isinstance(value, dict):
                        artifact, path, key = value["Fn::GetParam"]
                        yield artifact, path, key


def test_every_build_artifact_path_is_in_buildspec_artifacts(buildspec, repo_root):
    template = cfn_yaml(repo_root / "templates/pipeline.yaml")
    reads = [(p, k) for a, p, k in artifact_reads(template) if a == pipeline_stack.BUILD_ARTIFACT]
    assert {p for p, _ in reads} == {"templates/pipeline.yaml"}
    # The Deploy step reads the checkout: the deployer's code, topology.yaml, templates/.
    for path in ("templates/cluster.yaml", "templates/network.yaml", "templates/service.yaml",
                 "topology.yaml", "generator/cli.py", "setup.cfg", pipeline_stack.IMAGES_FILE,
                 pipeline_stack.DEPLOY_BUILDSPEC):
        assert produced_by_build(path, buildspec), path
    assert not produced_by_build(".git/HEAD", buildspec) or ".git/**/*" in buildspec[
        "artifacts"]["exclude-paths"]


def test_images_file_is_what_buildspec_writes_and_deploy_reads(buildspec, repo_root):
    from pipeline import build_images

    assert buildspec["env"]["variables"]["IMAGES_FILE"] == pipeline_stack.IMAGES_FILE
    assert build_images.IMAGES_FILE == pipeline_stack.IMAGES_FILE
    commands = "\n".join(buildspec["phases"]["build"]["commands"])
    assert "python -m pipeline.build_images build" in commands
    assert '--images-file "${IMAGES_FILE}"' in commands
    deploy = yaml.safe_load((repo_root / pipeline_stack.DEPLOY_BUILDSPEC).read_text())
    reads = " ".join(deploy["phases"]["build"]["commands"])
    assert f"--images {pipeline_stack.IMAGES_FILE}" in reads


def test_build_checks_the_upgrade_against_what_was_last_deployed(buildspec, repo_root):
    pre_build = "\n".join(buildspec["phases"]["pre_build"]["commands"])
    assert "python -m generator check-upgrade --from deployed-templates" in pre_build
    deploy = yaml.safe_load((repo_root / pipeline_stack.DEPLOY_BUILDSPEC).read_text())
    commands = deploy["phases"]["build"]["commands"]
    # The snapshot is taken after the deploy command, which fails the phase on a failure;
    # without ENVIRONMENT it goes to deployed/templates/ (tests/pipeline/test_promotion_buildspecs.py
    # runs both forms).
    assert "/deployed/${ENVIRONMENT:+${ENVIRONMENT}/}templates/" in commands[-1]
    assert "generator deploy" in commands[-2]


def test_every_params_key_is_a_service_parameter(repo_root):
    service = cfn_yaml(repo_root / "templates/service.yaml")["Parameters"]
    files = sorted((repo_root / "templates/params").glob("*.json"))
    assert files
    for path in files:
        keys = set(json.loads(path.read_text())["Parameters"])
        assert keys <= set(service), (path.name, keys - set(service))
        # The rest is supplied per run, so no parameter is left to its Default by accident.
        from generator import params

        from generator import names

        supplied = (set(params.CARRIED_PARAMETERS) | set(params.LIVE_PARAMETERS)
                    | set(names.DEPLOY_TIME_PARAMETERS))
        assert keys | supplied == set(service), path.name


def test_buildspec_checks_before_it_pushes(buildspec):
    pre_build = "\n".join(buildspec["phases"]["pre_build"]["commands"])
    build = "\n".join(buildspec["phases"]["build"]["commands"])
    for command in ("python -m pytest --junitxml=", "python -m generator generate --check",
                    "python -m generator lint --format junit --output"):
        assert command in pre_build
    # Images are built and pushed (pipeline/build_images.py) only in the build phase,
    # after the checks and hadolint.
    assert "build_images build" not in pre_build and "build_images build" in build
    assert "python -m pipeline.build_images lint" in pre_build
    assert "post_build" not in buildspec["phases"]  # post_build would run after a failed build
    assert "CODEBUILD_RESOLVED_SOURCE_VERSION" in pre_build + build


def test_buildspec_reports_match_the_report_groups(buildspec, seed_pipeline):
    assert set(buildspec["reports"]) == set(pipeline_stack.REPORTS.values())
    pre_build = "\n".join(buildspec["phases"]["pre_build"]["commands"])
    for report in buildspec["reports"].values():
        (path,) = report["files"]
        assert path in pre_build  # the command that writes it
        assert report["file-format"] == "JUNITXML"
    groups = {v["Properties"]["Name"]["Fn::Sub"] for v in seed_pipeline["Resources"].values()
              if v["Type"] == "AWS::CodeBuild::ReportGroup"}
    project = seed_pipeline["Resources"]["BuildProject"]["Properties"]["Name"]["Fn::Sub"]
    assert groups == {f"{project}-{name}" for name in buildspec["reports"]}


def test_build_project_runs_this_buildspec(seed_pipeline, repo_root):
    source = seed_pipeline["Resources"]["BuildProject"]["Properties"]["Source"]
    assert source["BuildSpec"] == "buildspec.yml"
    deploy = seed_pipeline["Resources"]["DeployProject"]["Properties"]["Source"]
    assert (repo_root / deploy["BuildSpec"]).is_file()


def test_dockerfile_builds_from_the_repository_root(repo_root):
    dockerfile = repo_root / "service/Dockerfile"
    if not dockerfile.is_file():
        pytest.skip("service/Dockerfile not written yet")
    text = dockerfile.read_text()
    assert "COPY service/" in text  # paths relative to the root, as buildspec's context "."


def test_cluster_parameters_are_the_same_with_or_without_a_public_service(tmp_path):
    """The first public service must not change the cluster stack's parameters."""
    keys = []
    for public in ("true", "false"):
        topology = topology_module.parse(
            "app: shop\nnamespace: shop.local\nservices:\n"
            f"  web: {{port: 8080, public: {public}}}\n", "t.yaml")
        files = render.render(topology)
        keys.append(set(yaml.load(files["cluster.yaml"], Loader=_Tolerant)["Parameters"]))
    # ServiceConnectTlsRoleWanted is always declared: the TLS role outlives the services
    # that use it (issue 14 finding 5).
    assert keys[0] == keys[1] == {"VpcId", "PrivateSubnetIds", "PublicSubnetIds",
                                  names.TLS_ROLE_WANTED_PARAMETER, names.APP_PARAMETER,
                                  names.NAMESPACE_PARAMETER}


class _Tolerant(yaml.SafeLoader):
    pass


_Tolerant.add_multi_constructor("!", lambda loader, suffix, node: None)
