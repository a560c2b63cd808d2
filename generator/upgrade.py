"""What deploying one commit's templates over another's does, and whether it succeeds.

A model of the rules CloudFormation and CodePipeline apply, as code (issue 8). Pure: it
reads two templates directories and never calls AWS. `plan_upgrade(old_dir, new_dir)`
replays the deploy the pipeline would run and returns every stack operation in order,
the resources each replaces, the exports it touches and every failure it predicts, each
with the documentation page of the rule that fails it.

Two deployment modes, recognised from pipeline.yaml:

- OLD: the pipeline has one CloudFormation action per stack (cluster, each service).
  Those actions are the deploy, with the parameters their configuration passes
  (TemplateConfiguration file, then ParameterOverrides). Nothing is ever deleted.
- NEW (/work/design-notes.md): the pipeline has no per-stack action; its Deploy step runs
  `python -m generator deploy --prune`, which deletes the stacks of removed services,
  then deploys the cluster, the network stacks, the service stacks, and deletes the
  network stacks of removed services.

In both, the pipeline stack is updated first, by the UpdatePipeline action of the OLD
definition: a run executes the pipeline definition it started with, and only the run
that RestartExecutionOnUpdate starts afterwards uses the new one (see DOC_PIPELINE_RUNS).
So the old action's ParameterOverrides meet the new pipeline.yaml.

What the model does not know, it says: values that only exist in AWS (ARNs, ids) are
symbols like `{demo-cluster.Namespace.Arn#0}`, equal before and after unless the resource
is replaced; the image and other per-run values are the same placeholder on both sides,
so the model compares templates and parameters, not builds.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import cfn_flip
import yaml

from generator.awsfacts import quotas, schemas

# --- the documentation each rule cites -------------------------------------------------
DOC_EXPORTS = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/"
               "using-cfn-stack-exports.html")
DOC_IMPORT_VALUE = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
                    "intrinsic-function-reference-importvalue.html")
DOC_PARAMETERS = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/"
                  "parameters-section-structure.html")
DOC_USE_PREVIOUS = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/"
                    "API_Parameter.html")
DOC_NAME_TYPE = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
                 "aws-properties-name.html")
DOC_ECS_SERVICE = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
                   "aws-resource-ecs-service.html")
DOC_UPDATE_BEHAVIORS = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/"
                        "using-cfn-updating-stacks-update-behaviors.html")
DOC_CFN_ACTION = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/"
                  "continuous-delivery-codepipeline-action-reference.html")
DOC_PIPELINE_RUNS = ("https://docs.aws.amazon.com/codepipeline/latest/userguide/"
                     "concepts-how-it-works.html")
DOC_FOREACH = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
               "intrinsic-function-reference-foreach.html")
# An empty CommaDelimitedList is [""], not [] (Fn::Length of it is 1), so Fn::ForEach over
# it runs once with "" (reported in cfn-language-discussion#154).
DOC_EMPTY_LIST = "https://github.com/aws-cloudformation/cfn-language-discussion/issues/102"
DOC_QUOTAS = quotas.CFN_QUOTAS
# EC2's InvalidPermission.Duplicate: the same rule cannot be added to a group twice.
DOC_DUPLICATE_RULE = ("https://docs.aws.amazon.com/AWSEC2/latest/APIReference/"
                      "errors-overview.html")
# Its infrastructure-as-code note: the infrastructure role, CA and key are deleted after
# the services that use them.
DOC_SERVICE_CONNECT_TLS = ("https://docs.aws.amazon.com/AmazonECS/latest/developerguide/"
                           "service-connect-tls.html")
TLS_ROLE_WANTED = "ServiceConnectTlsRoleWanted"
TLS_CA_PARAMETER = "ServiceConnectTlsCaArn"
# "When using templates with the AWS::LanguageExtensions transform, provide the template
# instead of using UsePreviousTemplate to ensure new parameter values and Systems Manager
# parameter updates are applied correctly" (API_UpdateStack.html, UsePreviousTemplate);
# the transform's page (Remarks) says the same of the console's "Use existing template".
DOC_PREVIOUS_TEMPLATE = ("https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/"
                         "transform-aws-languageextensions.html")

# The property that gives each resource type a custom physical name. A replaced resource
# whose name stays the same cannot be created next to the old one (DOC_NAME_TYPE).
# AWS::ECS::TaskDefinition's Family is not unique (each registration is a new revision).
NAME_PROPERTIES = {
    "AWS::ECS::Service": "ServiceName",
    "AWS::ECS::Cluster": "ClusterName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::ServiceDiscovery::PrivateDnsNamespace": "Name",
    "AWS::ECR::Repository": "RepositoryName",
    "AWS::CodeBuild::Project": "Name",
    "AWS::CodeBuild::ReportGroup": "Name",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::ApplicationAutoScaling::ScalingPolicy": "PolicyName",
    "AWS::CodePipeline::Pipeline": "Name",
    "AWS::ElasticLoadBalancingV2::LoadBalancer": "Name",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "Name",
    "AWS::EC2::SecurityGroup": "GroupName",
}

TEMPLATE_FILES = ("bootstrap.yaml", "cluster.yaml", "network.yaml", "ingress.yaml",
                  "service.yaml", "pipeline.yaml")
REQUIRED_FILES = ("cluster.yaml", "service.yaml", "pipeline.yaml")
PARAMS_DIR = "params"

REGION, ACCOUNT = "{region}", "{account}"
IMAGE = "{image from the build}"
# What the old design's LiveParameters step and the new deployer read from the running
# services; the same on both sides of an upgrade.
LIVE_VALUES = {"ImageUri": IMAGE, "DesiredCount": "1", "EnableExecuteCommand": "false",
               "DeploymentNonce": ""}
# The design's deployer carries these over with UsePreviousValue, or LIVE_VALUES when new.
CARRIED_PARAMETERS = ("DesiredCount", "EnableExecuteCommand", "DeploymentNonce")
# The ingress stack's alarm settings for the edges into a service: the service's own, from
# its params file (generator.params.alarm_parameters).
INGRESS_ALARM_PARAMETERS = ("AlarmErrorRatePercent", "AlarmMinimumRequests",
                            "AlarmEvaluationMinutes")
STACK_TAGS = {"managed-by": "ecs-service-connect-kit"}


class UpgradeInputError(Exception):
    """A templates directory the model cannot read; str() is the one-line message."""


@dataclass(frozen=True)
class Environment:
    """What the operator gave the first deploy: the VPC and subnets the cluster lives in;
    for one of topology.yaml's environments, also its name (whose params/<name>/ are read),
    the project's app (the shared pipeline and bootstrap stacks) and its namespace."""
    vpc_id: str = "vpc-0a1b2c3d"
    private_subnets: str = "subnet-private-a,subnet-private-b"
    public_subnets: str = "subnet-public-a,subnet-public-b"
    name: str = ""
    project: str = ""
    namespace: str = ""

    def cluster_values(self) -> dict[str, str]:
        values = {"VpcId": self.vpc_id, "PrivateSubnetIds": self.private_subnets,
                  "PublicSubnetIds": self.public_subnets}
        if self.namespace:
            values["NamespaceDnsName"] = self.namespace
        return values


# --- reading templates -------------------------------------------------------------------

def parse_template(text: str, source: str = "template") -> dict:
    try:
        # cfn-flip (troposphere's own YAML layer) reads short forms as their long forms.
        document = json.loads(json.dumps(cfn_flip.load_yaml(text), default=str))
    except yaml.YAMLError as err:
        raise UpgradeInputError(f"{source}: not YAML: {' '.join(str(err).split())}") from None
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise UpgradeInputError(f"{source}: not a CloudFormation template (no Resources)")
    return document


@dataclass(frozen=True)
class TemplateFile:
    name: str
    size: int  # bytes of the body CloudFormation receives
    document: dict

    @property
    def parameters(self) -> dict:
        return self.document.get("Parameters") or {}

    @property
    def transforms(self) -> tuple[str, ...]:
        value = self.document.get("Transform") or ()
        return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class TemplatesDir:
    path: Path
    templates: Mapping[str, TemplateFile]
    params: Mapping[str, dict]  # service -> {"Parameters": {...}, "Tags": {...}}
    # dashboards/<name>.json, name -> text (generator.upgrademonitoring.read_dashboards)
    dashboards: Mapping[str, str] = field(default_factory=dict)

    def template(self, name: str) -> TemplateFile | None:
        return self.templates.get(name)


