"""Issue 14, finding 2: a service that scales leaves DesiredCount out of AWS::ECS::Service.

"For existing services, if a desired count is not specified, it is omitted from the
operation" (AWS::ECS::Service DesiredCount,
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-ecs-service.html#cfn-ecs-service-desiredcount),
so no update, the deployer's or a console one, puts a scaled-out service back to the last
deployed count. On main DesiredCount was always `Ref: DesiredCount`.

The template is resolved as CloudFormation would (workloads_kit.Evaluator) with a service's
own params file, and with scaling values from a topology's `scaling:`.
"""
from __future__ import annotations

from workloads_kit import Evaluator, load_yaml, params, run_cli, write_project

from generator import names, params as params_module, topology as topology_module

SCALING_TOPOLOGY = """\
app: shop
namespace: shop.local
services:
  fixed:
    port: 8080
    desired_count: 3
  elastic:
    port: 8080
    desired_count: 2
    scaling: {min: 2, max: 6}
"""


def _service(resources: dict) -> dict:
    return resources["Service"]["Properties"]


def test_a_fixed_service_keeps_its_desired_count(service_stack):
    # Every workloads service has MinCapacity == MaxCapacity (no `scaling:`).
    properties = _service(service_stack("web", DesiredCount="4"))
    assert properties["DesiredCount"] == "4"
    assert _service(service_stack("web", MinCapacity="2", MaxCapacity="2",
                                  DesiredCount="2"))["DesiredCount"] == "2"


def test_a_service_that_scales_has_no_desired_count(service_stack):
    properties = _service(service_stack("web", MinCapacity="1", MaxCapacity="5",
                                        DesiredCount="4"))
    assert "DesiredCount" not in properties
    assert properties["ServiceName"]  # the rest of the service resolved


def test_the_params_files_of_a_scaling_topology_resolve_to_the_same_rule(tmp_path):
    root = tmp_path / "project"
    topology = write_project(root, SCALING_TOPOLOGY)
    result = run_cli("generate", "--topology", topology, "--out", root / "templates")
    assert result.returncode == 0, result.stderr
    template = load_yaml(root / "templates" / "service.yaml")

    loaded = topology_module.load(topology)

    def resolved(service: str) -> dict:
        # What the deployer passes on a first deploy: the params file, then the carried
        # values (DesiredCount is never in the params file).
        values = {**params(root, service), names.TLS_ROLE_PARAMETER: "",
                  **params_module.initial_values(loaded, loaded.service(service))}
        return _service(Evaluator(template, values).resources())

    assert resolved("fixed")["DesiredCount"] == "3"
    assert "DesiredCount" not in resolved("elastic")
    scalable = Evaluator(template, params(root, "elastic")).resources()["ScalableTarget"]
    assert scalable["Properties"]["MinCapacity"] == "2"  # the floor of the omitted count
