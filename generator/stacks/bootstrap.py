"""templates/bootstrap.yaml: what a human admin creates once per account, before the pipeline.

- PermissionsBoundary (`<app>-permissions-boundary-<stack id piece>`): the ceiling of every role the app
  stacks create. It allows what the task, execution and pipeline roles need and no IAM
  role management, so a role inside it cannot create or widen roles.
- CloudFormationDeployRole: the role CloudFormation runs the cluster, network, service and
  pipeline stacks as. Its actions are derived, at generate time, from the resource-provider
  schemas of every resource type in those templates (generator.awsfacts.permissions),
  minus the short documented EXCLUDED list; it may create or change IAM roles only when
  they carry the boundary. It lives here, not in the pipeline stack, so that updating or
  deleting the pipeline stack never touches the role those operations run as, and it
  cannot modify itself (explicit Deny on this stack's roles, buckets and on the boundary).
- TemplateBucket: where `deploy` uploads templates above the 51,200-byte TemplateBody limit.
- With `environments:`, the environment deployer role and its TrustedAccount parameter
  (generator.stacks.deployer).

One bootstrap.yaml serves every account of the topology: what the boundary and the deploy
role allow is scoped to every deployment's app (Topology.deployments: topology.yaml's app,
or each environment's `<app>-<env>`), the shared pipeline and this stack keep the project
app's names (generator.stacks.deployer's docstring says what separates the environments).

Over 400 lines: the boundary, the deploy role's derived statements and their packing are
one policy story whose pieces refer to each other's logical ids and scopes; the deploy
role's generated-id scopes (deployscope) and the environment deployer (deployer) are apart.

The deploy role's policy is split into managed policies of at most 6,144 characters each
(IAM quotas, generator.awsfacts.quotas), packed by service prefix.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Mapping

from awacs.aws import (
    Action, Allow, Bool, Condition, Deny, PolicyDocument, Principal, Statement,
    ForAllValuesStringLike, Null, StringEquals, StringLike,
)
from awacs.aws import Principal as AwsPrincipal
from awacs.sts import AssumeRole
from troposphere import (
    Export, GetAtt, Join, Output, Ref, Sub, Template, encode_to_dict, iam, s3,
)

from generator import names
from generator.awsfacts import operations, permissions, quotas
from generator.stacks import deployer, deployscope
from generator.stacks.cluster import TLS_MANAGED_POLICY_ACTIONS
from generator.topology import Topology, TopologyError

PERMISSIONS_BOUNDARY = "PermissionsBoundary"
DEPLOY_ROLE = "CloudFormationDeployRole"
DEPLOY_POLICY_PREFIX = "CloudFormationDeployPolicy"
TEMPLATE_BUCKET = "TemplateBucket"
TEMPLATE_BUCKET_POLICY = "TemplateBucketPolicy"
TEMPLATE_RETENTION_DAYS = 30
# Key prefixes in the template bucket: what `deploy` uploads, and the baseline the Deploy
# stage keeps for the next Build's check-upgrade (buildspec.yml, pipeline.iam).
UPLOAD_PREFIX = "templates/"
BASELINE_PREFIX = "deployed/"

# The export names other stacks import (design notes: `<app>-bootstrap-<Output>`).
# Output keys and export suffixes: one spelling in generator.names, read by the pipeline
# stack's imports and the deployer's output lookups.
DEPLOY_ROLE_ARN = names.DEPLOY_ROLE_EXPORT
PERMISSIONS_BOUNDARY_ARN = names.BOUNDARY_EXPORT
TEMPLATE_BUCKET_NAME = names.TEMPLATE_BUCKET_EXPORT


# iam actions that create a role or change its permissions: allowed only when the role
# carries the boundary (condition key iam:PermissionsBoundary, IAM User Guide,
# https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html and
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html).
BOUNDARY_CONDITIONED = ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy",
                        "iam:DetachRolePolicy", "iam:DeleteRolePolicy",
                        "iam:PutRolePermissionsBoundary")
# Services the deploy role may hand a role to (iam:PassedToService): task and execution
# roles (ecs-tasks), the Service Connect TLS infrastructure role (ecs), the pipeline's
# CodeBuild and CodePipeline roles, and CloudFormation.
PASS_ROLE_SERVICES = ("ecs-tasks.amazonaws.com", "ecs.amazonaws.com",
                      "codebuild.amazonaws.com", "codepipeline.amazonaws.com",
                      "cloudformation.amazonaws.com")
# The service-linked roles the ECS cluster and the scalable target create on first use
# (their schemas list iam:CreateServiceLinkedRole), and the one the account's first load
# balancer creates, which the ELB schemas do not list but ELB documents
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-service-linked-roles.html).
# AWS defines their permissions; they cannot carry a boundary.
SERVICE_LINKED_ROLES = {
    "ecs.amazonaws.com": "role/aws-service-role/ecs.amazonaws.com/*",
    "ecs.application-autoscaling.amazonaws.com":
        "role/aws-service-role/ecs.application-autoscaling.amazonaws.com/*",
    "elasticloadbalancing.amazonaws.com":
        "role/aws-service-role/elasticloadbalancing.amazonaws.com/*",
}
# Changing the boundary policy would widen every role under it.
BOUNDARY_POLICY_CHANGES = ("iam:CreatePolicyVersion", "iam:DeletePolicy",
                           "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion")

# A margin under the 6,144-character quota: the measure replaces intrinsics by long
# placeholders, but IAM's own serialization is not ours.
# The two service prefixes of one connection (dtconsole rename.html, above).
CONNECTION_PREFIXES = ("codestar-connections", "codeconnections")

_POLICY_BUDGET = quotas.MANAGED_POLICY_CHARS.limit - 144


def export_name(topology: Topology, output: str) -> str:
    return f"{topology.bootstrap_stack_name}-{output}"


def boundary_name(topology: Topology) -> str:
    return f"{topology.project_app}-permissions-boundary"


# --- what the deploy role must allow ------------------------------------------------------


def deployed_types(deployed: Mapping[str, dict]) -> set[str]:
    """The resource types of every template the deploy role deploys (as dicts)."""
    return set().union(*(permissions.resource_types(t) for t in deployed.values()))


def _arn(service: str, resource: str) -> Sub:
    return Sub("arn:${AWS::Partition}:%s:${AWS::Region}:${AWS::AccountId}:%s"
               % (service, resource))


def _connections(prefix: str) -> Sub:
    """This account's connections of one service prefix (any region: the pipeline stack's
    parameter may name one from another)."""
    return Sub("arn:${AWS::Partition}:%s:*:${AWS::AccountId}:connection/*" % prefix)


def _iam_arn(resource: str) -> Sub:
    return Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:%s" % resource)


def _app_roles(topology: Topology) -> list[Sub]:
    # Every role the app's stacks create has the path /<app>/ (names.role_path): the
    # pipeline's under topology.yaml's app, each environment's under <app>-<env>. The
    # deploy role itself, at the root, is outside them.
    paths = dict.fromkeys([topology.project_app, *deployscope.apps(topology)])
    return [_iam_arn(f"role{names.role_path(app)}*") for app in paths]


def _clusters(topology: Topology) -> list[str]:
    """The cluster stack of each deployment (one without environments)."""
    return [deployment.cluster_stack_name for deployment in topology.deployments]


def _stack_writes(cloudformation, unnamed) -> list[Action]:
    """The stack writes, the change-set ones as one pattern (`*ChangeSet`: Create, Delete,
    Execute and the DescribeChangeSet read) to keep the boundary inside its size quota."""
    names = [n for n in cloudformation if n not in unnamed
             and not n.startswith(("Describe", "Get", "List"))]
    change_sets = [n for n in names if n.endswith("ChangeSet")]
    rest = [n for n in names if not n.endswith("ChangeSet")]
    return ([Action("cloudformation", "*ChangeSet")] if change_sets else []) + [
        Action("cloudformation", n) for n in rest]


def _patterns(prefix: str, names: list[str], pattern: str) -> list[Action]:
    """`names` with those `pattern` matches folded into it (fnmatch, as IAM matches)."""
    from fnmatch import fnmatchcase

    folded = [n for n in names if fnmatchcase(n, pattern)]
    return ([Action(prefix, pattern)] if folded else []) + [
        Action(prefix, n) for n in names if n not in folded]


def _boundary_names(topology: Topology, exact) -> list[str]:
    """The boundary's names of one kind: `exact(app)` of the app without environments; with
    them, `exact("<app>-*")`, one pattern for every environment. The boundary is one managed
    policy of at most 6,144 characters (IAM quotas, quotas.MANAGED_POLICY_CHARS), so it
    cannot grow with each environment: it names the project's prefix, and what keeps an
    environment's roles to its own resources is the account, the tag conditions (which
    list each environment's app) and the roles' own policies, which are exact. An app named
    `<app>-<more>` in the same account is the known name residual (README, "Trust model")."""
    if not topology.environments:
        return [exact(topology.app)]
    return [exact(f"{topology.project_app}-*")]


def _scopes(topology: Topology) -> dict[str, tuple[frozenset[str], list]]:
    """Per service prefix: the IAM resource types (Service Authorization Reference names)
    and the ARNs the app's resources of those types have. An action of the prefix that
    can be scoped to one of the types gets these ARNs; the others get "*". Prefixes not
    here get "*" throughout: their create calls take no ARN, or their names are generated
    without the stack name (security group ids, load balancer names, Cloud Map ids)."""
    app = topology.project_app
    clusters = _clusters(topology)
    return {
        # CloudFormation names buckets <stack name>-<logical id>-<suffix>, lowercased; of
        # the stacks the deploy role runs, only the pipeline stack (<app>-pipeline) has
        # buckets, projects and a pipeline: <app>-pipeline-* keeps another app whose name
        # extends this one's (<app>-prod-pipeline-...) out (issue 15, path 9).
        "s3": (frozenset({"bucket", "object"}),
               [Sub("arn:${AWS::Partition}:s3:::%s-pipeline-*" % app),
                Sub("arn:${AWS::Partition}:s3:::%s-pipeline-*/*" % app)]),
        # pipeline.stack names the repository <app>/service-<stack id piece>.
        "ecr": (frozenset({"repository"}), [_arn("ecr", f"repository/{app}/*")]),
        # Projects and report groups are named ${AWS::StackName}-...
        "codebuild": (frozenset({"project", "report-group"}),
                      [_arn("codebuild", f"project/{app}-pipeline-*"),
                       _arn("codebuild", f"report-group/{app}-pipeline-*")]),
        # A generated pipeline name starts with the stack name; a stage ARN adds /<stage>.
        "codepipeline": (frozenset({"pipeline", "stage"}),
                         [_arn("codepipeline", f"{app}-pipeline-*")]),
        # The cluster is named as its stack (cluster.py), services live under it, task
        # definition families are <cluster stack>-<service> (service.py); ARN formats from
        # the Service Authorization Reference (ecs: cluster, service, service-deployment,
        # task-definition). Another app's services are under another cluster.
        "ecs": (frozenset({"cluster", "service", "service-deployment", "task-definition"}),
                [arn for cluster in clusters for arn in (
                    _arn("ecs", f"cluster/{cluster}"), _arn("ecs", f"service/{cluster}/*"),
                    _arn("ecs", f"service-deployment/{cluster}/*"),
                    _arn("ecs", f"task-definition/{cluster}-*:*"))]),
        # Log groups: /ecs/<cluster stack>/<service> (service.py) and the pipeline's
        # /aws/codebuild/<app>-pipeline-... (pipeline.stack).
        "logs": (frozenset({"log-group"}),
                 [*[_arn("logs", f"log-group:/ecs/{cluster}/*") for cluster in clusters],
                  _arn("logs", f"log-group:/aws/codebuild/{app}-*")]),
    }


def _actions(names: Iterable[str]) -> list[Action]:
    return [Action(*name.split(":", 1)) for name in sorted(names, key=str.lower)]


def _by_prefix(actions: Iterable[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for action in actions:
        grouped[action.split(":", 1)[0]].append(action)
    return dict(sorted(grouped.items()))


def _iam_statements(topology: Topology, actions: set[str]) -> list[Statement]:
    boundary = Ref(PERMISSIONS_BOUNDARY)
    conditioned = actions & set(BOUNDARY_CONDITIONED)
    result = [] if not conditioned else [Statement(
        Sid="RoleChangesOnlyWithTheBoundary",
        Effect=Allow,
        Action=_actions(conditioned),
        Resource=_app_roles(topology),
        Condition=Condition(StringEquals("iam:PermissionsBoundary", boundary)),
    )]
    if "iam:PassRole" in actions:
        result.append(Statement(
            Sid="PassAppRolesToTheirServices",
            Effect=Allow,
            Action=_actions(["iam:PassRole"]),
            Resource=_app_roles(topology),
            Condition=Condition(StringEquals("iam:PassedToService", list(PASS_ROLE_SERVICES))),
        ))
    if "iam:CreateServiceLinkedRole" in actions:
        result.append(Statement(
            Sid="ServiceLinkedRolesOfEcsAutoScalingAndElb",
            Effect=Allow,
            Action=_actions(["iam:CreateServiceLinkedRole"]),
            Resource=[_iam_arn(path) for path in SERVICE_LINKED_ROLES.values()],
            Condition=Condition(StringEquals("iam:AWSServiceName", list(SERVICE_LINKED_ROLES))),
        ))
    rest = actions - conditioned - {"iam:PassRole", "iam:CreateServiceLinkedRole"}
    if rest:
        result.append(Statement(Sid="AppRoles", Effect=Allow, Action=_actions(rest),
                                Resource=_app_roles(topology)))
    return result


def _route53_statements(topology: Topology, actions: list[str]) -> list[Statement]:
    """The Cloud Map namespace's hosted zone has an id no template knows, so record changes
    are scoped by record name instead: only names in the app's namespace
    (route53:ChangeResourceRecordSetsNormalizedRecordNames, lower case without the final
    dot, https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/specifying-rrset-conditions.html);
    a public zone's records stay out of reach."""
    change = [a for a in actions if a == "route53:ChangeResourceRecordSets"]
    rest = [a for a in actions if a not in change]
    result = []
    if change:
        result.append(Statement(
            Sid="Route53RecordsOfTheAppsNamespace", Effect=Allow, Action=_actions(change),
            Resource=["*"],
            # ForAllValues also holds for a request without the key; a Null condition set
            # to false makes the key required (IAM's multivalued context key examples,
            # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition_examples-multi-valued-context-keys.html).
            Condition=Condition([
                ForAllValuesStringLike(
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames",
                    [name for namespace in dict.fromkeys(
                        d.namespace.lower() for d in topology.deployments)
                     for name in (namespace, f"*.{namespace}")]),
                Null("route53:ChangeResourceRecordSetsNormalizedRecordNames", "false")])))
    if rest:
        result.append(Statement(Sid="Route53", Effect=Allow, Action=_actions(rest),
                                Resource=["*"]))
    return result