def read_templates_dir(path: str | Path, environment: str = "") -> TemplatesDir:
    """`environment`: read that environment's params/<environment>/*.json."""
    directory = Path(path)
    if not directory.is_dir():
        raise UpgradeInputError(f"{directory}: not a directory")
    templates = {}
    for name in TEMPLATE_FILES:
        file = directory / name
        if not file.is_file():
            if name in REQUIRED_FILES:
                raise UpgradeInputError(f"{file}: not found (a templates directory has "
                                        f"{', '.join(REQUIRED_FILES)})")
            continue
        body = file.read_bytes()
        templates[name] = TemplateFile(name, len(body),
                                       parse_template(body.decode("utf-8"), str(file)))
    params = {}
    params_dir = directory / PARAMS_DIR / environment if environment else directory / PARAMS_DIR
    for file in sorted(params_dir.glob("*.json")):
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except ValueError as err:
            raise UpgradeInputError(f"{file}: not JSON: {err}") from None
        if not isinstance(document, dict) or not isinstance(document.get("Parameters"), dict):
            raise UpgradeInputError(f"{file}: expected {{\"Parameters\": {{...}}}}")
        params[file.stem] = {
            "Parameters": {k: str(v) for k, v in document["Parameters"].items()},
            "Tags": {k: str(v) for k, v in (document.get("Tags") or {}).items()},
        }
    from generator.upgrademonitoring import read_dashboards

    return TemplatesDir(directory, templates, params, read_dashboards(directory))


# --- evaluating intrinsic functions -----------------------------------------------------

class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def list_parameter_value(value: str) -> list[str]:
    # "" is [""], as CloudFormation has it (DOC_EMPTY_LIST).
    return [item.strip() for item in value.split(",")]


def is_list_type(declaration: Mapping) -> bool:
    kind = str(declaration.get("Type", "String"))
    return kind == "CommaDelimitedList" or kind.startswith("List<")


@dataclass
class Evaluator:
    """Ref, Fn::Sub, Fn::Join, Fn::If ... over one stack's parameters.

    Resource attributes are symbols `{stack.Logical.Attr#generation}`; the generation
    goes up when the resource is replaced, so a value built from it changes then and only
    then. Fn::ImportValue reads `exports` and records the name in `imports`.
    """
    stack: str
    parameters: Mapping[str, Any]  # name -> str or list (already typed)
    conditions: Mapping[str, Any] = field(default_factory=dict)  # name -> expression
    mappings: Mapping[str, Any] = field(default_factory=dict)
    generations: Mapping[str, int] = field(default_factory=dict)
    exports: Mapping[str, str] = field(default_factory=dict)
    imports: set = field(default_factory=set)
    _condition_values: dict = field(default_factory=dict)

    def symbol(self, logical: str, attribute: str | None = None) -> str:
        suffix = f".{attribute}" if attribute else ""
        return f"{{{self.stack}.{logical}{suffix}#{self.generations.get(logical, 0)}}}"

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::StackName": self.stack, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"{{{self.stack}.StackId}}", "AWS::NoValue": NO_VALUE,
            "AWS::NotificationARNs": [],
        }.get(name, f"{{{name}}}")

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        return self.symbol(name)

    def condition(self, name: str) -> bool:
        if name not in self._condition_values:
            if name not in self.conditions:
                raise UpgradeInputError(f"{self.stack}: condition {name} is not declared")
            self._condition_values[name] = bool(self.value(self.conditions[name]))
        return self._condition_values[name]

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.value(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, argument), = node.items()
            handler = _FUNCTIONS.get(key)
            if handler is not None:
                return handler(self, argument)
        result = {}
        for key, item in node.items():
            evaluated = self.value(item)
            if evaluated is not NO_VALUE:
                result[key] = evaluated
        return result

    def text(self, node: Any) -> str:
        value = self.value(node)
        if isinstance(value, list):
            return ",".join(self.text(item) for item in value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict,)):
            return json.dumps(value, sort_keys=True)
        return str(value)

    def sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            template, variables = argument[0], argument[1] if len(argument) > 1 else {}
        else:
            template, variables = argument, {}
        local = {name: self.text(value) for name, value in (variables or {}).items()}

        def replace(match: re.Match) -> str:
            name = match.group(1).strip()
            if name in local:
                return local[name]
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                if logical not in self.parameters:
                    return self.symbol(logical, attribute)
            return self.text(self.ref(name))

        return _SUB_VARIABLE.sub(replace, str(template)).replace("${!", "${")

    def import_value(self, argument: Any) -> str:
        name = self.text(argument)
        self.imports.add(name)
        return self.exports.get(name, f"{{import {name}}}")


def _get_att(evaluator: Evaluator, argument: Any) -> str:
    logical, attribute = (argument if isinstance(argument, list) else str(argument).split(".", 1))
    return evaluator.symbol(str(logical), evaluator.text(attribute))


def _if(evaluator: Evaluator, argument: Any) -> Any:
    name, when_true, when_false = argument
    return evaluator.value(when_true if evaluator.condition(name) else when_false)


def _select(evaluator: Evaluator, argument: Any) -> Any:
    index, items = argument
    values = evaluator.value(items)
    if not isinstance(values, list):
        values = str(values).split(",")
    position = int(evaluator.text(index))
    return values[position] if position < len(values) else f"{{select {position}}}"


def _find_in_map(evaluator: Evaluator, argument: Any) -> Any:
    keys = [evaluator.text(item) for item in argument[:3]]
    try:
        return evaluator.value(evaluator.mappings[keys[0]][keys[1]][keys[2]])
    except (KeyError, TypeError):
        return f"{{map {'/'.join(keys)}}}"


_FUNCTIONS: dict[str, Callable[[Evaluator, Any], Any]] = {
    "Ref": lambda e, a: e.ref(str(a)),
    "Fn::GetAtt": _get_att,
    "Fn::Sub": lambda e, a: e.sub(a),
    "Fn::Join": lambda e, a: e.text(a[0]).join(
        e.text(item) for item in (e.value(a[1]) if isinstance(e.value(a[1]), list)
                                  else [e.value(a[1])])),
    "Fn::Split": lambda e, a: e.text(a[1]).split(e.text(a[0])),
    "Fn::Select": _select,
    "Fn::ImportValue": lambda e, a: e.import_value(a),
    "Fn::If": _if,
    "Fn::Equals": lambda e, a: e.text(a[0]) == e.text(a[1]),
    "Fn::Not": lambda e, a: not e.value(a[0]),
    "Fn::And": lambda e, a: all(e.value(item) for item in a),
    "Fn::Or": lambda e, a: any(e.value(item) for item in a),
    "Condition": lambda e, a: e.condition(str(a)),
    "Fn::FindInMap": _find_in_map,
    "Fn::Base64": lambda e, a: e.value(a),
    "Fn::Length": lambda e, a: len(e.value(a)) if isinstance(e.value(a), list) else 1,
    "Fn::ToJsonString": lambda e, a: json.dumps(e.value(a), sort_keys=True),
    "Fn::GetAZs": lambda e, a: [f"{{az-{i}}}" for i in range(2)],
    "Fn::Cidr": lambda e, a: f"{{cidr {json.dumps(e.value(a), sort_keys=True)}}}",
    "Fn::GetParam": lambda e, a: f"{{artifact {'/'.join(map(str, a))}}}",
}


# --- Fn::ForEach (AWS::LanguageExtensions) -----------------------------------------------

FOR_EACH = "Fn::ForEach::"
_NON_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")


def expand_for_each(node: Any, collection_of: Callable[[Any], list]) -> Any:
    """Every `Fn::ForEach::Name: [Identifier, Collection, {KeyTemplate: Value}]` in a
    mapping (and in the mappings inside it) replaced by one entry per item (DOC_FOREACH).

    In keys `${Id}` is the item and `&{Id}` the item without its non-alphanumeric
    characters; in values `{"Ref": Id}` and `${Id}` / `&{Id}` inside Fn::Sub strings.
    `collection_of` turns the Collection (a list, or a Ref to a list parameter) into items.
    """
    if isinstance(node, list):
        return [expand_for_each(item, collection_of) for item in node]
    if not isinstance(node, dict):
        return node
    result: dict = {}
    for key, value in node.items():
        if isinstance(key, str) and key.startswith(FOR_EACH):
            if not (isinstance(value, list) and len(value) == 3 and isinstance(value[2], dict)):
                raise UpgradeInputError(f"{key}: expected [Identifier, Collection, {{Key: Value}}]")
            identifier, collection, fragment = value
            for item in collection_of(collection):
                item = str(item)
                for key_template, body in fragment.items():
                    new_key = _substitute_key(str(key_template), identifier, item)
                    expanded = _substitute(body, identifier, item)
                    result.update(expand_for_each({new_key: expanded}, collection_of))
        else:
            result[key] = expand_for_each(value, collection_of)
    return result


