"""Helpers of the upgrade model's tests: the legacy templates, tiny hand-written
templates, and the topologies of the acceptance history (issue 8). A module with its own
name, so `from upgrade_fixtures import ...` cannot pick up another directory's conftest."""
from __future__ import annotations

from pathlib import Path

from generator import render, topology, upgrade

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"

SEED = """\
app: demo
namespace: my.demo
services:
  server: {port: 8080, cpu: 2048, memory: 4096, desired_count: 1, calls: [client]}
  client: {port: 8080, cpu: 2048, memory: 4096, desired_count: 1, calls: [server]}
"""
ADD_PUBLIC = SEED + "  web: {port: 8080, public: true, calls: [server]}\n"
REMOVE_CLIENT = """\
app: demo
namespace: my.demo
services:
  server: {port: 8080, cpu: 2048, memory: 4096, desired_count: 1}
  web: {port: 8080, public: true, calls: [server]}
"""
MAKE_PRIVATE = REMOVE_CLIENT.replace("public: true", "public: false")
CHANGE_PORT = MAKE_PRIVATE.replace("server: {port: 8080", "server: {port: 9090")
ADD_FIFTY = CHANGE_PORT + "".join(
    f"  svc{index:02d}: {{port: 8080, calls: [server]}}\n" for index in range(1, 51))
REMOVE_FORTY_NINE = CHANGE_PORT + "  svc01: {port: 8080, calls: [server]}\n"

# The acceptance list: every consecutive pair must deploy.
HISTORY = (
    ("seed", SEED),
    ("add a public service", ADD_PUBLIC),
    ("remove a service", REMOVE_CLIENT),
    ("make the public one private", MAKE_PRIVATE),
    ("change a port", CHANGE_PORT),
    ("add 50 services", ADD_FIFTY),
    ("remove 49", REMOVE_FORTY_NINE),
)


def render_topology(text: str, directory: Path) -> Path:
    """templates/ as the generator on this branch writes it for `text`."""
    render.write(directory, render.render(topology.parse(text)))
    return directory

def template(document: dict, name: str = "t.yaml", size: int | None = None
             ) -> upgrade.TemplateFile:
    """A hand-written template; `size` stands for a body of that many bytes."""
    return upgrade.TemplateFile(name, size if size is not None else 1000, document)


def exporter(value_parameter: str = "Value", export: bool = True) -> dict:
    """A stack exporting `${AWS::StackName}-Thing` = its Value parameter."""
    outputs = {"Thing": {"Value": {"Ref": value_parameter},
                         "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-Thing"}}}}
    return {
        "Parameters": {value_parameter: {"Type": "String"}},
        "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": outputs if export else {},
    }


IMPORTER = {
    "Resources": {"Group": {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {"GroupDescription": "uses the export",
                       "VpcId": {"Fn::ImportValue": "producer-Thing"}}}},
}


def deploy(account: upgrade.Account, stack: str, document: dict, by: str = "deployer",
           **parameters: str) -> upgrade.Operation:
    request = upgrade.StackRequest("deploy", stack, by, template(document), parameters)
    return account.apply(request, by_s3=True)