def allow_statements(topology: Topology, actions: set[str]) -> list[Statement]:
    """The deploy role's Allow statements: one or a few per service prefix."""
    scopes = _scopes(topology)
    write_scopes = deployscope.scopes(topology)
    result = []
    for prefix, prefix_actions in _by_prefix(actions).items():
        sid = "".join(part.capitalize() for part in prefix.split("-"))
        if prefix == "iam":
            result += _iam_statements(topology, set(prefix_actions))
        elif prefix == "codestar-connections":
            # The connection is a parameter of the pipeline stack, unknown here; the
            # condition limits passing it to CodePipeline (AWS::CodePipeline::Pipeline's
            # schema lists codestar-connections:PassConnection for create and update;
            # condition key: https://docs.aws.amazon.com/service-authorization/latest/reference/list_awscodestarconnections.html).
            # Connections made since 1 July 2024 have codeconnections ARNs, and a policy's
            # service prefix must match the resource's
            # (https://docs.aws.amazon.com/dtconsole/latest/userguide/rename.html): the
            # same grant under both prefixes, each with its own condition key.
            for connections in CONNECTION_PREFIXES:
                result.append(Statement(
                    Sid="".join(part.capitalize() for part in connections.split("-")),
                    Effect=Allow,
                    Action=[Action(connections, a.split(":", 1)[1]) for a in sorted(prefix_actions)],
                    Resource=[_connections(connections)],
                    Condition=Condition(StringEquals(f"{connections}:PassedToService",
                                                     "codepipeline.amazonaws.com"))))
        elif prefix == "route53":
            result += _route53_statements(topology, prefix_actions)
        elif prefix in write_scopes:
            # Generated ids: scoped by tag, or a documented "*" (generator.stacks.deployscope).
            result += deployscope.statements(topology, prefix, prefix_actions)
        elif prefix in scopes:
            types, arns = scopes[prefix]
            scoped = [n for n in prefix_actions if permissions.action_resource_types(n) & types]
            unscoped = [n for n in prefix_actions if n not in scoped]
            if scoped:
                result.append(Statement(Sid=sid, Effect=Allow, Action=_actions(scoped),
                                        Resource=arns))
            if unscoped:
                # No resource-level permission for these (IAM reference: no resource type).
                result.append(Statement(Sid=sid + "AnyResource", Effect=Allow,
                                        Action=_actions(unscoped), Resource=["*"]))
        else:
            result.append(Statement(Sid=sid, Effect=Allow, Action=_actions(prefix_actions),
                                    Resource=["*"]))
    return result