def _substitute_key(text: str, identifier: str, item: str) -> str:
    return (text.replace(f"${{{identifier}}}", item)
            .replace(f"&{{{identifier}}}", _NON_ALPHANUMERIC.sub("", item)))


def _substitute(node: Any, identifier: str, item: str, in_sub: bool = False) -> Any:
    if isinstance(node, list):
        return [_substitute(child, identifier, item, in_sub) for child in node]
    if isinstance(node, str):
        return _substitute_key(node, identifier, item) if in_sub else node
    if not isinstance(node, dict):
        return node
    if node == {"Ref": identifier}:
        return item
    return {key: _substitute(child, identifier, item, in_sub or key == "Fn::Sub")
            for key, child in node.items()}


# --- one stack, evaluated -----------------------------------------------------------------

@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: dict  # evaluated
    generation: int


@dataclass
class DeployedStack:
    """A stack as CloudFormation would hold it after the operation that made it."""
    name: str
    template: TemplateFile
    parameters: dict[str, str]  # resolved values, as DescribeStacks shows them
    tags: dict[str, str]
    resources: dict[str, Resource]
    exports: dict[str, str]  # export name -> value
    imports: set[str]
    outputs: dict[str, str] = field(default_factory=dict)  # every output, exported or not


def typed_parameters(template: TemplateFile, values: Mapping[str, str]) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    for name, declaration in template.parameters.items():
        if name in values:
            raw = values[name]
        elif "Default" in (declaration or {}):
            raw = declaration["Default"]
            raw = ",".join(map(str, raw)) if isinstance(raw, list) else str(raw)
        else:
            raw = f"{{missing {name}}}"
        typed[name] = list_parameter_value(raw) if is_list_type(declaration or {}) else raw
    return typed


def evaluate_stack(name: str, template: TemplateFile, values: Mapping[str, str],
                   tags: Mapping[str, str], exports: Mapping[str, str],
                   previous: DeployedStack | None = None) -> tuple[DeployedStack, list[str]]:
    """The stack `template` makes with `values`, and the logical ids it replaces."""
    typed = typed_parameters(template, values)
    document = template.document
    base = Evaluator(name, typed, mappings=document.get("Mappings") or {})

    def collection_of(collection: Any) -> list:
        items = base.value(collection)
        return items if isinstance(items, list) else list_parameter_value(str(items))

    if "AWS::LanguageExtensions" in template.transforms:
        sections = {section: expand_for_each(document.get(section) or {}, collection_of)
                    for section in ("Conditions", "Resources", "Outputs")}
    else:
        sections = {section: document.get(section) or {}
                    for section in ("Conditions", "Resources", "Outputs")}

    old_generations = ({logical: resource.generation
                        for logical, resource in previous.resources.items()}
                       if previous else {})
    replaced: set[str] = set()
    while True:  # a replaced resource can change another's create-only property: repeat
        generations = {logical: old_generations.get(logical, 0) + (logical in replaced)
                       for logical in sections["Resources"]}
        evaluator = Evaluator(name, typed, sections["Conditions"], base.mappings,
                              generations, exports)
        resources = {}
        for logical, declaration in sections["Resources"].items():
            if not isinstance(declaration, dict):
                raise UpgradeInputError(f"{name}: resource {logical} is not a mapping")
            if "Condition" in declaration and not evaluator.condition(declaration["Condition"]):
                continue
            properties = evaluator.value(declaration.get("Properties") or {})
            resources[logical] = Resource(logical, str(declaration.get("Type")),
                                          properties, generations[logical])
        now_replaced = set(replaced)
        if previous:
            now_replaced |= {logical for logical in resources
                             if logical in previous.resources
                             and replaces(previous.resources[logical], resources[logical])}
        if now_replaced == replaced:
            break
        replaced = now_replaced
    stack_exports = {}
    stack_outputs = {}
    for logical, output in sections["Outputs"].items():
        if "Condition" in output and not evaluator.condition(output["Condition"]):
            continue
        value = evaluator.text(output.get("Value"))
        stack_outputs[logical] = value
        if isinstance(output.get("Export"), dict):
            stack_exports[evaluator.text(output["Export"].get("Name"))] = value
    stack = DeployedStack(name, template, {k: (",".join(v) if isinstance(v, list) else v)
                                           for k, v in typed.items()},
                          dict(tags), resources, stack_exports, set(evaluator.imports),
                          stack_outputs)
    return stack, sorted(replaced)


def replaces(old: Resource, new: Resource) -> bool:
    """A resource is replaced when its type or a create-only property changes."""
    if old.type != new.type:
        return True
    try:
        create_only = schemas.schema(new.type).create_only
    except schemas.UnknownResourceType:
        return False
    return any(old.properties.get(p) != new.properties.get(p) for p in create_only)


# --- the deploy, as a list of stack requests -----------------------------------------------

@dataclass(frozen=True)
class StackRequest:
    """One create/update (or delete) that the pipeline or the deployer asks for."""
    action: str  # "deploy" or "delete"
    stack: str
    by: str  # who asks: "UpdatePipeline action (old definition)", "deployer", ...
    template: TemplateFile | None = None
    # name -> value; USE_PREVIOUS keeps the stack's value; absent -> the template Default.
    parameters: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    # The deployer passes only what the template declares; a CodePipeline action passes
    # whatever its configuration lists, declared or not.
    passes_undeclared: bool = False
    # Parameters the passing side failed to provide, with why (the deployer stops first).
    missing: Mapping[str, str] = field(default_factory=dict)
    kind: str = ""  # bootstrap, pipeline, cluster, network, service
    role_arn: str = ""  # the role CloudFormation acts as (a CodePipeline action's RoleArn)


USE_PREVIOUS = "{UsePreviousValue}"
# The stack's current value, or LIVE_VALUES on a first deploy: what the old design's
# LiveParameters snapshot and the new deployer's carried parameters both amount to.
CARRIED = "{current value, or the initial one}"


@dataclass(frozen=True)
class Deployment:
    """A templates directory read as what deploying it asks for."""
    mode: str  # "OLD" or "NEW"
    app: str
    pipeline_stack: str
    update_pipeline: dict | None  # the evaluated UpdatePipeline action configuration
    requests: tuple[StackRequest, ...]  # the deploy stage, in order (no pipeline, no prunes)
    services: tuple[str, ...]
    project: str = ""  # topology.yaml's app when `app` is an environment's

    @property
    def bootstrap_stack(self) -> str:
        return f"{self.project or self.app}-bootstrap"


def _pipeline_resource(template: TemplateFile) -> dict:
    for declaration in template.document["Resources"].values():
        if isinstance(declaration, dict) and \
                declaration.get("Type") == "AWS::CodePipeline::Pipeline":
            return declaration
    raise UpgradeInputError("pipeline.yaml: no AWS::CodePipeline::Pipeline resource")


def pipeline_parameter_values(template: TemplateFile, environment: Environment) -> dict[str, str]:
    """The pipeline stack's parameters as the admin gave them: the environment's network
    values, the template Defaults, and a placeholder for the rest (connection, repo)."""
    known = environment.cluster_values()
    values = {}
    for name, declaration in template.parameters.items():
        if name in known:
            values[name] = known[name]
        elif "Default" in (declaration or {}):
            values[name] = str(declaration["Default"])
        else:
            values[name] = f"{{{name}}}"
    return values


def cloudformation_actions(template: TemplateFile, stack_name: str,
                           environment: Environment) -> list[dict]:
    """The pipeline's CloudFormation actions, evaluated, in stage and RunOrder order."""
    evaluator = Evaluator(stack_name,
                          typed_parameters(template, pipeline_parameter_values(template,
                                                                               environment)),
                          template.document.get("Conditions") or {},
                          template.document.get("Mappings") or {})
    stages = evaluator.value(_pipeline_resource(template).get("Properties", {}).get("Stages", []))
    actions = []
    for stage_index, stage in enumerate(stages):
        for action in stage.get("Actions", []):
            type_id = action.get("ActionTypeId", {})
            if type_id.get("Provider") == "CloudFormation":
                actions.append({"stage": stage.get("Name"), "name": action.get("Name"),
                                "order": (stage_index, int(action.get("RunOrder", 1))),
                                **action.get("Configuration", {})})
    return sorted(actions, key=lambda action: action["order"])


