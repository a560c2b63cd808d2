"""Every input of a run checked before its first AWS write, every problem one line.

`deploy` reads what it needs (the bootstrap stack's outputs, each stack it will deploy as it
is now, the Private CA) and checks, for every stack of the run, generically:

- it is in a state a change set can start from (not UPDATE_ROLLBACK_FAILED, DELETE_FAILED
  or in progress);
- its template exists and parses, and fits CloudFormation's size limits (a body past the
  inline limit needs the bootstrap stack's bucket);
- its params file (if it takes one) exists, parses and names only the template's parameters;
- every template parameter without a Default is given: by the params file, or by the
  deployer itself (`StackInput.given`: flags, live values, the image, the cluster's
  subnets, the boundary...). A new stack's ImageUri and the cluster's first-deploy flags
  are such parameters, so "no image for a new service" and "no --vpc-id" are found here.

Then the permissions boundary, and, when topology.yaml has service_connect_tls, the CA
(`ca_problems`, also run by `bootstrap`). All problems are collected and reported together
(`PreflightFailed`), one line each, exit 2, before anything is written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from generator.awsfacts import quotas
from generator.ops import files
from generator.ops.aws import error_code, error_message
from generator.ops.stackflow import StackBlocked, check_deployable

# The tag AWS's managed policy for the Service Connect TLS infrastructure role
# (AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity, the policy the
# cluster stack's TLS role carries) conditions every acm-pca statement on:
#   "Action": ["acm-pca:GetCertificate", "acm-pca:GetCertificateAuthorityCertificate",
#              "acm-pca:DescribeCertificateAuthority"], "Resource": "*",
#   "Condition": {"StringEquals": {"aws:ResourceTag/AmazonECSManaged": "true"}}
# and the same condition on acm-pca:IssueCertificate
# (https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity.html).
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-connect-tls.html:
# "There are additional IAM permissions required to issue certificates. Amazon ECS provides
# a managed resource trust policy that outlines the set of permissions. For more information
# about this policy, see AmazonECSInfrastructureRolePolicyForServiceConnectTransportLayerSecurity."
# An untagged CA therefore issues no certificate to ECS, and the services never start.
ECS_MANAGED_TAG = ("AmazonECSManaged", "true")
# The same page: "AWS Private Certificate Authority can run in two modes: general purpose
# and short-lived. ... While Amazon ECS supports both modes, we recommend using short-lived
# certificates." So UsageMode is not checked. Of the CA statuses, only ACTIVE has "Yes"
# under "Issue certificates" (https://docs.aws.amazon.com/privateca/latest/userguide/PcaUpdateStatus.html),
# so the status is.
CA_ACTIVE = "ACTIVE"
CA_STATUS_ADVICE = {
    "PENDING_CERTIFICATE": "install its CA certificate first (console: AWS Private CA > "
                           "the CA > Actions > Install CA certificate)",
    "DISABLED": "enable it: aws acm-pca update-certificate-authority "
                "--certificate-authority-arn {arn} --status ACTIVE",
    "EXPIRED": "its CA certificate expired: install a new one, or point "
               "service_connect_tls.private_ca_arn at an ACTIVE CA",
    "DELETED": "restore it (aws acm-pca restore-certificate-authority "
               "--certificate-authority-arn {arn}) or point service_connect_tls.private_ca_arn "
               "at an ACTIVE CA",
}
CA_MISSING_CODES = ("ResourceNotFoundException", "InvalidArnException")
CA_DENIED_CODES = ("AccessDenied", "AccessDeniedException")


class PreflightFailed(Exception):
    """The inputs of a run are wrong; `problems` are the one-line messages, str() all of
    them, one per line."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class StackInput:
    """One stack the run will deploy, as the preflight checks it."""

    stack_name: str
    template: str  # file name under the templates directory
    # Parameters the deployer passes itself (flags, live values, the image, deploy values).
    given: frozenset[str]
    params_file: files.ParamsFile | None = None  # the file whose Parameters it takes
    # Parameter -> how the operator gives it (e.g. "--vpc-id") when it is missing.
    hints: Mapping[str, str] = field(default_factory=dict)
    # Why the stack needs what a new stack needs ("the cluster stack does not exist yet").
    state: str = ""
    # A failed first create's parameter values, shown beside what is missing.
    failed_values: Mapping[str, str] = field(default_factory=dict)
    # The stack as DescribeStacks returns it now (None: there is none).
    current: dict | None = None


def read_templates(directory: Path, names: Iterable[str],
                   problems: list[str]) -> dict[str, files.Template]:
    """The templates that read and parse; one problem line for each that does not."""
    templates = {}
    for name in dict.fromkeys(names):
        try:
            templates[name] = files.read_template(directory, name)
        except files.FilesProblem as err:
            problems.append(str(err))
    return templates


def read_params(directory: Path, services: Iterable[str],
                problems: list[str], environment: str | None = None
                ) -> dict[str, files.ParamsFile]:
    found = {}
    for service in services:
        try:
            found[service] = files.read_params(directory, service, environment)
        except files.FilesProblem as err:
            problems.append(str(err))
    return found