def _mutating(actions: Iterable[str]) -> list[str]:
    return [a for a in actions
            if not a.split(":", 1)[1].startswith(("Get", "List", "Describe"))
            and a != "iam:PassRole"]


def deny_statements(topology: Topology, actions: set[str]) -> list[Statement]:
    """What the deploy role must never do, whatever its Allow statements say."""
    grouped = _by_prefix(actions)
    # By exact ARN, not by the prefix role/<app>-bootstrap-*: a service named bootstrap-api
    # gets roles <app>-bootstrap-api-*, which such a prefix would deny, and an explicit deny
    # beats every allow (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
    own_roles = [GetAtt(DEPLOY_ROLE, "Arn")]
    if deployer.wanted(topology):
        # The environment deployer role (path /<app>/, inside the AppRoles scope); named,
        # so its ARN is known whether or not TrustedAccount created it.
        own_roles.append(deployer.role_arn(topology))
    return [
        Statement(
            Sid="NeverLiftABoundary",
            Effect=Deny,
            Action=_actions(["iam:DeleteRolePermissionsBoundary"]),
            Resource=["*"],
        ),
        Statement(
            Sid="NeverChangeTheBoundaryOrTheseGrants",
            Effect=Deny,
            Action=_actions(BOUNDARY_POLICY_CHANGES),
            Resource=[Ref(PERMISSIONS_BOUNDARY),
                      # The deploy policies cannot name their own ARNs (a circular
                      # reference); CloudFormation names them <stack>-<logical id>-<suffix>,
                      # and no service stack has a logical id of this (capitalised) prefix.
                      _iam_arn(f"policy/{topology.bootstrap_stack_name}-{DEPLOY_POLICY_PREFIX}*")],
        ),
        Statement(
            # This stack's one role (the deploy role itself) matches role/<app>-*.
            Sid="NeverChangeThisStacksRoles",
            Effect=Deny,
            Action=_actions(set(_mutating(grouped.get("iam", []))) | set(BOUNDARY_CONDITIONED)),
            Resource=own_roles,
        ),
        Statement(
            # This stack's bucket matches the s3 scope <app>-*.
            Sid="NeverChangeTheTemplateBucket",
            Effect=Deny,
            Action=_actions(_mutating(grouped.get("s3", []))),
            Resource=[GetAtt(TEMPLATE_BUCKET, "Arn"), Sub("${%s.Arn}/*" % TEMPLATE_BUCKET)],
        ),
    ]