def _artifact_file(path: str) -> str:
    """BuildOutput::templates/params/x.json -> params/x.json (relative to templates/)."""
    relative = path.split("::", 1)[-1]
    return relative.split("templates/", 1)[1] if "templates/" in relative else relative


def action_parameters(action: Mapping, files: TemplatesDir) -> dict[str, str]:
    """What a CloudFormation action passes: its TemplateConfiguration file's Parameters,
    then ParameterOverrides on top (DOC_CFN_ACTION). Fn::GetParam values are read from
    artifacts at run time: the image placeholder, and CARRIED for the LiveParameters
    snapshot of the stack's own values."""
    values: dict[str, str] = {}
    configuration = action.get("TemplateConfiguration")
    if configuration:
        relative = _artifact_file(str(configuration))
        service = Path(relative).stem
        if relative.startswith(PARAMS_DIR + "/") and service in files.params:
            values.update(files.params[service]["Parameters"])
        else:
            raise UpgradeInputError(f"{files.path}: {relative}: not found (the action "
                                    f"{action.get('name')} reads it)")
    overrides = action.get("ParameterOverrides")
    if overrides:
        try:
            document = json.loads(overrides) if isinstance(overrides, str) else overrides
        except ValueError:
            raise UpgradeInputError(f"{files.path}: action {action.get('name')}: "
                                    "ParameterOverrides is not JSON") from None
        for name, value in document.items():
            if not isinstance(value, dict):
                values[name] = str(value)
            elif name in CARRIED_PARAMETERS:
                values[name] = CARRIED  # the LiveParameters step's snapshot of the stack
            else:
                values[name] = LIVE_VALUES.get(name, "{artifact value}")
    return values


def _is_self_update(action: Mapping, pipeline_stack: str) -> bool:
    return action.get("StackName") == pipeline_stack or str(
        action.get("TemplatePath", "")).endswith("pipeline.yaml")


def app_name(files: TemplatesDir) -> str:
    for params in files.params.values():
        if params["Tags"].get("app"):
            return params["Tags"]["app"]
    description = str(files.templates["pipeline.yaml"].document.get("Description", ""))
    if ":" in description:
        return description.split(":", 1)[0].strip()
    raise UpgradeInputError(f"{files.path}: cannot tell the app name (no params file has an "
                            "app tag, and pipeline.yaml's Description has no 'app:' prefix)")


def read_deployment(files: TemplatesDir, environment: Environment = Environment()) -> Deployment:
    app = app_name(files)
    project = environment.project or app
    pipeline_stack = f"{project}-pipeline"
    pipeline = files.templates["pipeline.yaml"]
    actions = cloudformation_actions(pipeline, pipeline_stack, environment)
    update = next((a for a in actions if _is_self_update(a, pipeline_stack)), None)
    deploy_actions = [a for a in actions if not _is_self_update(a, pipeline_stack)]
    services = tuple(sorted(files.params))
    if deploy_actions:
        return Deployment("OLD", app, pipeline_stack, update,
                          tuple(_old_requests(deploy_actions, files)), services, project)
    return Deployment("NEW", app, pipeline_stack, update, (), services, project)


def _old_requests(actions: list[dict], files: TemplatesDir) -> Iterable[StackRequest]:
    for action in actions:
        if action.get("ActionMode", "CREATE_UPDATE") not in ("CREATE_UPDATE", "REPLACE_ON_FAILURE"):
            continue
        template_name = _artifact_file(str(action.get("TemplatePath", "")))
        template = files.template(template_name)
        if template is None:
            raise UpgradeInputError(f"{files.path}: {template_name}: not found (the action "
                                    f"{action.get('name')} deploys it)")
        configuration = action.get("TemplateConfiguration")
        service = Path(_artifact_file(str(configuration))).stem if configuration else None
        tags = dict(files.params[service]["Tags"]) if service in files.params else {}
        kind = "service" if service else Path(template_name).stem
        yield StackRequest("deploy", str(action["StackName"]),
                           f"CodePipeline action {action['stage']}/{action['name']}",
                           template, action_parameters(action, files), tags,
                           passes_undeclared=True, kind=kind)


# --- rules ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Finding:
    stack: str
    rule: str
    message: str
    why: str  # the documentation page
    failure: bool = True

    def line(self) -> str:
        label = "predicted failure" if self.failure else "note"
        return f"{label}: {self.stack}: {self.message} ({self.why})"


def rule_parameters(request: StackRequest, existing: DeployedStack | None) -> list[Finding]:
    """Declared, passed, required: what CreateStack/UpdateStack check first."""
    findings = []
    template = request.template
    declared = template.parameters
    if request.passes_undeclared:
        undeclared = sorted(set(request.parameters) - set(declared))
        if undeclared:
            findings.append(Finding(
                request.stack, "parameter-undeclared",
                f"{request.by} passes {', '.join(undeclared)}, which {template.name} does not "
                f"declare: CloudFormation rejects the update (\"Parameters: "
                f"[{', '.join(undeclared)}] do not exist in the template\")", DOC_PARAMETERS))
    for name, reason in sorted(request.missing.items()):
        findings.append(Finding(request.stack, "parameter-required", reason, DOC_PARAMETERS))
    required = [name for name, declaration in declared.items()
                if "Default" not in (declaration or {}) and name not in request.missing]
    unpassed = []
    for name in required:
        value = request.parameters.get(name)
        if value is None:
            unpassed.append(name)
        elif value == USE_PREVIOUS and (existing is None or name not in existing.parameters):
            findings.append(Finding(
                request.stack, "parameter-previous",
                f"{request.by} keeps the previous value of {name}, but "
                + ("the stack does not exist yet" if existing is None
                   else f"the stack has no parameter {name} yet"), DOC_USE_PREVIOUS))
    if unpassed:
        how = (" (a CodePipeline action cannot say UsePreviousValue: it passes only its "
               f"ParameterOverrides and TemplateConfiguration, {DOC_CFN_ACTION})"
               if request.passes_undeclared else "")
        findings.append(Finding(
            request.stack, "parameter-required",
            f"{template.name} requires {', '.join(unpassed)} (no Default) and {request.by} does "
            f"not pass it: CloudFormation rejects the update (\"Parameters: "
            f"[{', '.join(unpassed)}] must have values\"){how}", DOC_PARAMETERS))
    return findings


def rule_own_role(request: StackRequest, existing: DeployedStack | None,
                  new: DeployedStack) -> list[Finding]:
    """An update acting as a role that is a resource of the same stack, which the new
    template deletes: CloudFormation deletes it in the update's cleanup while acting as it.
    Not a predicted failure (AWS documents no outcome); the operator should know."""
    if existing is None or not request.role_arn:
        return []
    prefix = f"{{{request.stack}."
    if not request.role_arn.startswith(prefix):
        return []
    logical = request.role_arn[len(prefix):].split(".", 1)[0]
    if logical in existing.resources and logical not in new.resources:
        return [Finding(request.stack, "own-role-deleted",
                        f"{request.by} acts as {logical}, a resource of this stack that "
                        f"{request.template.name} no longer has: CloudFormation deletes the "
                        "role it is acting as in the update's cleanup, which AWS documents "
                        "no outcome for; read the stack's events after this update",
                        DOC_UPDATE_BEHAVIORS, failure=False)]
    return []


def rule_sizes(stack: str, template: TemplateFile, by_s3: bool) -> list[Finding]:
    findings = []
    if template.size > quotas.TEMPLATE_URL_BYTES.limit:
        findings.append(Finding(
            stack, "size", f"{template.name} is {template.size} bytes, over the "
            f"{quotas.TEMPLATE_URL_BYTES.limit}-byte limit of a template in S3", DOC_QUOTAS))
    elif template.size > quotas.TEMPLATE_BODY_BYTES.limit:
        findings.append(Finding(
            stack, "size", f"{template.name} is {template.size} bytes, over the "
            f"{quotas.TEMPLATE_BODY_BYTES.limit}-byte limit of a TemplateBody: "
            + ("it must go by S3 URL, which the deployer does" if by_s3 else
               "it must go by S3 URL (CodePipeline's action reads it from the artifact store)"),
            DOC_QUOTAS, failure=False))
    return findings


