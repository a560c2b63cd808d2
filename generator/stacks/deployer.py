"""The cross-account deployer role of bootstrap.yaml (issue 16), and what separates environments.

With `environments:` in topology.yaml, every environment's account gets the same
bootstrap.yaml (one template, `<app>-bootstrap` in each account). An environment in
another account than the pipeline's is deployed by the pipeline's deploy step assuming
`<app>-environment-deployer` (names.environment_deployer_role) there; `python -m generator
bootstrap --env NAME --trust <pipeline account>` creates it, by setting the stack's
TrustedAccount parameter. With TrustedAccount empty (its default) the role does not exist.

Trust: the trusted account's root as Principal, narrowed by aws:PrincipalArn to the deploy
step role of that account's pipeline stack (pipeline.iam.DEPLOY_STEP_ROLE, path /<app>/,
named by CloudFormation <stack>-<logical id>-<random>, hence ArnLike with a trailing *).
A trust policy cannot name the role's ARN itself: CloudFormation generates its name, and
IAM refuses a Principal that does not exist yet and breaks the trust when that role is
recreated (it stores the principal's unique id),
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html;
aws:PrincipalArn is the role's ARN for a role session, and is present in every signed
request, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn.
The pattern assumes the generated name keeps `<app>-pipeline-DeployStepRole-` whole:
CloudFormation shortens a generated name that would exceed IAM's 64 characters (observed,
not documented by AWS), which an app of at most 26 characters avoids (names.py's
<app>-pipeline + 16 + a 13-character suffix). A fixed RoleName on the deploy step role
would remove that limit; it is the pipeline's to set.
The trusted account must still allow sts:AssumeRole on this role in the deploy step's own
policy (cross-account access needs both sides,
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html):
that grant is the pipeline's.

Permissions: what the deploy step does in its own account (generator.awsfacts.operations
DEPLOY_OPERATIONS, DEPLOY_UNNAMED_OPERATIONS, DEPLOY_TLS_OPERATIONS: the facts
pipeline.iam derives the deploy step role from; tests/iam/test_iam_environment_deployer.py
checks both roles grant the same operations), scoped to this account's environment stacks
(`<app>-<env>-*`), this stack's template bucket and passing this stack's deploy role to
CloudFormation. It carries the permissions boundary, as the deploy step role does, so the
boundary's tag conditions on stacks apply to it too; the deploy role may not change it
(bootstrap.deny_statements).

What separates staging from production (issue 16, acceptance): the account. Because one
bootstrap.yaml serves every account, the boundary and the deploy role in the production
account allow the names of every environment (`shop-staging-*` and `shop-production-*`);
there are no staging resources in the production account to reach, and no statement here
names another account: every ARN is built on ${AWS::AccountId} (tested). A topology
that puts two environments in one account shares that account's deploy role between
them, as it shares the account.
"""
from __future__ import annotations

from awacs.aws import (
    Action, Allow, ArnLike, Condition, Deny, PolicyDocument, Principal, Statement,
    StringEquals,
)
from awacs.sts import AssumeRole
from troposphere import (
    Equals, GetAtt, Not, Output, Parameter, Ref, Sub, Template, iam,
)

from generator import names
from generator.awsfacts import operations
from generator.topology import Topology, TopologyError
from pipeline.iam import BUILD_ROLE, DEPLOY_STEP_ROLE, VERIFY_ROLE, dashboard_arns

TRUSTED_ACCOUNT = "TrustedAccount"
HAS_TRUSTED_ACCOUNT = "HasTrustedAccount"
DEPLOYER_ROLE = "EnvironmentDeployerRole"
DEPLOYER_ROLE_OUTPUT = "EnvironmentDeployerRoleArn"
READER_ROLE = "EnvironmentReaderRole"
# https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-identifiers.html
ACCOUNT_PATTERN = "^$|^[0-9]{12}$"
_READ_VERBS = ("Describe", "Get", "List")
# "Role names: 64 characters" (IAM quotas, character limits,
# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
ROLE_NAME_CHARS = 64