def deploy_actions(deployed: Mapping[str, dict]) -> set[str]:
    return permissions.granted_actions(deployed_types(deployed))


# --- sizes ---------------------------------------------------------------------------------


def size_values(topology: Topology) -> dict[str, str]:
    """Known values of this template's Refs and GetAtts, longest plausible, for measuring."""
    partition, account = "aws-us-gov", "1" * 12
    return {
        PERMISSIONS_BOUNDARY:
            f"arn:{partition}:iam::{account}:policy/{boundary_name(topology)}-" + "f" * 8,
        f"{TEMPLATE_BUCKET}.Arn": f"arn:{partition}:s3:::" + "b" * 63,
        TEMPLATE_BUCKET: "b" * 63,
        f"{DEPLOY_ROLE}.Arn": f"arn:{partition}:iam::{account}:role/" + "r" * 64,
    }


def _document(statements: list[Statement]) -> PolicyDocument:
    return PolicyDocument(Version="2012-10-17", Statement=statements)


def _size(statements: list[Statement], values: dict[str, str]) -> int:
    return permissions.policy_size(encode_to_dict(_document(statements)), values)


def pack(statements: list[Statement], values: dict[str, str]) -> list[list[Statement]]:
    """Statements into as few documents as stay under the managed-policy size, in order."""
    documents: list[list[Statement]] = [[]]
    for statement in statements:
        if documents[-1] and _size(documents[-1] + [statement], values) > _POLICY_BUDGET:
            documents.append([])
        documents[-1].append(statement)
        if _size(documents[-1], values) > _POLICY_BUDGET:
            raise ValueError(f"statement {statement.Sid} alone exceeds a managed policy")
    if len(documents) > quotas.MANAGED_POLICIES_PER_ROLE.limit:
        raise ValueError(f"{len(documents)} managed policies exceed "
                         f"{quotas.MANAGED_POLICIES_PER_ROLE.name}")
    return documents