def rule_quotas(stack: DeployedStack) -> list[Finding]:
    """Counts of the template CloudFormation processes (after Fn::ForEach expansion)."""
    counts = {
        quotas.RESOURCES_PER_TEMPLATE: len(stack.resources),
        quotas.OUTPUTS_PER_TEMPLATE: len(stack.template.document.get("Outputs") or {})
        if "AWS::LanguageExtensions" not in stack.template.transforms else None,
        quotas.PARAMETERS_PER_TEMPLATE: len(stack.template.parameters),
    }
    return [Finding(stack.name, "quota",
                    f"{count} {quota.name} in {stack.template.name}, over the limit of "
                    f"{quota.limit}", quota.source)
            for quota, count in counts.items() if count is not None and count > quota.limit]


def rule_replacements(stack: str, old: DeployedStack, new: DeployedStack,
                      replaced: Iterable[str]) -> list[Finding]:
    findings = []
    for logical in replaced:
        before, after = old.resources[logical], new.resources[logical]
        name_property = NAME_PROPERTIES.get(after.type)
        name = after.properties.get(name_property) if name_property else None
        if name is not None and before.properties.get(name_property) == name:
            findings.append(Finding(
                stack, "named-replacement",
                f"{logical} ({after.type}) is replaced ({_changed_create_only(before, after)} "
                f"changes) but keeps its {name_property} {name!r}: \"If you specify a name, "
                "you cannot perform updates that require replacement of this resource\"",
                DOC_NAME_TYPE))
        elif after.type == "AWS::ECS::Service" and after.properties.get(
                "ServiceConnectConfiguration"):
            findings.append(Finding(
                stack, "service-connect-replacement",
                f"{logical} is replaced ({_changed_create_only(before, after)} changes) and "
                "has a ServiceConnectConfiguration: the replacement is created first and its "
                "Service Connect names collide with the old service's", DOC_ECS_SERVICE))
    return findings


def _changed_create_only(before: Resource, after: Resource) -> str:
    return ", ".join(create_only_changes(before, after)) or "a replaced dependency"


def create_only_changes(before: Resource, after: Resource) -> list[str]:
    """The properties that make `after` a replacement of `before` ("Type", "?" if unknown)."""
    if before.type != after.type:
        return ["Type"]
    try:
        create_only = schemas.schema(after.type).create_only
    except schemas.UnknownResourceType:
        return ["?"]
    return [p for p in create_only if before.properties.get(p) != after.properties.get(p)]


def rule_deleted_in_use(stacks: Mapping[str, DeployedStack], existing: DeployedStack | None,
                        new: DeployedStack) -> list[Finding]:
    """An update that deletes a resource another stack was handed as a parameter value
    (the deployer passes outputs on, never exports) and still uses in its resources.
    CloudFormation does not stop it: the other stack's resources lose what they name. For
    the Service Connect TLS infrastructure role that is the services' certificate issuing
    and rotation, which the page has deleted only after the services (DOC_SERVICE_CONNECT_TLS)."""
    if existing is None:
        return []
    findings = []
    for logical in sorted(set(existing.resources) - set(new.resources)):
        markers = (f"{{{existing.name}.{logical}.", f"{{{existing.name}.{logical}#")
        users = []
        for other in stacks.values():
            if other.name == existing.name:
                continue
            handed = [value for value in other.parameters.values()
                      if any(marker in str(value) for marker in markers)]
            used = any(marker in json.dumps(resource.properties, default=str)
                       for resource in other.resources.values() for marker in markers)
            if handed and used:
                users.append(other.name)
        if users:
            resource = existing.resources[logical]
            tls = resource.type == "AWS::IAM::Role" and "Tls" in logical
            findings.append(Finding(
                existing.name, "deleted-in-use",
                f"the update deletes {logical} ({resource.type}) while {', '.join(users)} "
                "still use(s) it"
                + (": ECS can no longer issue or rotate those services' Service Connect TLS "
                   "certificates; the role goes only after the services stop using it"
                   if tls else ""),
                DOC_SERVICE_CONNECT_TLS if tls else DOC_UPDATE_BEHAVIORS))
    return findings


_RULE_FIELDS = ("GroupId", "IpProtocol", "FromPort", "ToPort", "SourceSecurityGroupId",
                "CidrIp", "CidrIpv6", "SourcePrefixListId")


def _ingress_rules(stack: DeployedStack) -> dict[tuple, str]:
    return {tuple(str(r.properties.get(f, "")) for f in _RULE_FIELDS): logical
            for logical, r in stack.resources.items() if r.type == "AWS::EC2::SecurityGroupIngress"}


def rule_duplicate_ingress(stacks: Mapping[str, DeployedStack], existing: DeployedStack | None,
                           new: DeployedStack) -> list[Finding]:
    """A stack that adds an ingress rule another stack already holds: EC2 refuses the
    second with InvalidPermission.Duplicate, so the create or update fails (and rolls
    back). Moving rules between stacks must remove them from the old one first."""
    kept = _ingress_rules(existing) if existing is not None else {}
    held = {rule: other.name for other in stacks.values() if other.name != new.name
            for rule in _ingress_rules(other)}
    findings = []
    for rule, logical in sorted(_ingress_rules(new).items(), key=lambda item: item[1]):
        if rule in held and rule not in kept:
            findings.append(Finding(
                new.name, "duplicate-rule",
                f"{logical} adds a rule that {held[rule]} already holds on the same group "
                "(InvalidPermission.Duplicate): that stack must give it up first",
                DOC_DUPLICATE_RULE))
    return findings


# --- the upgrade ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Replacement:
    logical: str
    type: str
    properties: tuple[str, ...]  # the create-only properties that change (create_only_changes)


@dataclass
class Operation:
    stack: str
    action: str  # create, update, delete, no-op
    by: str
    template: str = ""
    replaced: list[str] = field(default_factory=list)  # "Logical (Type)"
    replacements: list[Replacement] = field(default_factory=list)  # the same, with why
    exports_added: list[str] = field(default_factory=list)
    exports_removed: list[str] = field(default_factory=list)
    exports_changed: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.failure]


@dataclass
class UpgradeReport:
    old_mode: str
    new_mode: str
    operations: list[Operation]
    notes: list[str] = field(default_factory=list)
    # The account's stacks before the upgrade and after it (the approval report's diffs).
    before: dict[str, DeployedStack] = field(default_factory=dict)
    after: dict[str, DeployedStack] = field(default_factory=dict)
    # Alarms and dashboards created, changed, deleted (generator.upgrademonitoring).
    monitoring: list = field(default_factory=list)

    @property
    def failures(self) -> list[Finding]:
        return [f for op in self.operations for f in op.failures]

    def operation(self, stack: str) -> Operation:
        return next(op for op in self.operations if op.stack == stack)

    def resource_changes(self, wanted: Callable[[Resource], bool],
                         describe: Callable[[dict, dict], list[str]],
                         order: Callable[[str, Resource], str] = lambda logical, _: logical
                         ) -> Iterable[tuple[str, str, Resource, str, str]]:
        """(stack, logical id, resource, change, detail) for every `wanted` resource of the
        stacks the upgrade touches, in the order a stack is first touched: deleted (why),
        created (no detail: the caller summarises the resource), replaced (the property
        that forces it, then `describe(before, after)` of the properties) or updated."""
        replacements = {(op.stack, r.logical): r for op in self.operations
                        for r in op.replacements}
        stacks = dict.fromkeys(op.stack for op in self.operations if op.action != "no-op")
        for stack in stacks:
            old, new = self.before.get(stack), self.after.get(stack)
            before = {k: r for k, r in (old.resources if old else {}).items() if wanted(r)}
            after = {k: r for k, r in (new.resources if new else {}).items() if wanted(r)}
            for logical in sorted(set(before) | set(after),
                                  key=lambda k: order(k, after.get(k) or before[k])):
                if logical not in after:
                    yield (stack, logical, before[logical], "deleted",
                           "the stack is deleted" if new is None else "no longer in the template")
                    continue
                resource = after[logical]
                if logical not in before:
                    yield stack, logical, resource, "created", ""
                    continue
                parts = describe(before[logical].properties, resource.properties)
                if resource.generation != before[logical].generation:
                    replacement = replacements.get((stack, logical))
                    why = ", ".join(replacement.properties) if replacement else ""
                    yield stack, logical, resource, "replaced", "; ".join(
                        [f"because {why or 'a replaced dependency'} changes"] + parts)
                elif parts:
                    yield stack, logical, resource, "updated", "; ".join(parts)