def stack_problems(stacks: Iterable[StackInput],
                   templates: Mapping[str, files.Template]) -> list[str]:
    """Params file keys and required parameters of every stack; the same gap in several
    stacks (a new service's image) is one line naming them all."""
    problems: list[str] = []
    missing_lines: dict[tuple, list[str]] = {}
    for stack in stacks:
        try:
            check_deployable(stack.current)
        except StackBlocked as blocked:
            problems.append(str(blocked))
        template = templates.get(stack.template)
        if template is None:
            continue  # its own problem line is already there
        from_file = set(stack.params_file.parameters) if stack.params_file else set()
        unknown = sorted(from_file - set(template.parameters))
        if unknown:
            problems.append(f"{stack.params_file.path}: not parameters of {template.path.name}: "
                            f"{', '.join(unknown)} (run `python -m generator generate`)")
        missing = [name for name in template.parameters
                   if not template.has_default(name) and name not in stack.given
                   and name not in from_file]
        if not missing:
            continue
        hints = list(dict.fromkeys(
            stack.hints.get(name) or (f"add it to {stack.params_file.path} (run `python -m "
                                      "generator generate`)" if stack.params_file
                                      else "regenerate the templates with this version "
                                           "(`python -m generator generate`)")
            for name in missing))
        had = ", ".join(f"{name}={stack.failed_values[name]}" for name in missing
                        if stack.failed_values.get(name))
        key = (tuple(missing), stack.state, tuple(hints), had)
        missing_lines.setdefault(key, []).append(stack.stack_name)
    for (missing, state, hints, had), stack_names in missing_lines.items():
        because = f": {state}, so" if state else ":"
        flags = [hint for hint in hints if hint.startswith("--")]
        todo = "; ".join(([f"pass {' '.join(flags)}"] if flags else [])
                         + [hint for hint in hints if not hint.startswith("--")])
        problems.append(f"{', '.join(stack_names)}: {', '.join(missing)} not given{because} "
                        f"{todo}" + (f" (its failed create had {had})" if had else ""))
    return problems


# A managed policy's ARN (AWS or customer managed), which is what sets a permissions
# boundary (https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html;
# ARN form: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns).
POLICY_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]+$")


def boundary_problems(arn: str) -> list[str]:
    """Every role a service stack creates carries the boundary: a wrong ARN would fail
    each of them, stack after stack."""
    if POLICY_ARN.match(arn):
        return []
    return [f"permissions boundary {arn!r} is not an IAM policy ARN "
            "(arn:aws:iam::<account>:policy/<name>): check --permissions-boundary or the "
            "bootstrap stack's outputs"]


def size_problems(templates: Iterable[files.Template], bucket: str | None) -> list[str]:
    """A body past CloudFormation's inline limit goes through the bucket, up to the URL
    limit (generator.awsfacts.quotas)."""
    problems = []
    for template in templates:
        size = len(template.body.encode("utf-8"))
        if size <= quotas.TEMPLATE_BODY_BYTES.limit:
            continue
        if size > quotas.TEMPLATE_URL_BYTES.limit:
            problems.append(f"{template.path}: {size} bytes is over CloudFormation's "
                            f"{quotas.TEMPLATE_URL_BYTES.limit:,}-byte limit")
        elif not bucket:
            problems.append(
                f"{template.path}: {size} bytes is over CloudFormation's "
                f"{quotas.TEMPLATE_BODY_BYTES.limit:,}-byte inline limit and there is no "
                "bucket to upload it to: run `python -m generator bootstrap` first, or "
                "pass --template-bucket NAME")
    return problems


def ca_problems(acmpca, arn: str) -> list[str]:
    """The Service Connect TLS CA: it exists, is ACTIVE and carries AmazonECSManaged=true.

    Reads only (DescribeCertificateAuthority, ListTags). A CA that cannot be read (absent,
    or not readable by these credentials) is a problem line too; any other AWS error
    propagates to the caller's one-line error."""
    where = f"service_connect_tls.private_ca_arn {arn}"
    # DescribeCertificateAuthority "Lists information about your private certificate
    # authority (CA) or one that has been shared with you"
    # (https://docs.aws.amazon.com/privateca/latest/APIReference/API_DescribeCertificateAuthority.html).
    try:
        described = acmpca.describe_certificate_authority(CertificateAuthorityArn=arn)
    except Exception as err:
        code = error_code(err)
        if code in CA_MISSING_CODES:
            return [f"{where}: no such CA in {acmpca.meta.region_name} ({code}): check the ARN "
                    "in topology.yaml (a CA of another account must be shared with this one)"]
        if code in CA_DENIED_CODES:
            return [f"{where}: cannot read the CA ({code}: {error_message(err)}): allow "
                    "acm-pca:DescribeCertificateAuthority and acm-pca:ListTags on it"]
        raise
    problems = []
    status = described["CertificateAuthority"].get("Status", "?")
    if status != CA_ACTIVE:
        advice = CA_STATUS_ADVICE.get(status, "make it ACTIVE or point "
                                              "service_connect_tls.private_ca_arn at an ACTIVE CA")
        problems.append(f"{where}: the CA is {status}, not ACTIVE, so ECS cannot issue "
                        f"Service Connect certificates from it: {advice.format(arn=arn)}")
    tags = _ca_tags(acmpca, arn)
    key, value = ECS_MANAGED_TAG
    if tags.get(key) != value:
        now = f"it has {key}={tags[key]}" if key in tags else f"it has no {key} tag"
        problems.append(
            f"{where}: {now}; ECS's Service Connect TLS role may use only a CA tagged "
            f"{key}={value}: aws acm-pca tag-certificate-authority "
            f"--certificate-authority-arn {arn} --tags Key={key},Value={value}")
    return problems


def _ca_tags(acmpca, arn: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    arguments = {"CertificateAuthorityArn": arn}
    while True:
        page = acmpca.list_tags(**arguments)
        tags.update({t["Key"]: t.get("Value", "") for t in page.get("Tags", [])})
        if not page.get("NextToken"):
            return tags
        arguments["NextToken"] = page["NextToken"]