# --- resources -------------------------------------------------------------------------------


def deploy_role() -> iam.Role:
    return iam.Role(
        DEPLOY_ROLE,
        # Kept when the stack goes or the role is replaced: the app stacks were created
        # with it, and CloudFormation needs it to update or delete them.
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
        Description="CloudFormation runs the app's cluster, network, service and pipeline "
                    "stacks as this role",
        # The trust documented for a CloudFormation service role:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-iam-servicerole.html
        AssumeRolePolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[Statement(
            Effect=Allow,
            Principal=Principal("Service", "cloudformation.amazonaws.com"),
            Action=[AssumeRole],
        )]),
    )


def deploy_policies(topology: Topology, deployed: Mapping[str, dict]) -> list[iam.ManagedPolicy]:
    actions = deploy_actions(deployed)
    statements = deny_statements(topology, actions) + allow_statements(topology, actions)
    documents = pack(statements, size_values(topology))
    return [
        iam.ManagedPolicy(
            f"{DEPLOY_POLICY_PREFIX}{number}",
            # Retained with the role, so a retained role keeps working.
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
            Description=f"CloudFormation deploy role, part {number} of {len(documents)}: "
                        "handler permissions of the app's resource types",
            Roles=[Ref(DEPLOY_ROLE)],
            PolicyDocument=_document(document),
        )
        for number, document in enumerate(documents, start=1)
    ]


