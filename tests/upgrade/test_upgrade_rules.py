"""Each rule of the upgrade model on tiny hand-written templates."""
from __future__ import annotations

import pytest

from generator import upgrade
from generator.awsfacts import quotas

from upgrade_fixtures import IMPORTER, deploy, exporter, template


# --- exports ------------------------------------------------------------------------------

def test_an_export_in_use_cannot_be_removed():
    account = upgrade.Account()
    deploy(account, "producer", exporter(), Value="vpc-1")
    assert deploy(account, "consumer", IMPORTER).failures == []
    removed = deploy(account, "producer", exporter(export=False), Value="vpc-1")
    assert removed.exports_removed == ["producer-Thing"]
    assert [(f.rule, "Cannot delete export producer-Thing as it is in use by consumer"
             in f.message) for f in removed.failures] == [("export-in-use", True)]


def test_an_export_in_use_cannot_change_value():
    account = upgrade.Account()
    deploy(account, "producer", exporter(), Value="vpc-1")
    deploy(account, "consumer", IMPORTER)
    changed = deploy(account, "producer", exporter(), Value="vpc-2")
    assert changed.exports_changed == ["producer-Thing"]
    assert [f.rule for f in changed.failures] == ["export-in-use"]
    assert "Cannot update export producer-Thing" in changed.failures[0].message


def test_an_export_nobody_imports_may_go():
    account = upgrade.Account()
    deploy(account, "producer", exporter(), Value="vpc-1")
    assert deploy(account, "producer", exporter(export=False), Value="vpc-1").failures == []


def test_deleting_a_stack_whose_export_is_in_use_fails():
    account = upgrade.Account()
    deploy(account, "producer", exporter(), Value="vpc-1")
    deploy(account, "consumer", IMPORTER)
    deleted = account.apply(upgrade.StackRequest("delete", "producer", "prune"), by_s3=True)
    assert [f.rule for f in deleted.failures] == ["export-in-use"]
    # Deleting the importer first, then the exporter, is the order that works.
    account.apply(upgrade.StackRequest("delete", "consumer", "prune"), by_s3=True)
    deploy(account, "producer", exporter(), Value="vpc-1")
    assert account.apply(upgrade.StackRequest("delete", "producer", "prune"),
                         by_s3=True).failures == []


def test_importing_an_export_that_does_not_exist_yet_fails():
    created = deploy(upgrade.Account(), "consumer", IMPORTER)
    assert [f.rule for f in created.failures] == ["import-missing"]
    assert "No export named producer-Thing found" in created.failures[0].message


# --- replacement ------------------------------------------------------------------------

def namespace(vpc: str, name: str = "my.demo") -> dict:
    return {"Resources": {"Namespace": {
        "Type": "AWS::ServiceDiscovery::PrivateDnsNamespace",
        "Properties": {"Name": name, "Vpc": vpc}}}}


def test_a_named_resource_that_must_be_replaced_fails():
    account = upgrade.Account()
    deploy(account, "cluster", namespace("vpc-1"))
    moved = deploy(account, "cluster", namespace("vpc-2"))
    assert moved.replaced == ["Namespace (AWS::ServiceDiscovery::PrivateDnsNamespace)"]
    assert [f.rule for f in moved.failures] == ["named-replacement"]
    assert "Vpc changes" in moved.failures[0].message
    assert moved.failures[0].why == upgrade.DOC_NAME_TYPE


def test_a_replacement_under_a_new_name_deploys():
    account = upgrade.Account()
    deploy(account, "cluster", namespace("vpc-1"))
    renamed = deploy(account, "cluster", namespace("vpc-2", name="other.demo"))
    assert renamed.replaced and renamed.failures == []