def wanted(topology: Topology) -> bool:
    """Only a topology with environments renders the parameter and the role: without them
    everything deploys into the pipeline's own account and nothing assumes a role across
    accounts, and the committed bootstrap.yaml stays as it is. With them it is rendered
    whatever the accounts are: topology.yaml does not name the pipeline's account, and the
    one template must serve every account (the parameter left empty creates nothing)."""
    return bool(topology.environments)


def trusted_principal_pattern(topology: Topology, step_role: str = DEPLOY_STEP_ROLE) -> Sub:
    """The ARN of one of the pipeline account's step roles, whatever CloudFormation's suffix."""
    project = topology.project_app
    return Sub("arn:${AWS::Partition}:iam::${%s}:role%s%s-%s-*" % (
        TRUSTED_ACCOUNT, names.role_path(project), topology.pipeline_stack_name, step_role))


def trust_policy(topology: Topology, step_roles: tuple[str, ...] = (DEPLOY_STEP_ROLE,),
                 sid: str = "OnlyThePipelinesDeployStep") -> PolicyDocument:
    patterns = [trusted_principal_pattern(topology, role) for role in step_roles]
    return PolicyDocument(Version="2012-10-17", Statement=[Statement(
        Sid=sid,
        Effect=Allow,
        Principal=Principal("AWS", Sub("arn:${AWS::Partition}:iam::${%s}:root"
                                       % TRUSTED_ACCOUNT)),
        Action=[AssumeRole],
        Condition=Condition(ArnLike("aws:PrincipalArn",
                                    patterns[0] if len(patterns) == 1 else patterns)),
    )])


def _arn(service: str, resource: str) -> Sub:
    return Sub("arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"
               % (service, resource))


def _actions(names_: list[str] | set[str]) -> list[Action]:
    return [Action(*name.split(":", 1)) for name in sorted(names_, key=str.lower)]


def operation_scopes(topology: Topology, template_bucket: str) -> dict[str, list]:
    """IAM prefix -> what the deploy step's operations of that prefix touch in this account
    (pipeline.iam._operation_scopes, with this stack's own bucket instead of its exports,
    and each environment's stacks instead of every `<app>-*`)."""
    deployments = topology.deployments
    return {
        "cloudformation": [_arn("cloudformation", f"stack/{d.app}-*/*") for d in deployments],
        "ecs": [_arn("ecs", f"service/{d.cluster_stack_name}/*") for d in deployments],
        "s3": [Sub("${%s.Arn}/*" % template_bucket)],
        # The bake's DescribeAlarms, by name (generator.ops.bake), and the dashboards.
        "cloudwatch": ([_arn("cloudwatch", f"alarm:{d.app}-*") for d in deployments]
                       + dashboard_arns(topology)),
    }


def operation_statements(topology: Topology, template_bucket: str) -> list[Statement]:
    """One Allow per IAM prefix of DEPLOY_OPERATIONS, plus the unnamed ones on "*"."""
    unnamed = operations.DEPLOY_UNNAMED_OPERATIONS
    scopes = operation_scopes(topology, template_bucket)
    grouped: dict[str, set[str]] = {}
    for action in operations.iam_actions(operations.DEPLOY_OPERATIONS - unnamed):
        grouped.setdefault(action.split(":", 1)[0], set()).add(action)
    unknown = sorted(set(grouped) - set(scopes))
    if unknown:
        raise ValueError(f"no resource scope for the {', '.join(unknown)} operations; "
                         "add one to generator.stacks.deployer.operation_scopes")
    result = [Statement(Sid="DeployListsStacks", Effect=Allow,
                        Action=_actions(operations.iam_actions(unnamed)), Resource=["*"])]
    result += [Statement(Sid="Deploy" + "".join(p.capitalize() for p in prefix.split("-")),
                         Effect=Allow, Action=_actions(actions), Resource=scopes[prefix])
               for prefix, actions in sorted(grouped.items())]
    authorities = sorted({d.service_connect_tls.private_ca_arn for d in topology.deployments
                          if d.service_connect_tls is not None})
    if authorities:
        # The preflight reads the topology's Service Connect TLS CA, that CA only
        # (pipeline.iam._tls_preflight_statements).
        result.append(Statement(Sid="DeployReadsTheTlsAuthority", Effect=Allow,
                                Action=_actions(operations.iam_actions(
                                    operations.DEPLOY_TLS_OPERATIONS)),
                                Resource=authorities))
    return result