def boundary_statements(topology: Topology) -> list[Statement]:
    """The ceiling of every role the app stacks create (pipeline/iam.py, service stack)."""
    def actions(prefix: str, *names: str) -> list[Action]:
        return [Action(prefix, name) for name in names]

    cloudformation = sorted(
        {a.split(":", 1)[1] for a in operations.iam_actions(
            operations.DEPLOY_OPERATIONS | operations.VERIFY_OPERATIONS)
         if a.startswith("cloudformation:")}
        # The pipeline's CloudFormation actions (CREATE_UPDATE) on the pipeline stack.
        | {"CreateStack", "UpdateStack"})
    unnamed = sorted(a.split(":", 1)[1] for a in operations.iam_actions(
        operations.DEPLOY_UNNAMED_OPERATIONS) if a.startswith("cloudformation:"))
    app = topology.project_app
    tagged = {f"aws:ResourceTag/{deployscope.APP_TAG}": deployscope.app_tag_values(topology)}
    return [
        Statement(
            Sid="TasksRun",
            Effect=Allow,
            Action=[
                # Execution role: image pull (service stack). Reads; the repository is
                # topology.yaml's, which may be any (README, "Trust model").
                *actions("ecr", "GetAuthorizationToken", "BatchCheckLayerAvailability",
                         "BatchGetImage", "GetDownloadUrlForLayer"),
                # Task role: ECS Exec's channel. These actions have no resource type in
                # the Service Authorization Reference: "*" is the only resource they take.
                *actions("ssmmessages", "CreateControlChannel", "CreateDataChannel",
                         "OpenControlChannel", "OpenDataChannel"),
            ],
            Resource=["*"],
        ),
        Statement(
            # awslogs of the tasks (service stack: /ecs/<cluster stack>/<service>) and of
            # the pipeline's CodeBuild steps (/aws/codebuild/<app>-pipeline-<step>): the
            # app's own log groups only (checkov CKV_AWS_111).
            Sid="WriteLogs",
            Effect=Allow,
            Action=actions("logs", "CreateLogStream", "PutLogEvents"),
            Resource=[
                *[Sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
                      f"/ecs/{cluster}/*")
                  for cluster in _boundary_names(topology, lambda a: f"{a}-cluster")],
                Sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
                    f"/aws/codebuild/{app}-pipeline-*"),
            ],
        ),
        Statement(
            # Container secrets: the app's own names only (generator.topology refuses any
            # other; an environment's are <app>-<env>/...), in any region of this account.
            Sid="ReadSecrets",
            Effect=Allow,
            Action=[Action("secretsmanager", "GetSecretValue"), Action("ssm", "GetParameters")],
            Resource=[*[Sub("arn:${AWS::Partition}:secretsmanager:*:${AWS::AccountId}:secret:"
                            f"{own}/*") for own in _boundary_names(topology, str)],
                      *[Sub("arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:parameter/"
                            f"{own}/*") for own in _boundary_names(topology, str)]],
        ),
        Statement(
            # A customer managed key of those secrets, used only by Secrets Manager and
            # SSM on the task's behalf (kms:ViaService,
            # https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
            Sid="DecryptViaSecrets",
            Effect=Allow,
            Action=[Action("kms", "Decrypt")],
            Resource=["*"],
            Condition=Condition(StringLike("kms:ViaService", [
                "secretsmanager.*.amazonaws.com", "ssm.*.amazonaws.com"])),
        ),
        # The pipeline's roles, each grant limited to this app's resources (issue 15: the
        # boundary is the app's ceiling, not the account's). CloudFormation names every
        # app resource below <stack name>-..., and every app stack is <app>-...
        Statement(
            # Its one image repository, <app>/service-<stack id piece> (pipeline.stack).
            Sid="PushImages",
            Effect=Allow,
            Action=actions("ecr", "InitiateLayerUpload", "UploadLayerPart",
                           "CompleteLayerUpload", "PutImage", "DescribeImages"),
            Resource=[_arn("ecr", "repository/" + names.image_repository(app) + "*")],
        ),
        Statement(
            # The artifact and template buckets: <app>-pipeline-... and <app>-bootstrap-...
            # (bucket names are lowercase, as app names are).
            Sid="Buckets",
            Effect=Allow,
            Action=actions("s3", "GetObject", "GetObjectVersion", "PutObject",
                           "DeleteObject", "ListBucket", "GetBucketLocation",
                           "GetBucketVersioning", "GetBucketAcl"),
            Resource=[Sub("arn:${AWS::Partition}:s3:::%s-%s-*" % (app, stack))
                      for stack in ("pipeline", "bootstrap")]
            + [Sub("arn:${AWS::Partition}:s3:::%s-%s-*/*" % (app, stack))
               for stack in ("pipeline", "bootstrap")],
        ),
        Statement(
            # The connection is the pipeline stack's parameter, unknown here: this
            # account's connections, under both prefixes (dtconsole rename.html).
            Sid="Connections",
            Effect=Allow,
            Action=[Action(prefix, "UseConnection") for prefix in CONNECTION_PREFIXES],
            Resource=[_connections(prefix) for prefix in CONNECTION_PREFIXES],
        ),
        Statement(
            Sid="Builds",
            Effect=Allow,
            Action=actions("codebuild", "StartBuild", "BatchGetBuilds", "CreateReport",
                           "UpdateReport", "BatchPutTestCases"),
            # The pipeline stack's projects and report groups: <app>-pipeline-<step>.
            Resource=[_arn("codebuild", f"project/{app}-pipeline-*"),
                      _arn("codebuild", f"report-group/{app}-pipeline-*")],
        ),
        Statement(
            # The app's stacks; a change set of a template with a transform also needs
            # CreateChangeSet on the transform
            # (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/control-access-with-iam.html).
            Sid="StackWrites",
            Effect=Allow,
            Action=_stack_writes(cloudformation, unnamed),
            # An environment's cluster stack carries its app tag from its creation (the
            # deployer's tags): the tagged statements below reach it.
            Resource=[_arn("cloudformation", f"stack/{stack}/*")
                      for stack in ((*_clusters(topology), topology.pipeline_stack_name)
                                    if not topology.environments
                                    else (topology.pipeline_stack_name,))]
            + [Sub("arn:${AWS::Partition}:cloudformation:${AWS::Region}:aws:"
                   "transform/LanguageExtensions")],
        ),
        # Every other stack of the app (<app>-<service>[-network|-ingress]): by name and by
        # its app tag (generator.params.tags), since a name prefix alone also matches an
        # app named <app>-<more> (issue 15, path 9). Reads by name: they change nothing,
        # and a deleted stack's events are still read.
        Statement(
            Sid="StackReads",
            Effect=Allow,
            Action=actions("cloudformation", *[n for n in cloudformation
                                               if n not in unnamed and n.startswith("Describe")]),
            Resource=[_arn("cloudformation", f"stack/{app}-*/*")],
        ),
        Statement(
            Sid="TaggedStackWrites",
            Effect=Allow,
            Action=_stack_writes(cloudformation, unnamed),
            Resource=[_arn("cloudformation", f"stack/{app}-*/*")],
            Condition=Condition(StringEquals(tagged)),
        ),
        Statement(
            # A new stack has no tags yet: its change set must bring the app tag.
            Sid="TaggedStackCreates",
            Effect=Allow,
            Action=actions("cloudformation", "CreateChangeSet", "CreateStack"),
            Resource=[_arn("cloudformation", f"stack/{app}-*/*")],
            Condition=Condition([StringEquals({f"aws:RequestTag/{deployscope.APP_TAG}":
                                               deployscope.app_tag_values(topology)}),
                                 Null({f"aws:ResourceTag/{deployscope.APP_TAG}": "true"})]),
        ),
        Statement(
            Sid="UnnamedReads",
            Effect=Allow,
            Action=[
                # Called without a stack name (the deployer lists stacks to find the app's
                # by tag): IAM authorizes such a call against "*" only.
                *actions("cloudformation", *unnamed),
                *actions("ecs", "DescribeServices"),
                *actions("servicediscovery", "DiscoverInstances"),
                # `status` reads the recent Service Connect rates: a metric is not an IAM
                # resource (operations.VERIFY_UNNAMED_OPERATIONS).
                *[Action(*a.split(":", 1)) for a in sorted(
                    operations.iam_actions(operations.VERIFY_UNNAMED_OPERATIONS))],
                # deploy's preflight reads the Service Connect TLS CA
                # (operations.DEPLOY_TLS_OPERATIONS).
                *[Action(*a.split(":", 1)) for a in sorted(
                    operations.iam_actions(operations.DEPLOY_TLS_OPERATIONS))],
            ],
            Resource=["*"],
        ),
        Statement(
            # deploy's bake (generator.ops.bake) and `status` (generator.ops.health) read
            # the app's alarms by name; deploy's last step puts the deployments' dashboards
            # and deletes those of an earlier, larger split (generator.ops.dashboards). One
            # statement: the boundary's size quota; each action applies to its own
            # resource type only (Service Authorization Reference, Amazon CloudWatch).
            Sid="AlarmsDashboards",
            Effect=Allow,
            Action=[Action("cloudwatch", "DescribeAlarms")] + [
                Action(*a.split(":", 1)) for a in sorted(operations.iam_actions(
                    operations.DEPLOY_OPERATIONS)) if a.startswith("cloudwatch:")
                and "Dashboard" in a],
            Resource=[_arn("cloudwatch", f"alarm:{app}-*")] + (
                deployer.dashboard_arns(topology) if not topology.environments
                else [Sub("arn:${AWS::Partition}:cloudwatch::${AWS::AccountId}:"
                          f"dashboard/{topology.project_app}-*")]),
        ),
        Statement(
            # No role inside the boundary changes this stack (the deploy role, the
            # boundary itself); reading its outputs stays allowed.
            Sid="NoBootstrapWrites",
            Effect=Deny,
            Action=_stack_writes(cloudformation, unnamed),
            Resource=[Sub("arn:${AWS::Partition}:cloudformation:${AWS::Region}:"
                          "${AWS::AccountId}:stack/${AWS::StackName}/*")],
        ),
        Statement(
            # The Service Connect TLS infrastructure role (cluster stack, when topology.yaml
            # has service_connect_tls) carries AWS's managed policy; these are its actions
            # (generator.stacks.cluster.TLS_MANAGED_POLICY_ACTIONS). Always here, so that
            # turning TLS on needs no new bootstrap. ECS keeps the certificates in secrets
            # named ecs-sc!...; the CA can change in topology.yaml, so acm-pca is "*".
            Sid="TlsSecrets",
            Effect=Allow,
            # As patterns (the boundary's size quota): every managed-policy action but
            # TagResource has "Secret" in its name; on ECS's own ecs-sc! secrets only.
            Action=_patterns("secretsmanager", [
                a.split(":", 1)[1] for a in TLS_MANAGED_POLICY_ACTIONS
                if a.startswith("secretsmanager:")], "*Secret*"),
            Resource=[Sub("arn:${AWS::Partition}:secretsmanager:*:${AWS::AccountId}:"
                          "secret:ecs-sc!*")],
        ),
        Statement(
            # Only CAs tagged AmazonECSManaged=true, as AWS's managed policy itself
            # (service-connect-tls.html): not any CA of the account (issue 15, path 6).
            Sid="TlsCertificates",
            Effect=Allow,
            Action=[Action(*a.split(":", 1)) for a in TLS_MANAGED_POLICY_ACTIONS
                    if a.startswith("acm-pca:")],
            Resource=["*"],
            Condition=Condition(StringEquals("aws:ResourceTag/AmazonECSManaged", "true")),
        ),
        Statement(
            # The pipeline and its deploy step hand stack operations to CloudFormation,
            # which runs them as the deploy role; no other role may be passed.
            Sid="PassDeployRole",
            Effect=Allow,
            Action=[Action("iam", "PassRole")],
            Resource=[GetAtt(DEPLOY_ROLE, "Arn")],
            Condition=Condition(StringEquals("iam:PassedToService",
                                             "cloudformation.amazonaws.com")),
        ),
        *_promotion_statements(topology),
    ]


