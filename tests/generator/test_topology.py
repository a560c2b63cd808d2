from __future__ import annotations

import dataclasses

import pytest

from generator import topology as topology_module
from generator.topology import TopologyError

VALID_SERVICE = "port: 8080"


def test_default_topology_is_the_corrected_seed(default_topology):
    assert default_topology.namespace == "my.demo"
    server, client = default_topology.services
    assert (server.name, client.name) == ("server", "client")
    # The seed gave both services the discovery name `server`.
    assert {server.discovery_name, client.discovery_name} == {"server", "client"}
    assert server.calls == ("client",) and client.calls == ("server",)
    for service in (server, client):
        assert (service.port, service.cpu, service.memory, service.desired_count) == (
            8080, 2048, 4096, 1)
        assert service.public is False
    assert default_topology.endpoint(server) == "http://server.my.demo:8080"
    assert default_topology.endpoint(client) == "http://client.my.demo:8080"


def test_defaults_and_optional_fields(rich_topology):
    catalog = rich_topology.service("catalog")
    assert (catalog.cpu, catalog.memory, catalog.desired_count) == (256, 512, 1)
    assert catalog.health_check_path == "/healthz"
    assert catalog.scaling == topology_module.Scaling(min=1, max=1, cpu_target=70)
    web = rich_topology.service("web")
    assert web.public and web.scaling.max == 6
    # Booleans become the lower-case strings a shell or app expects.
    assert dict(web.environment) == {"FEATURE_X": "true", "LOG_LEVEL": "debug"}
    assert rich_topology.endpoint(rich_topology.service("payments")) == "http://pay.internal.shop:8443"
    assert rich_topology.environment_names == ("FEATURE_X", "LOG_LEVEL")
    assert [s.name for s in rich_topology.callers(rich_topology.service("orders"))] == [
        "web", "payments"]


def test_topology_objects_are_immutable(default_topology):
    with pytest.raises(dataclasses.FrozenInstanceError):
        default_topology.services[0].port = 9  # type: ignore[misc]
    assert isinstance(default_topology.services, tuple)


def _service_yaml(body: str, name: str = "server") -> str:
    indented = "\n".join("    " + line for line in body.splitlines())
    return f"app: demo\nnamespace: my.demo\nservices:\n  {name}:\n{indented}\n"


BAD_INPUTS = [
    # (case id, file text, expected one-line message fragment)
    ("malformed", "app: [demo\n", "topology.yaml:2:1: invalid YAML"),
    ("empty", "", "topology.yaml: the file is empty"),
    ("unknown-top-key", "app: demo\nnamespace: my.demo\nservices: {a: {port: 1}}\nextra: 1\n",
     "topology.yaml: extra: unknown key"),
    ("missing-namespace", "app: demo\nservices: {a: {port: 1}}\n",
     "topology.yaml: namespace: required field is missing"),
    ("missing-port", _service_yaml("cpu: 256"), "services.server.port: required field is missing"),
    ("unknown-service-key", _service_yaml("port: 80\nprot: 81"),
     "services.server.prot: unknown key"),
    ("port-zero", _service_yaml("port: 0"), "services.server.port: 0 is outside 1..65535"),
    ("port-too-big", _service_yaml("port: 70000"),
     "services.server.port: 70000 is outside 1..65535"),
    ("port-string", _service_yaml("port: '80'"),
     "services.server.port: expected an integer, got a string"),
    ("bad-cpu", _service_yaml("port: 80\ncpu: 300"), "services.server.cpu: 300 is not a Fargate cpu"),
    ("bad-pair", _service_yaml("port: 80\ncpu: 256\nmemory: 4096"),
     "services.server.memory: 4096 MiB is not valid with cpu 256"),
    ("bad-name", _service_yaml(VALID_SERVICE, name="Server_1"),
     "services.Server_1: 'Server_1' is not a valid DNS label"),
    ("bad-namespace", "app: demo\nnamespace: my..demo\nservices: {a: {port: 1}}\n",
     "topology.yaml: namespace: 'my..demo' is not a valid DNS name"),
    ("unknown-callee", _service_yaml("port: 80\ncalls: [ghost]"),
     "services.server.calls[0]: unknown service 'ghost' (known: server)"),
    ("self-call", _service_yaml("port: 80\ncalls: [server]"),
     "services.server.calls[0]: a service cannot call itself"),
    ("duplicate-service-key",
     "app: demo\nnamespace: my.demo\nservices:\n  a: {port: 1}\n  a: {port: 2}\n",
     "duplicate key 'a'"),
    ("duplicate-discovery-name",
     "app: demo\nnamespace: my.demo\nservices:\n  server: {port: 1}\n"
     "  client: {port: 2, discovery_name: server}\n",
     "services.client.discovery_name: 'server' is already the discovery name of 'server'"),
    ("reserved-env", _service_yaml("port: 80\nenvironment: {PORT: '1'}"),
     "services.server.environment.PORT: is set by the service template itself"),
    ("scaling-bounds", _service_yaml("port: 80\ndesired_count: 5\nscaling: {max: 3}"),
     "services.server.scaling.min: min 5 is greater than max 3"),
    ("public-not-bool", _service_yaml("port: 80\npublic: 'yes'"),
     "services.server.public: expected true or false"),
    ("retention", "app: demo\nnamespace: my.demo\nlog_retention_days: 10\nservices: {a: {port: 1}}\n",
     "topology.yaml: log_retention_days: 10 is not a CloudWatch Logs retention"),
]


@pytest.mark.parametrize("text,expected", [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_one_line_naming_file_and_field(write_topology, text, expected):
    path = write_topology(text)
    with pytest.raises(TopologyError) as raised:
        topology_module.load(path)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(TopologyError, match=r"nope\.yaml: file not found"):
        topology_module.load(tmp_path / "nope.yaml")
    with pytest.raises(TopologyError, match="cannot read"):
        topology_module.load(tmp_path)  # a directory


def test_rich_topology_round_trips_from_text(write_topology, rich_topology_text):
    loaded = topology_module.parse(rich_topology_text, "inline.yaml")
    assert loaded == topology_module.load(write_topology(rich_topology_text))
    assert loaded.source == "inline.yaml"


def test_libyaml_and_pure_python_loaders_read_the_same_topology(repo_root):
    """The fast loader is libyaml; the pure-Python one is the reference for data and errors."""
    import yaml

    from generator import topology as module
    from generator.topology import yamlread
    from benchmarks.topologies import layered_topology

    text = yaml.safe_dump(layered_topology(300), sort_keys=False)
    fast = yaml.load(text, Loader=yamlread._FastUniqueKeyLoader)  # noqa: S506
    reference = yaml.load(text, Loader=yamlread._UniqueKeyLoader)  # noqa: S506
    assert fast == reference
    default = (repo_root / "topology.yaml").read_text()
    assert yaml.load(default, Loader=yamlread._FastUniqueKeyLoader) == yaml.load(  # noqa: S506
        default, Loader=yamlread._UniqueKeyLoader)  # noqa: S506
    assert yaml.__with_libyaml__  # the measured speed needs it; PyYAML wheels ship it
    with pytest.raises(module.TopologyError, match="duplicate key 'a'"):
        module.parse("app: x\nnamespace: x.y\nservices:\n  a: {port: 1}\n  a: {port: 2}\n")