def statements(topology: Topology, deploy_role: str, template_bucket: str) -> list[Statement]:
    """The deployer role's policy; `deploy_role` and `template_bucket` are logical ids of
    bootstrap.yaml (generator.stacks.bootstrap)."""
    cloudformation_writes = [a for a in operations.iam_actions(operations.DEPLOY_OPERATIONS)
                             if a.startswith("cloudformation:")
                             and not a.split(":", 1)[1].startswith(_READ_VERBS)]
    return [
        *operation_statements(topology, template_bucket),
        Statement(
            # The deploy step's baseline (deploy.buildspec.yml: `aws s3 sync --delete` into
            # deployed/, read by the next check-upgrade), kept in this account's bucket.
            Sid="DeployKeepsTheBaseline", Effect=Allow,
            Action=[Action("s3", "DeleteObject")],
            Resource=[Sub("${%s.Arn}/deployed/*" % template_bucket)]),
        Statement(Sid="DeployListsTheTemplateBucket", Effect=Allow,
                  Action=[Action("s3", "ListBucket")],
                  Resource=[GetAtt(template_bucket, "Arn")]),
        Statement(
            # The change sets name it as RoleARN, so CloudFormation runs them as it.
            Sid="PassOnlyTheDeployRoleToCloudFormation", Effect=Allow,
            Action=[Action("iam", "PassRole")],
            Resource=[GetAtt(deploy_role, "Arn")],
            Condition=Condition(StringEquals("iam:PassedToService",
                                             "cloudformation.amazonaws.com"))),
        Statement(
            # ingress.yaml's AWS::LanguageExtensions transform
            # (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/control-access-with-iam.html).
            Sid="ChangeSetsWithTheLanguageExtensions", Effect=Allow,
            Action=[Action("cloudformation", "CreateChangeSet")],
            Resource=[Sub("arn:${AWS::Partition}:cloudformation:${AWS::Region}:aws:"
                          "transform/LanguageExtensions")]),
        Statement(
            # Never this stack (the deploy role, the boundary, this role) nor a pipeline
            # stack of the same name, whatever an environment is called.
            Sid="NeverChangeTheBootstrapOrPipelineStack", Effect=Deny,
            Action=_actions(cloudformation_writes),
            Resource=[_arn("cloudformation", "stack/${AWS::StackName}/*"),
                      _arn("cloudformation", f"stack/{topology.pipeline_stack_name}/*")]),
    ]


def role_arn(topology: Topology) -> Sub:
    """Its ARN in this account, known before it exists (it is named)."""
    project = topology.project_app
    return Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role%s%s"
               % (names.role_path(project), names.environment_deployer_role(project)))


def _environment_role(topology: Topology, logical_id: str, name: str, description: str,
                      trust: PolicyDocument, boundary: str, policy_name: str,
                      statements_: list[Statement]) -> iam.Role:
    """A named role of an environment's account for one of the pipeline account's steps,
    created only with TrustedAccount, inside the permissions boundary."""
    return iam.Role(
        logical_id,
        Condition=HAS_TRUSTED_ACCOUNT,
        RoleName=name,
        Path=names.role_path(topology.project_app),
        Description=Sub(description),
        AssumeRolePolicyDocument=trust,
        PermissionsBoundary=Ref(boundary),
        Policies=[iam.Policy(
            PolicyName=policy_name,
            PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements_),
        )],
    )


def role(topology: Topology, deploy_role: str, template_bucket: str,
         boundary: str) -> iam.Role:
    project = topology.project_app
    return _environment_role(
        topology, DEPLOYER_ROLE, names.environment_deployer_role(project),
        "Deploys the %s environments of this account for the pipeline's deploy step in "
        "account ${%s}" % (project, TRUSTED_ACCOUNT),
        trust_policy(topology), boundary, "environmentDeployer",
        statements(topology, deploy_role, template_bucket))