def _promotion_statements(topology: Topology) -> list[Statement]:
    """With environments, the pipeline's roles (inside this boundary) use the artifact
    store's customer managed key, through S3 only, and may assume the environment
    deployer and reader roles: the only grant of this template that reaches another
    account, and only those roles (the pipeline's own policies name each environment
    account's exactly: pipeline.crossaccount,
    https://docs.aws.amazon.com/codepipeline/latest/userguide/pipelines-create-cross-account.html)."""
    if not topology.environments:
        return []
    project = topology.project_app
    return [
        Statement(
            Sid="ArtifactKey",
            Effect=Allow,
            Action=[Action("kms", name) for name in ("Decrypt", "DescribeKey", "Encrypt",
                                                     "GenerateDataKey")],
            Resource=[Sub("arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*")],
            Condition=Condition(StringEquals("kms:ViaService",
                                             Sub("s3.${AWS::Region}.amazonaws.com"))),
        ),
        Statement(
            # Every account's environment deployer and reader roles (one pattern: an ARN
            # per account would grow the boundary past its size quota); each of those
            # roles trusts only this project's pipeline steps (generator.stacks.deployer).
            Sid="AssumeEnvironmentRoles",
            Effect=Allow,
            Action=[AssumeRole],
            Resource=[Sub("arn:${AWS::Partition}:iam::*:role%s%s-environment-*"
                          % (names.role_path(project), project))],
        ),
    ]


def permissions_boundary(topology: Topology) -> iam.ManagedPolicy:
    return iam.ManagedPolicy(
        PERMISSIONS_BOUNDARY,
        # Kept with the deploy role: roles in the app stacks still name it.
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
        # Readable, and unique per stack instance: the policy is retained, and a recreated
        # bootstrap stack must not meet it as AlreadyExists.
        ManagedPolicyName=Join("", [boundary_name(topology), "-",
                                    names.stack_instance_suffix()]),
        Description=f"Permissions boundary of every role the {topology.app} stacks create; "
                    "no IAM role management",
        PolicyDocument=_document(boundary_statements(topology)),
    )