class Account:
    """The stacks of one account and region, changed one operation at a time."""

    def __init__(self):
        self.stacks: dict[str, DeployedStack] = {}

    def exports(self, excluding: str | None = None) -> dict[str, str]:
        return {name: value for stack in self.stacks.values() if stack.name != excluding
                for name, value in stack.exports.items()}

    def exporter(self, export: str) -> str | None:
        return next((s.name for s in self.stacks.values() if export in s.exports), None)

    def importers(self, export: str, excluding: str) -> list[str]:
        return sorted(s.name for s in self.stacks.values()
                      if s.name != excluding and export in s.imports)

    def resolve(self, request: StackRequest) -> tuple[dict[str, str], DeployedStack | None]:
        existing = self.stacks.get(request.stack)
        values = {}
        for name, value in request.parameters.items():
            if value == CARRIED:
                values[name] = (existing.parameters[name] if existing is not None
                                and name in existing.parameters else LIVE_VALUES[name])
            elif value == USE_PREVIOUS:
                if existing is not None and name in existing.parameters:
                    values[name] = existing.parameters[name]
            else:
                values[name] = value
        return values, existing

    def apply(self, request: StackRequest, by_s3: bool) -> Operation:
        if request.action == "delete":
            return self._delete(request)
        values, existing = self.resolve(request)
        new, replaced = evaluate_stack(request.stack, request.template, values, request.tags,
                                       self.exports(excluding=request.stack), existing)
        action = "create" if existing is None else "update"
        if existing is not None and existing.template == new.template and \
                existing.parameters == new.parameters and existing.tags == new.tags:
            # Same template, parameters and tags: "No updates are to be performed", and
            # CloudFormation does not read the imports again, so nothing changes.
            operation = Operation(request.stack, "no-op", request.by, request.template.name)
            operation.findings += rule_parameters(request, existing)
            return operation
        operation = Operation(request.stack, action, request.by, request.template.name)
        operation.findings += rule_parameters(request, existing)
        operation.findings += rule_sizes(request.stack, request.template, by_s3)
        operation.findings += rule_quotas(new)
        operation.findings += rule_own_role(request, existing, new)
        operation.findings += rule_deleted_in_use(self.stacks, existing, new)
        operation.findings += rule_duplicate_ingress(self.stacks, existing, new)
        if existing is not None:
            operation.replaced = [f"{logical} ({new.resources[logical].type})"
                                  for logical in replaced]
            operation.replacements = [
                Replacement(logical, new.resources[logical].type, tuple(create_only_changes(
                    existing.resources[logical], new.resources[logical])))
                for logical in replaced]
            operation.findings += rule_replacements(request.stack, existing, new, replaced)
        self._exports(operation, existing, new)
        self.stacks[request.stack] = new
        return operation

    def _exports(self, operation: Operation, existing: DeployedStack | None,
                 new: DeployedStack) -> None:
        before = existing.exports if existing else {}
        operation.exports_added = sorted(set(new.exports) - set(before))
        operation.exports_removed = sorted(set(before) - set(new.exports))
        operation.exports_changed = sorted(name for name in set(before) & set(new.exports)
                                           if before[name] != new.exports[name])
        for name in operation.exports_removed:
            users = self.importers(name, excluding=new.name)
            if users:
                operation.findings.append(Finding(
                    new.name, "export-in-use",
                    f"the update removes export {name}, which {', '.join(users)} still "
                    f"import(s): \"Cannot delete export {name} as it is in use by "
                    f"{users[0]}\"", DOC_EXPORTS))
        for name in operation.exports_changed:
            users = self.importers(name, excluding=new.name)
            if users:
                operation.findings.append(Finding(
                    new.name, "export-in-use",
                    f"the update changes the value of export {name} ({before[name]} -> "
                    f"{new.exports[name]}), which {', '.join(users)} import(s): \"Cannot "
                    f"update export {name} as it is in use by {users[0]}\"", DOC_EXPORTS))
        for name in operation.exports_added:
            owner = self.exporter(name)
            if owner and owner != new.name:
                operation.findings.append(Finding(
                    new.name, "export-duplicate",
                    f"export {name} already exists (exported by {owner}); export names are "
                    "unique per account and Region", DOC_EXPORTS))
        available = self.exports(excluding=new.name)
        for name in sorted(new.imports):
            if name not in available:
                operation.findings.append(Finding(
                    new.name, "import-missing",
                    f"imports {name}, which no stack exports at this point of the deploy "
                    f"(\"No export named {name} found\")", DOC_IMPORT_VALUE))

    def _delete(self, request: StackRequest) -> Operation:
        existing = self.stacks.pop(request.stack)
        operation = Operation(request.stack, "delete", request.by, existing.template.name,
                              exports_removed=sorted(existing.exports))
        for name in operation.exports_removed:
            users = self.importers(name, excluding=request.stack)
            if users:
                operation.findings.append(Finding(
                    request.stack, "export-in-use",
                    f"deleting the stack removes export {name}, which {', '.join(users)} "
                    f"still import(s): \"Export {name} cannot be deleted as it is in use by "
                    f"{users[0]}\"", DOC_EXPORTS))
        return operation


def console_update(account: Account, stack: str, changes: Mapping[str, str],
                   template: TemplateFile | None) -> Operation:
    """An operator's console update of a stack: `changes` set, every other parameter kept
    (UsePreviousValue), with `template` provided (*Replace current template*), or with
    None: *Use current template*, UsePreviousTemplate.

    On a template with a transform, UsePreviousTemplate may not apply the new values
    (DOC_PREVIOUS_TEMPLATE): the model reports it and, pessimistically, leaves the stack
    as it was. A console upload goes through S3, so the size rule is TemplateURL's.
    """
    existing = account.stacks[stack]
    if template is None and existing.template.transforms:
        operation = Operation(stack, "update", "operator (console, Use current template)",
                              existing.template.name)
        operation.findings.append(Finding(
            stack, "console-previous-template",
            f"Use current template (UsePreviousTemplate) on a template with "
            f"{', '.join(existing.template.transforms)}: the new value(s) of "
            f"{', '.join(sorted(changes))} may not apply; use Replace current template with "
            "the deployed file", DOC_PREVIOUS_TEMPLATE))
        return operation
    provided = template if template is not None else existing.template
    values = {name: USE_PREVIOUS for name in existing.parameters if name in provided.parameters}
    values.update(changes)
    by = ("operator (console, Replace current template)" if template is not None
          else "operator (console, Use current template)")
    return account.apply(StackRequest("deploy", stack, by, provided, values, existing.tags),
                         by_s3=True)


BOOTSTRAP_EXPORTS = ("DeployRoleArn", "PermissionsBoundaryArn", "TemplateBucketName")


def assumed_bootstrap(app: str) -> DeployedStack:
    """The bootstrap stack when the templates directory has no bootstrap.yaml: an admin
    created it once with `python -m generator bootstrap`, with the design's exports."""
    name = f"{app}-bootstrap"
    template = TemplateFile("(bootstrap stack, created by an admin)", 0, {"Resources": {}})
    return DeployedStack(name, template, {}, dict(STACK_TAGS, app=app, kind="bootstrap"), {},
                         {f"{name}-{export}": f"{{{name}.{export}#0}}"
                          for export in BOOTSTRAP_EXPORTS}, set())


def call_graph(params: Mapping[str, dict]) -> dict[str, tuple[str, ...]]:
    """Service -> the services its PeerUrls call, in their order: a URL (without its
    optional name= prefix) names a callee when it is that callee's client alias,
    http://<DiscoveryName>.<namespace>:<ContainerPort> (generator.params)."""
    def parameters(name: str) -> dict:
        return params.get(name, {}).get("Parameters", {})

    def alias_of(url: str, callee: str) -> bool:
        theirs = parameters(callee)
        return re.fullmatch(rf"https?://{re.escape(theirs.get('DiscoveryName', callee))}"
                            rf"\.[^:/]+:{theirs.get('ContainerPort', '')}/?", url) is not None

    services = sorted(params)
    graph = {}
    for service in services:
        urls = [url.split("=", 1)[1] if "=" in url.split("://", 1)[0] else url
                for url in parameters(service).get("PeerUrls", "").split(",") if url]
        graph[service] = tuple(callee for url in urls
                               for callee in [next((c for c in services if alias_of(url, c)),
                                                   None)]
                               if callee is not None)
    return graph