def test_an_unnamed_resource_is_replaced_quietly_and_so_is_what_refers_to_it():
    account = upgrade.Account()

    def document(vpc: str) -> dict:
        return {"Resources": {
            "Group": {"Type": "AWS::EC2::SecurityGroup",
                      "Properties": {"GroupDescription": "g", "VpcId": vpc}},
            # GroupId is create-only: a new group means a new rule.
            "Rule": {"Type": "AWS::EC2::SecurityGroupIngress",
                     "Properties": {"GroupId": {"Fn::GetAtt": ["Group", "GroupId"]},
                                    "IpProtocol": "tcp", "FromPort": 1, "ToPort": 1,
                                    "CidrIp": "10.0.0.0/8"}}}}

    deploy(account, "s", document("vpc-1"))
    moved = deploy(account, "s", document("vpc-2"))
    assert moved.replaced == ["Group (AWS::EC2::SecurityGroup)",
                              "Rule (AWS::EC2::SecurityGroupIngress)"]
    assert moved.failures == []


def test_an_ecs_service_with_service_connect_cannot_be_replaced():
    def service(cluster: str, name: str) -> dict:
        return {"Resources": {"Service": {"Type": "AWS::ECS::Service", "Properties": {
            "Cluster": cluster, "ServiceName": name,
            "ServiceConnectConfiguration": {"Enabled": True}}}}}

    account = upgrade.Account()
    deploy(account, "s", service("a", "web"))
    assert [f.rule for f in deploy(account, "s", service("b", "web")).failures] == [
        "named-replacement"]
    # Even under a new name: the replacement's Service Connect names collide.
    assert [f.rule for f in deploy(account, "s", service("c", "web2")).failures] == [
        "service-connect-replacement"]


# --- parameters ---------------------------------------------------------------------------

def test_a_required_parameter_not_passed_fails():
    operation = deploy(upgrade.Account(), "producer", exporter())
    assert [f.rule for f in operation.failures] == ["parameter-required"]
    assert "Parameters: [Value] must have values" in operation.failures[0].message


def test_a_parameter_with_a_default_need_not_be_passed():
    document = exporter()
    document["Parameters"]["Value"]["Default"] = "vpc-0"
    assert deploy(upgrade.Account(), "producer", document).failures == []


def test_an_undeclared_parameter_fails_when_a_pipeline_action_passes_it():
    request = upgrade.StackRequest("deploy", "producer", "CodePipeline action X",
                                   template(exporter()), {"Value": "v", "Extra": "x"},
                                   passes_undeclared=True)
    operation = upgrade.Account().apply(request, by_s3=False)
    assert [f.rule for f in operation.failures] == ["parameter-undeclared"]
    assert "Parameters: [Extra] do not exist in the template" in operation.failures[0].message


def test_use_previous_value_needs_an_existing_stack_with_that_parameter():
    request = upgrade.StackRequest("deploy", "producer", "deployer", template(exporter()),
                                   {"Value": upgrade.USE_PREVIOUS})
    account = upgrade.Account()
    assert [f.rule for f in account.apply(request, by_s3=True).failures] == [
        "parameter-previous"]
    deploy(account, "producer", exporter(), Value="v1")
    assert account.apply(request, by_s3=True).failures == []
    assert account.stacks["producer"].parameters["Value"] == "v1"


# --- sizes and quotas -------------------------------------------------------------------------

@pytest.mark.parametrize("size, failure, note", [
    (quotas.TEMPLATE_BODY_BYTES.limit, False, False),
    (quotas.TEMPLATE_BODY_BYTES.limit + 1, False, True),  # by S3 URL
    (quotas.TEMPLATE_URL_BYTES.limit + 1, True, False),
])
def test_template_sizes(size, failure, note):
    findings = upgrade.rule_sizes("s", template({"Resources": {}}, size=size), by_s3=True)
    assert [f.failure for f in findings] == ([True] if failure else [False] if note else [])


def for_each_document(count_parameter_default: str) -> dict:
    return {
        "Transform": "AWS::LanguageExtensions",
        "Parameters": {"Names": {"Type": "CommaDelimitedList",
                                 "Default": count_parameter_default}},
        "Resources": {"Fn::ForEach::Handles": ["Name", {"Ref": "Names"}, {
            "Handle&{Name}": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}]},
    }