def template_bucket() -> s3.Bucket:
    # Kept when the stack goes: a non-empty bucket would fail the stack's deletion anyway.
    return s3.Bucket(
        TEMPLATE_BUCKET,
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
        BucketEncryption=s3.BucketEncryption(ServerSideEncryptionConfiguration=[
            s3.ServerSideEncryptionRule(
                ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(
                    SSEAlgorithm="AES256"))]),
        VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
        PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True,
            RestrictPublicBuckets=True),
        OwnershipControls=s3.OwnershipControls(Rules=[
            s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
        # An uploaded template (templates/, generator.ops.deploy.upload_template) is read
        # once, by the change set that names it. The baseline under deployed/ (the last
        # successful Deploy's templates, read by the next Build's check-upgrade) must never
        # expire: a rule without a filter applies to every object in the bucket
        # (https://docs.aws.amazon.com/AmazonS3/latest/API/API_LifecycleRuleFilter.html), so
        # each rule names its prefix
        # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/intro-lifecycle-filters.html).
        # Only deployed/'s overwritten (noncurrent) versions go.
        LifecycleConfiguration=s3.LifecycleConfiguration(Rules=[
            s3.LifecycleRule(
                Id="expire-uploaded-templates",
                Status="Enabled",
                Prefix=UPLOAD_PREFIX,
                ExpirationInDays=TEMPLATE_RETENTION_DAYS,
                NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(NoncurrentDays=1),
                AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                    DaysAfterInitiation=1),
            ),
            s3.LifecycleRule(
                Id="expire-replaced-baselines",
                Status="Enabled",
                Prefix=BASELINE_PREFIX,
                NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(
                    NoncurrentDays=TEMPLATE_RETENTION_DAYS),
                AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                    DaysAfterInitiation=1),
            ),
        ]),
    )


def template_bucket_policy() -> s3.BucketPolicy:
    bucket_arn = GetAtt(TEMPLATE_BUCKET, "Arn")
    return s3.BucketPolicy(
        TEMPLATE_BUCKET_POLICY,
        Bucket=Ref(TEMPLATE_BUCKET),
        PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[Statement(
            Sid="DenyInsecureTransport",
            Effect=Deny,
            Principal=AwsPrincipal("*"),
            # Any request without TLS, whatever it asks for.
            Action=[Action("s3", "*")],
            Resource=[bucket_arn, Sub("${%s.Arn}/*" % TEMPLATE_BUCKET)],
            Condition=Condition(Bool("aws:SecureTransport", "false")),
        )]),
    )


def outputs(topology: Topology) -> list[Output]:
    def output(name: str, value, description: str) -> Output:
        return Output(name, Value=value, Description=description,
                      Export=Export(export_name(topology, name)))

    return [
        output(DEPLOY_ROLE_ARN, GetAtt(DEPLOY_ROLE, "Arn"),
               "Role CloudFormation runs the app's stacks as"),
        output(PERMISSIONS_BOUNDARY_ARN, Ref(PERMISSIONS_BOUNDARY),
               "Permissions boundary every app role carries"),
        output(TEMPLATE_BUCKET_NAME, Ref(TEMPLATE_BUCKET),
               "Bucket for templates too large to pass inline"),
    ]


def build(topology: Topology, deployed: Mapping[str, dict]) -> Template:
    """`deployed`: every other template of the app (file name -> the dict it is written
    from), whose resource types the deploy role must be able to handle. generator.render
    passes them in, so this module never reaches back to render."""
    template = Template(
        Description=f"{topology.app}: permissions boundary, CloudFormation deploy role and "
                    "template bucket, created once by an admin (generated from "
                    "topology.yaml; do not edit)"
    )
    template.set_version("2010-09-09")
    for resource in (permissions_boundary(topology), deploy_role(),
                     *deploy_policies(topology, deployed), template_bucket(),
                     template_bucket_policy()):
        template.add_resource(resource)
    template.add_output(outputs(topology))
    deployer.add_to(template, topology, DEPLOY_ROLE, TEMPLATE_BUCKET, PERMISSIONS_BOUNDARY)
    _check_inline_size(topology, template)
    return template


def _check_inline_size(topology: Topology, template: Template) -> None:
    """bootstrap.yaml goes inline (TemplateBody): before the stack exists there is no bucket
    in the account to upload it to, and each environment's names make it longer; and its
    boundary is one managed policy, which they make longer too."""
    from generator.render import template_bytes  # render imports this module

    size = len(template_bytes(template))
    limit = quotas.TEMPLATE_BODY_BYTES.limit
    if size > limit:
        raise TopologyError(
            f"{topology.source}: environments: bootstrap.yaml would have {size:,} bytes with "
            f"{len(topology.environments)} environments, over CloudFormation's {limit:,}-byte "
            "TemplateBody limit, and the bootstrap stack is created before any bucket of "
            "the account exists to upload it to; use fewer environments")
    boundary = encode_to_dict(template.resources[PERMISSIONS_BOUNDARY].to_dict())
    characters = permissions.policy_size(boundary["Properties"]["PolicyDocument"],
                                         size_values(topology))
    quota = quotas.MANAGED_POLICY_CHARS
    if characters > quota.limit:
        where = (f"{len(topology.environments)} environments" if topology.environments
                 else f"app {topology.app!r}")
        raise TopologyError(
            f"{topology.source}: {'environments' if topology.environments else 'app'}: "
            "the permissions boundary would have "
            f"{characters:,} characters with {where}, over IAM's {quota.limit:,} for a "
            f"managed policy ({quota.source}); "
            + ("use fewer environments or shorter names" if topology.environments
               else "use a shorter app name"))