def reader_statements(topology: Topology) -> list[Statement]:
    """What `verify` reads (VERIFY_OPERATIONS) and what check-upgrade asks without a
    baseline (DescribeStacks of the cluster stack), in this account's environments only."""
    deployments = topology.deployments
    scopes = {
        "cloudformation": [_arn("cloudformation", f"stack/{d.app}-*/*") for d in deployments],
        "ecs": [_arn("ecs", f"service/{d.cluster_stack_name}/*") for d in deployments],
        # servicediscovery:DiscoverInstances has no resource-level permissions (Service
        # Authorization Reference, AWS Cloud Map).
        "servicediscovery": ["*"],
        # `status` reads each environment's alarms by name (<app>-<env>-...; the alarm
        # resource type of the Service Authorization Reference, Amazon CloudWatch).
        "cloudwatch": [_arn("cloudwatch", f"alarm:{d.app}-*") for d in deployments],
    }
    grouped: dict[str, set[str]] = {}
    for action in operations.iam_actions(operations.VERIFY_OPERATIONS
                                         - operations.VERIFY_UNNAMED_OPERATIONS):
        grouped.setdefault(action.split(":", 1)[0], set()).add(action)
    unknown = sorted(set(grouped) - set(scopes))
    if unknown:
        raise ValueError(f"no resource scope for the {', '.join(unknown)} operations; "
                         "add one to generator.stacks.deployer.reader_statements")
    return [Statement(Sid="Read" + "".join(p.capitalize() for p in prefix.split("-")),
                      Effect=Allow, Action=_actions(actions), Resource=scopes[prefix])
            for prefix, actions in sorted(grouped.items())] + [
        # GetMetricData: a metric is not an IAM resource (operations.VERIFY_UNNAMED_OPERATIONS).
        Statement(Sid="ReadMetrics", Effect=Allow, Resource=["*"], Action=_actions(
            operations.iam_actions(operations.VERIFY_UNNAMED_OPERATIONS)))]




def reader_role(topology: Topology, boundary: str) -> iam.Role:
    """Read-only, for the pipeline's Build (check-upgrade before the environment's first
    deploy) and Verify steps: neither may assume the deployer role."""
    project = topology.project_app
    return _environment_role(
        topology, READER_ROLE, names.environment_reader_role(project),
        "Reads the %s environments of this account for the pipeline's build and verify "
        "steps in account ${%s}" % (project, TRUSTED_ACCOUNT),
        trust_policy(topology, (BUILD_ROLE, VERIFY_ROLE),
                     sid="OnlyThePipelinesBuildAndVerifySteps"),
        boundary, "environmentReader", reader_statements(topology))


def add_to(template: Template, topology: Topology, deploy_role: str, template_bucket: str,
           boundary: str) -> None:
    """The parameter, its condition, the role and its output, when `wanted`."""
    if not wanted(topology):
        return
    name = max(names.environment_deployer_role(topology.project_app),
               names.environment_reader_role(topology.project_app), key=len)
    if len(name) > ROLE_NAME_CHARS:
        raise TopologyError(
            f"{topology.source}: app: {topology.project_app!r} is too long for a topology with "
            f"environments: the environment role {name} would have {len(name)} "
            f"characters, and IAM role names have at most {ROLE_NAME_CHARS}")
    template.add_parameter(Parameter(
        TRUSTED_ACCOUNT, Type="String", Default="", AllowedPattern=ACCOUNT_PATTERN,
        Description="The pipeline's account, whose deploy step may deploy this account's "
                    "environments (`bootstrap --env NAME --trust ACCOUNT`); empty: no "
                    "cross-account deployer role",
        ConstraintDescription="a 12-digit AWS account ID, or empty"))
    template.add_condition(HAS_TRUSTED_ACCOUNT, Not(Equals(Ref(TRUSTED_ACCOUNT), "")))
    template.add_resource(role(topology, deploy_role, template_bucket, boundary))
    template.add_resource(reader_role(topology, boundary))
    template.add_output(Output(
        DEPLOYER_ROLE_OUTPUT, Condition=HAS_TRUSTED_ACCOUNT,
        Value=GetAtt(DEPLOYER_ROLE, "Arn"),
        Description="Role the trusted account's pipeline deploy step assumes to deploy here"))