class _DeployerModel:
    """The design's deployer (`generator deploy --prune`, design-notes "Deployer order").

    Parameters it passes, only if the template declares them: the params file's values;
    cluster: the network values the operator gave (kept with UsePreviousValue after);
    every stack: AppName, ServiceName, ClusterStackName; service stacks: ImageUri, the
    carried parameters (the stack's value, or LIVE_VALUES on a first deploy; DesiredCount,
    which the deployer reads from the running service, is the same value here), Subnets
    and LoadBalancerSubnets from the cluster stack's parameters, ServiceConnectTlsRoleArn
    from its outputs ("" without one), PermissionsBoundaryArn from the bootstrap stack.
    """

    def __init__(self, files: TemplatesDir, deployment: Deployment, environment: Environment):
        self.files = files
        self.deployment = deployment
        self.environment = environment
        self.app = deployment.app
        self.calls = call_graph(files.params)

    def cluster_stack(self) -> str:
        return f"{self.app}-cluster"

    def request(self, account: Account, kind: str, stack: str, template: TemplateFile,
                service: str | None) -> StackRequest:
        declared = template.parameters
        cluster = account.stacks.get(self.cluster_stack())
        params_file = self.files.params.get(service, {}) if kind == "service" else {}
        values: dict[str, str] = {}
        deploy_values = {"AppName": self.app, "ServiceName": service or "",
                         "ClusterStackName": self.cluster_stack(), "ImageUri": IMAGE}
        if cluster is not None:
            deploy_values["Subnets"] = cluster.parameters.get("PrivateSubnetIds", "")
            deploy_values["LoadBalancerSubnets"] = cluster.parameters.get("PublicSubnetIds", "")
            deploy_values["VpcId"] = cluster.parameters.get("VpcId", "")
            deploy_values["ServiceConnectTlsRoleArn"] = cluster.outputs.get(
                "ServiceConnectTlsRoleArn", "")
        boundary = account.exports().get(
            f"{self.deployment.bootstrap_stack}-PermissionsBoundaryArn")
        if boundary is not None:
            deploy_values["PermissionsBoundaryArn"] = boundary
        if kind == "cluster":
            deploy_values.update(self.environment.cluster_values())
            deploy_values[TLS_ROLE_WANTED] = self.tls_role_wanted(account, template)
        if kind == "ingress":
            deploy_values.update(self.ingress_values(service))
        for name in declared:
            if kind == "service" and name in CARRIED_PARAMETERS:
                values[name] = CARRIED
            elif name in params_file.get("Parameters", {}):
                values[name] = params_file["Parameters"][name]
            elif name in deploy_values:
                values[name] = deploy_values[name]
        missing = {}
        undeclared = sorted(set(params_file.get("Parameters", {})) - set(declared))
        if undeclared:
            missing["(params file)"] = (
                f"params/{service}.json has {', '.join(undeclared)}, which {template.name} "
                "does not declare: the deployer stops before any stack changes "
                "(CloudFormation would reject them too)")
        tags = dict(STACK_TAGS, app=self.app, kind=kind)
        if service:
            tags["service"] = service
        tags.update(params_file.get("Tags", {}))
        return StackRequest("deploy", stack, "deployer", template, values, tags,
                            missing=missing, kind=kind)

    def ingress_values(self, service: str) -> dict[str, str]:
        """ContainerPort from the service's params file; Callers: every service whose
        PeerUrls name this one's client alias, in topology order, or "none"; Callees:
        "<port>:<name>" of each service its own PeerUrls name, in their order, or "1:none";
        as the deployer passes them (generator.params)."""
        def port(name: str) -> str:
            return self.files.params.get(name, {}).get("Parameters", {}).get("ContainerPort", "")

        callers = [caller for caller in self.deployment.services
                   if service in self.calls[caller]]
        callees = [f"{port(callee)}:{callee}" for callee in self.calls.get(service, ())]
        own = self.files.params.get(service, {}).get("Parameters", {})
        alarm_values = {name: own[name] for name in INGRESS_ALARM_PARAMETERS if name in own}
        return {"ContainerPort": port(service), "Callers": ",".join(callers) or "none",
                "Callees": ",".join(callees) or "1:none",
                "DiscoveryName": own.get("DiscoveryName", service), **alarm_values}

    def tls_role_wanted(self, account: Account, template: TemplateFile) -> str:
        """The deployer's ServiceConnectTlsRoleWanted: the template's Default (what the
        topology says), or "true" while a service stack of the app still passes a CA."""
        default = str((template.parameters.get(TLS_ROLE_WANTED) or {}).get("Default", ""))
        if default == "true" or any(
                stack.tags.get("app") == self.app and stack.tags.get("kind") == "service"
                and stack.parameters.get(TLS_CA_PARAMETER) for stack in account.stacks.values()):
            return "true"
        return "false"

    def requests(self, account: Account) -> Iterable[StackRequest]:
        """Generated lazily: each request reads the account as the steps before left it."""
        services = self.deployment.services
        removed = sorted(
            stack.tags.get("service") for stack in list(account.stacks.values())
            if stack.tags.get("app") == self.app and stack.tags.get("kind") == "service"
            and stack.tags.get("service") not in services)
        for service in removed:  # prune, phase 1
            yield StackRequest("delete", f"{self.app}-{service}", "deployer (prune, phase 1)")
        removed_ingress = sorted(
            stack.name for stack in list(account.stacks.values())
            if stack.tags.get("app") == self.app and stack.tags.get("kind") == "ingress"
            and stack.tags.get("service") not in services)
        for stack in removed_ingress:
            yield StackRequest("delete", stack, "deployer (prune, phase 1)")
        yield self.request(account, "cluster", self.cluster_stack(),
                           self.files.templates["cluster.yaml"], None)
        network = self.files.template("network.yaml")
        ingress = self.files.template("ingress.yaml")
        # With ingress stacks the deployer creates missing network stacks first and
        # updates the existing ones after the ingress stacks (generator.ops.deploy).
        existing = [service for service in services if ingress is not None
                    and f"{self.app}-{service}-network" in account.stacks]
        if network is not None:
            for service in services:
                if service not in existing:
                    yield self.request(account, "network", f"{self.app}-{service}-network",
                                       network, service)
        # A service stack that still holds the caller rules (an earlier version's Callers
        # parameter) gives them up before its ingress stack adds them (generator.ops.deploy).
        moving = {service for service in services if ingress is not None
                  and "Callers" in getattr(account.stacks.get(f"{self.app}-{service}"),
                                           "parameters", {})}
        if ingress is not None:
            for service in services:
                if service not in moving:
                    yield self.request(account, "ingress", f"{self.app}-{service}-ingress",
                                       ingress, service)
        if network is not None:
            for service in existing:
                yield self.request(account, "network", f"{self.app}-{service}-network",
                                   network, service)
        for service in services:
            yield self.request(account, "service", f"{self.app}-{service}",
                               self.files.templates["service.yaml"], service)
            if service in moving:
                request = self.request(account, "ingress", f"{self.app}-{service}-ingress",
                                       ingress, service)
                yield StackRequest("deploy", request.stack,
                                   "deployer (after its service stack gave up the rules)",
                                   request.template, request.parameters, request.tags,
                                   missing=request.missing, kind="ingress")
        removed_networks = sorted(
            stack.name for stack in list(account.stacks.values())
            if stack.tags.get("app") == self.app and stack.tags.get("kind") == "network"
            and stack.tags.get("service") not in services)
        for stack in removed_networks:  # prune, phase 2
            yield StackRequest("delete", stack, "deployer (prune, phase 2)")
        cluster_template = self.files.templates["cluster.yaml"]
        cluster = account.stacks.get(self.cluster_stack())
        if (TLS_ROLE_WANTED in cluster_template.parameters and cluster is not None
                and cluster.parameters.get(TLS_ROLE_WANTED) == "true"
                and self.tls_role_wanted(account, cluster_template) == "false"):
            request = self.request(account, "cluster", self.cluster_stack(),
                                   cluster_template, None)
            yield StackRequest("deploy", request.stack,
                               "deployer (after the services: the TLS role goes)",
                               request.template, request.parameters, request.tags,
                               missing=request.missing, kind="cluster")


def _pipeline_request(files: TemplatesDir, deployment: Deployment, environment: Environment,
                      by_action: dict | None, old_files: TemplatesDir | None) -> StackRequest:
    """The pipeline stack's update: the OLD definition's UpdatePipeline action, with its
    configuration, deploying the NEW pipeline.yaml (DOC_PIPELINE_RUNS)."""
    template = files.templates["pipeline.yaml"]
    if by_action is None:  # a first deploy: the bootstrap command, with the admin's values
        return StackRequest("deploy", deployment.pipeline_stack, "the bootstrap command",
                            template, pipeline_parameter_values(template, environment),
                            kind="pipeline")
    # The action's TemplateConfiguration file comes from the NEW build's artifact.
    values = action_parameters(by_action, files)
    return StackRequest("deploy", deployment.pipeline_stack,
                        "the UpdatePipeline action of the running (old) pipeline definition",
                        template, values, passes_undeclared=True, kind="pipeline",
                        role_arn=str(by_action.get("RoleArn", "")))