def test_resources_are_counted_after_for_each_expansion():
    names = ",".join(f"n{i}" for i in range(quotas.RESOURCES_PER_TEMPLATE.limit + 1))
    operation = deploy(upgrade.Account(), "s", for_each_document(names))
    assert [f.rule for f in operation.failures] == ["quota"]
    within = ",".join(f"n{i}" for i in range(quotas.RESOURCES_PER_TEMPLATE.limit))
    assert deploy(upgrade.Account(), "s", for_each_document(within)).failures == []


# --- Fn::ForEach and the evaluator ------------------------------------------------------------

def test_for_each_expands_keys_refs_and_sub_strings():
    fragment = {"Fn::ForEach::Rules": ["Caller", ["web-app", "api"], {
        "Rule&{Caller}": {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": {
            "Description": {"Ref": "Caller"},
            "Source": {"Fn::ImportValue": {"Fn::Sub": "demo-${Caller}-network-Id"}},
            "Plain": "${Caller} is literal outside Fn::Sub"}}}]}
    expanded = upgrade.expand_for_each(fragment, lambda collection: collection)
    assert list(expanded) == ["Rulewebapp", "Ruleapi"]  # &{} drops the '-'
    web = expanded["Rulewebapp"]["Properties"]
    assert web["Description"] == "web-app"
    assert web["Source"] == {"Fn::ImportValue": {"Fn::Sub": "demo-web-app-network-Id"}}
    assert web["Plain"] == "${Caller} is literal outside Fn::Sub"


def test_for_each_dollar_form_keeps_the_item_as_is():
    fragment = {"Fn::ForEach::X": ["N", ["a1", "b2"], {"Thing${N}": {"Ref": "N"}}]}
    assert upgrade.expand_for_each(fragment, lambda c: c) == {"Thinga1": "a1",
                                                              "Thingb2": "b2"}


def test_for_each_over_a_list_parameter_and_its_imports():
    document = {
        "Transform": "AWS::LanguageExtensions",
        "Parameters": {"Callers": {"Type": "CommaDelimitedList"}},
        "Resources": {"Fn::ForEach::CallerIngress": ["Caller", {"Ref": "Callers"}, {
            "CallerIngress&{Caller}": {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": {
                "GroupId": "sg-1", "IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                "SourceSecurityGroupId": {"Fn::ImportValue": {
                    "Fn::Sub": "${AWS::StackName}-${Caller}-sg"}}}}}]},
    }
    stack, _ = upgrade.evaluate_stack("demo-server", template(document), {"Callers": "web,api"},
                                      {}, {})
    assert sorted(stack.resources) == ["CallerIngressapi", "CallerIngressweb"]
    assert stack.imports == {"demo-server-web-sg", "demo-server-api-sg"}


def test_an_empty_list_parameter_is_one_empty_item():
    # CloudFormation's Ref of an empty CommaDelimitedList is [""] (upgrade.DOC_EMPTY_LIST),
    # so a loop over it runs once; the generator passes Callers=none instead.
    assert upgrade.list_parameter_value("") == [""]
    stack, _ = upgrade.evaluate_stack("s", template(for_each_document("")), {}, {}, {})
    assert list(stack.resources) == ["Handle"]


def test_evaluator_sub_join_if_and_pseudo_parameters():
    evaluator = upgrade.Evaluator(
        "demo-cluster", {"Subnets": ["a", "b"], "Public": "true"},
        conditions={"IsPublic": {"Fn::Equals": [{"Ref": "Public"}, "true"]}})
    assert evaluator.value({"Fn::Sub": "${AWS::StackName}-VpcId"}) == "demo-cluster-VpcId"
    assert evaluator.value({"Fn::Join": [",", {"Ref": "Subnets"}]}) == "a,b"
    assert evaluator.value({"Fn::If": ["IsPublic", "yes", "no"]}) == "yes"
    assert evaluator.value({"Fn::Sub": ["${X}-${Cluster.Arn}", {"X": "x"}]}) == \
        "x-{demo-cluster.Cluster.Arn#0}"
    assert evaluator.value([{"Ref": "AWS::NoValue"}, 1]) == [1]
