"""topology.yaml's `egress` (issue 15, item 5): what a task reaches besides its callees.

The task security group lists its outbound rules, which replaces EC2's default allow-all
rule ("If your security group has no outbound rules, no outbound traffic is allowed",
https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html).
"""
from __future__ import annotations

import json

import pytest

from generator import quotacheck
from generator import topology as topology_module
from generator.stacks import network
from generator.topology import TopologyError

BASE = """\
app: shop
namespace: shop.local
services:
  api: {port: 8080, calls: [db]}
  db: {port: 5432}
"""


def parse(extra: str = "") -> topology_module.Topology:
    return topology_module.parse(BASE + extra, "topology.yaml")


def egress_rules(topology) -> list[dict]:
    group = json.loads(network.build(topology).to_json())["Resources"]["TaskSecurityGroup"]
    return group["Properties"]["SecurityGroupEgress"]


def test_without_the_section_tasks_get_https_only():
    assert egress_rules(parse()) == [{
        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0",
        "Description": "HTTPS: ECR, CloudWatch Logs, Secrets Manager, SSM, ECS"}]


def test_vpc_endpoints_prefix_lists_and_extra_destinations():
    topology = parse("""\
egress:
  https: 10.0.0.0/16
  https_prefix_lists: [pl-63a5400a]
  allow:
    - {cidr: 10.20.0.0/16, port: 5432}
    - {cidr: 0.0.0.0/0, port: 8000-8999}
""")
    rules = egress_rules(topology)
    assert [(r.get("CidrIp") or r.get("DestinationPrefixListId"), r["FromPort"], r["ToPort"])
            for r in rules] == [("10.0.0.0/16", 443, 443), ("pl-63a5400a", 443, 443),
                                ("10.20.0.0/16", 5432, 5432), ("0.0.0.0/0", 8000, 8999)]
    assert all(r["IpProtocol"] == "tcp" for r in rules)
    assert topology.egress.platform_rules == 4


@pytest.mark.parametrize("section, where, words", [
    ("egress: {https: 10.0.0.1/16}", "egress.https", "CIDR"),
    ("egress: {https: '::/0'}", "egress.https", "IPv4"),
    ("egress: {https_prefix_lists: [s3]}", "egress.https_prefix_lists[0]", "prefix list"),
    ("egress: {allow: [{cidr: 10.0.0.0/8}]}", "egress.allow[0]", "cidr and port"),
    ("egress: {allow: [{cidr: 10.0.0.0/8, port: 0}]}", "egress.allow[0].port", "1-65535"),
    ("egress: {allow: [{cidr: 10.0.0.0/8, port: 9000-8000}]}", "egress.allow[0].port", "range"),
    ("egress: {allow: [{cidr: 10.0.0.0/8, port: 22, udp: true}]}", "egress.allow[0]", "udp"),
    ("egress: {everything: true}", "egress.everything", "unknown key"),
    ("egress: [443]", "egress", "mapping"),
])
def test_bad_egress_is_one_line_naming_the_field(section, where, words):
    with pytest.raises(TopologyError) as error:
        parse(section + "\n")
    message = str(error.value)
    assert message.startswith(f"topology.yaml: {where}: "), message
    assert words in message and "\n" not in message


def test_outbound_rules_count_against_the_rules_quota():
    callees = {f"c{i:02d}": {"port": 8080} for i in range(58)}
    services = "".join(f"  {name}: {{port: 8080}}\n" for name in callees)
    hub = "  hub: {port: 8080, calls: [%s]}\n" % ", ".join(callees)
    text = f"app: shop\nnamespace: shop.local\nservices:\n{services}{hub}"
    fits = topology_module.parse(text + "egress: {allow: [{cidr: 10.0.0.0/8, port: 5432}]}\n",
                                 "topology.yaml")
    quotacheck.check_security_groups(fits)  # 58 callees + HTTPS + 1 allow = 60
    over = topology_module.parse(
        text + "egress: {allow: [{cidr: 10.0.0.0/8, port: 5432}, "
               "{cidr: 10.1.0.0/16, port: 6379}]}\n", "topology.yaml")
    with pytest.raises(quotacheck.QuotaError) as error:
        quotacheck.check_security_groups(over)
    assert "services.hub" in str(error.value) and "61 outbound rules" in str(error.value)
    assert "quotas.security_group_inbound_rules" in str(error.value)