def deploy_from_scratch(files: TemplatesDir, environment: Environment = Environment()
                        ) -> Account:
    """The account after a templates directory was deployed on its own: the state an
    upgrade starts from."""
    account = Account()
    deployment = read_deployment(files, environment)
    _ensure_bootstrap(account, files, deployment)
    for request in _all_requests(files, deployment, environment, account, None, None):
        account.apply(request, by_s3=deployment.mode == "NEW")
    return account


def _ensure_bootstrap(account: Account, files: TemplatesDir, deployment: Deployment) -> bool:
    """The design's bootstrap stack exists before its pipeline runs; True if assumed here."""
    stack = deployment.bootstrap_stack
    if deployment.mode != "NEW" or files.template("bootstrap.yaml") is not None \
            or stack in account.stacks:
        return False
    account.stacks[stack] = assumed_bootstrap(deployment.project or deployment.app)
    return True


def _all_requests(files: TemplatesDir, deployment: Deployment, environment: Environment,
                  account: Account, old: Deployment | None,
                  old_files: TemplatesDir | None) -> Iterable[StackRequest]:
    bootstrap = files.template("bootstrap.yaml")
    if bootstrap is not None:
        stack = deployment.bootstrap_stack
        existing = account.stacks.get(stack)
        if existing is None or existing.template != bootstrap:
            values = {n: deployment.project or deployment.app
                      for n in bootstrap.parameters if n == "AppName"}
            yield StackRequest("deploy", stack, "an admin (python -m generator bootstrap), "
                               "before the pipeline runs", bootstrap, values, kind="bootstrap")
    yield _pipeline_request(files, deployment, environment,
                            old.update_pipeline if old else None, old_files)
    if deployment.mode == "OLD":
        yield from deployment.requests
    else:
        yield from _DeployerModel(files, deployment, environment).requests(account)


def plan_upgrade(old_dir: str | Path | TemplatesDir, new_dir: str | Path | TemplatesDir,
                 environment: Environment = Environment(),
                 new_environment: Environment | None = None) -> UpgradeReport:
    """Every operation deploying `new_dir` over a deployed `old_dir` performs, in order.

    `new_environment` is what the operator passes this time (a new VPC or subnets);
    the default is the same environment. Later operations assume the earlier ones
    succeeded, so one run shows every failure the change would meet.
    """
    name = (new_environment or environment).name
    old_files = (old_dir if isinstance(old_dir, TemplatesDir)
                 else read_templates_dir(old_dir, environment.name))
    new_files = (new_dir if isinstance(new_dir, TemplatesDir)
                 else read_templates_dir(new_dir, name))
    old = read_deployment(old_files, environment)
    new = read_deployment(new_files, new_environment or environment)
    account = deploy_from_scratch(old_files, environment)
    report = UpgradeReport(old.mode, new.mode, [], before=dict(account.stacks))
    if _ensure_bootstrap(account, new_files, new):
        report.notes.append(f"{new.bootstrap_stack} is assumed to exist with the exports "
                            f"{', '.join(BOOTSTRAP_EXPORTS)} (the templates directory has no "
                            "bootstrap.yaml; an admin creates it with `python -m generator "
                            "bootstrap` before the pipeline runs)")
    if old.app != new.app:
        raise UpgradeInputError(f"the app changes from {old.app} to {new.app}: that is a "
                                "new deployment, not an upgrade")
    if old.update_pipeline is None:
        report.notes.append("the old pipeline has no UpdatePipeline action: the pipeline "
                            "stack is deployed by the bootstrap command")
    for request in _all_requests(new_files, new, new_environment or environment, account,
                                 old, old_files):
        report.operations.append(account.apply(request, by_s3=new.mode == "NEW"))
    report.after = dict(account.stacks)
    from generator import upgrademonitoring

    def own(dashboards: Mapping[str, str]) -> dict[str, str]:
        """This deployment's dashboards (<app>, <app>_<n>): another environment's are not
        what this upgrade changes."""
        if not (new_environment or environment).name:
            return dict(dashboards)
        return {name: text for name, text in dashboards.items()
                if name == new.app or name.startswith(f"{new.app}_")}

    report.monitoring = [*upgrademonitoring.alarm_changes(report),
                         *upgrademonitoring.dashboard_changes(own(old_files.dashboards),
                                                              own(new_files.dashboards))]
    if new.mode == "OLD":
        kept = sorted(set(account.stacks) - {op.stack for op in report.operations})
        if kept:
            report.notes.append("the old design never deletes a stack: "
                                f"{', '.join(kept)} stay(s) as they were")
    return report


def format_report(report: UpgradeReport) -> str:
    lines = []
    for op in report.operations:
        template = f" ({op.template})" if op.template else ""
        lines.append(f"{op.action:<7} {op.stack}{template}  by {op.by}")
    for op in report.operations:
        for replaced in op.replaced:
            lines.append(f"replaced: {op.stack}: {replaced}")
    for op in report.operations:
        for verb, names in (("added", op.exports_added), ("removed", op.exports_removed),
                            ("changed", op.exports_changed)):
            for name in names:
                lines.append(f"export {verb}: {name} ({op.stack})")
    lines += [change.line() for change in report.monitoring]
    for note in report.notes:
        lines.append(f"note: {note}")
    for op in report.operations:
        lines += [finding.line() for finding in op.findings if not finding.failure]
    failures = report.failures
    lines += [finding.line() for finding in failures]
    if failures:
        lines.append(f"check-upgrade: {len(failures)} predicted failure(s)")
    else:
        lines.append(f"check-upgrade: OK ({len(report.operations)} stack operations)")
    return "\n".join(lines) + "\n"


# --- where the old templates come from ---------------------------------------------------

def templates_at(ref: str, destination: Path, prefix: str = "templates",
                 repository: Path | None = None) -> Path:
    """`git show REF:templates/...` for every file under templates/ at REF, written into
    `destination` (the only place this module runs a process: git, read-only)."""
    import subprocess

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=repository, capture_output=True)

    prefix = prefix.strip("/")
    if git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode != 0:
        raise UpgradeInputError(f"{ref}: neither a directory nor a commit of this git "
                                "repository")
    listing = git("ls-tree", "-r", "--name-only", ref, "--", f"{prefix}/")
    names = [n for n in listing.stdout.decode("utf-8").splitlines() if n]
    if listing.returncode != 0 or not names:
        raise UpgradeInputError(f"{ref}: has no {prefix}/ directory")
    for name in names:
        shown = git("show", f"{ref}:{name}")
        if shown.returncode != 0:
            raise UpgradeInputError(f"{ref}:{name}: cannot read it from git")
        target = destination / Path(name).relative_to(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(shown.stdout)
    return destination


def plan_from(source: str, new_dir: str | Path, environment: Environment = Environment()
              ) -> tuple[UpgradeReport, TemplatesDir, TemplatesDir]:
    """`check-upgrade --from SOURCE`: the report and the two directories it compared.
    SOURCE is a templates directory, or a git ref whose templates/ is read; `environment`
    names the environment whose params/<name>/ are read, and its network."""
    import tempfile

    new_path = Path(new_dir)
    if environment.name and not (new_path / PARAMS_DIR / environment.name).is_dir():
        raise UpgradeInputError(f"{new_path / PARAMS_DIR / environment.name}: not found; run "
                                "`python -m generator generate` first")
    if Path(source).is_dir():
        old_files = read_templates_dir(source, environment.name)
    else:
        prefix = new_path.as_posix() if not new_path.is_absolute() else "templates"
        with tempfile.TemporaryDirectory(prefix="check-upgrade-") as temporary:
            old_files = read_templates_dir(templates_at(source, Path(temporary), prefix),
                                           environment.name)
    new_files = read_templates_dir(new_path, environment.name)
    return plan_upgrade(old_files, new_files, environment), old_files, new_files


def check_upgrade(source: str, new_dir: str | Path,
                  environment: Environment = Environment()) -> tuple[str, int]:
    """`check-upgrade --from SOURCE`: the report's text and the number of failures."""
    report, _, _ = plan_from(source, new_dir, environment)
    return format_report(report), len(report.failures)
