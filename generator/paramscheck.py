"""Each templates/params/<service>.json checked against service.yaml's own contract:
its Parameters (keys, AllowedValues, patterns, bounds) and its Rules (e.g. Fargate's
cpu/memory pairs), which cfn-lint cannot apply once the values are parameters.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cfn_flip

from generator.awsfacts.quotas import PARAMETER_VALUE_BYTES
from generator.lintreport import Finding
from generator.names import DEPLOY_TIME_PARAMETERS


def service_contract(template_path: Path) -> tuple[dict, dict]:
    # cfn-flip (troposphere's own YAML layer) reads !Ref-style short forms as long forms.
    document = cfn_flip.load_yaml(template_path.read_text(encoding="utf-8"))
    return dict(document.get("Parameters", {})), dict(document.get("Rules", {}))


def check_params_file(path: Path, parameters: dict, rules: dict) -> list[Finding]:
    return check_params_text(str(path), path.read_text(encoding="utf-8"), parameters, rules)


def check_params_text(path: str, text: str, parameters: dict, rules: dict) -> list[Finding]:
    """The checks of check_params_file on a params file's text, before it is written."""
    def finding(rule: str, message: str, line: int = 1) -> Finding:
        return Finding(str(path), line, 1, rule, "error", message)

    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        return [Finding(str(path), err.lineno, err.colno, "P1000", "error",
                        f"not valid JSON: {err.msg}")]
    if not isinstance(document, dict) or not isinstance(document.get("Parameters"), dict):
        return [finding("P1000", 'expected {"Parameters": {...}, "Tags": {...}}')]
    unexpected = sorted(set(document) - {"Parameters", "Tags", "StackPolicy"})
    findings = [finding("P1000", f"unknown top-level key '{key}'") for key in unexpected]
    values = document["Parameters"]

    def line_of(key: str) -> int:
        match = re.search(r'^\s*"%s"\s*:' % re.escape(key), text, re.MULTILINE)
        return text.count("\n", 0, match.start()) + 1 if match else 1

    for key, value in values.items():
        if key not in parameters:
            findings.append(finding("P1001", f"'{key}' is not a parameter of service.yaml",
                                    line_of(key)))
            continue
        problem = parameter_problem(parameters[key], value)
        if problem:
            findings.append(finding("P1002", f"{key}: {problem}", line_of(key)))
    if values.get("PublicLoadBalancer") == "true" and not values.get("CertificateArn"):
        # Not a failure (an HTTP-only public service is allowed), so not level "warning",
        # which fails lint; reported on every lint all the same.
        findings.append(Finding(str(path), line_of("PublicLoadBalancer"), 1, "P2001",
                                "informational",
                                "warning: public load balancer without CertificateArn serves "
                                "HTTP only; give the service a certificate_arn in "
                                "topology.yaml for HTTPS"))
    for key, spec in parameters.items():
        if key not in values and "Default" not in spec and key not in DEPLOY_TIME_PARAMETERS:
            findings.append(finding("P1003", f"required parameter '{key}' is missing"))
    resolved = {key: str(spec["Default"]) for key, spec in parameters.items() if "Default" in spec}
    resolved.update({key: str(value) for key, value in values.items()})
    # A deploy-time parameter is not in the file and its template Default is not what the
    # deploy passes: unknown here, so no rule is decided on it.
    for key in DEPLOY_TIME_PARAMETERS:
        if key not in values:
            resolved.pop(key, None)
    for name, rule in rules.items():
        if _evaluate(rule.get("RuleCondition", True), resolved) is not True:
            continue
        for assertion in rule.get("Assertions", []):
            if _evaluate(assertion["Assert"], resolved) is False:
                description = assertion.get("AssertDescription", "assertion failed")
                findings.append(finding("P1004", f"rule {name}: {description}"))
    return findings


def parameter_problem(spec: dict, value: Any) -> str | None:
    if not isinstance(value, str):
        return f"value must be a string, got {json.dumps(value)}"
    size = len(value.encode("utf-8"))
    if size > PARAMETER_VALUE_BYTES.limit:
        return (f"{size:,} bytes, over CloudFormation's {PARAMETER_VALUE_BYTES.limit:,}-byte "
                f"limit for a parameter value ({PARAMETER_VALUE_BYTES.source})")
    # A CommaDelimitedList's AllowedValues and AllowedPattern apply to each item, not to
    # the joined value (CloudFormation's Parameters section reference, AllowedPattern:
    # "When applied to a parameter of type CommaDelimitedList, the pattern must match
    # each value in the list").
    items = value.split(",") if spec.get("Type") == "CommaDelimitedList" else [value]
    allowed = spec.get("AllowedValues")
    pattern = spec.get("AllowedPattern")
    for item in items:
        if allowed is not None and item not in [str(v) for v in allowed]:
            return f"{item!r} is not one of {', '.join(map(str, allowed))}"
        if pattern is not None and not re.fullmatch(pattern, item):
            return f"{item!r} does not match {pattern}"
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            return f"{value!r} is not a number"
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return f"{value} is below the minimum {spec['MinValue']}"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return f"{value} is above the maximum {spec['MaxValue']}"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"longer than {spec['MaxLength']} characters"
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"shorter than {spec['MinLength']} characters"
    return None


def _evaluate(expression: Any, values: dict[str, str]) -> Any:
    """The subset of CloudFormation's rule functions our templates use; None = unknown."""
    if not isinstance(expression, dict) or len(expression) != 1:
        return expression
    (function, argument), = expression.items()
    if function == "Ref":
        return values.get(argument)
    args = [_evaluate(arg, values) for arg in argument] if isinstance(argument, list) else []
    if function == "Fn::Equals" and len(args) == 2 and None not in args:
        return str(args[0]) == str(args[1])
    if function == "Fn::Contains" and len(args) == 2 and None not in args:
        return str(args[1]) in [str(item) for item in args[0]]
    if function == "Fn::Not" and len(args) == 1 and isinstance(args[0], bool):
        return not args[0]
    if function in ("Fn::And", "Fn::Or") and all(isinstance(a, bool) for a in args):
        return all(args) if function == "Fn::And" else any(args)
    return None
