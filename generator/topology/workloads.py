"""What runs in each service's container: its image (`build` or `image`), its health-check
command, its environment variables and its secrets. Checked here for the services section
and for each environment's overrides.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from generator.topology.fields import (
    SECRETSMANAGER_ARN_PATTERN, SSM_PARAMETER_ARN_PATTERN, Fields, join, kind,
)
from generator.topology.model import build_slug, secret_name

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A container image reference as Docker's distribution/reference grammar defines it:
# [domain[:port]/]path-component(/path-component)*[:tag][@digest]
# (https://github.com/distribution/reference/blob/main/reference.go). The same text is the
# service template's ImageUri AllowedPattern (Java regex: only constructs both share).
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:[.]{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE_PATTERN = (rf"^(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
                           rf"(?::{_TAG})?(?:@{_DIGEST})?$")
_IMAGE_REFERENCE = re.compile(IMAGE_REFERENCE_PATTERN)
MAX_IMAGE_REFERENCE = 1024
_BUILD_DIRECTORY = re.compile(r"^[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*$")
# A build directory's image tag is "<slug>-<40-hex commit>", at most 128 characters.
MAX_BUILD_SLUG = 80
_HEALTH_CHECK_KINDS = ("CMD", "CMD-SHELL")

# Environment variables the service template sets itself; a topology may not override them.
RESERVED_ENVIRONMENT = frozenset(
    {"SERVICE_NAME", "PORT", "PEER_URLS", "PEER_TIMEOUT_SECONDS", "HEALTH_CHECK_PATH"}
)


class WorkloadFields(Fields):
    def build_directory(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(where, "expected a directory path relative to the topology file")
        posix = value.strip().replace("\\", "/").rstrip("/")
        parts = [part for part in posix.split("/") if part not in ("", ".")]
        normal = "/".join(parts)
        if posix.startswith("/") or ".." in parts or not normal:
            raise self.fail(where, f"{value!r} must be a directory inside the topology file's "
                                   "directory (relative, no '..')")
        if not _BUILD_DIRECTORY.match(normal):
            raise self.fail(where, f"{value!r}: use letters, digits, '.', '_', '-' and '/'")
        if len(build_slug(normal)) > MAX_BUILD_SLUG:
            raise self.fail(where, f"{value!r} is longer than {MAX_BUILD_SLUG} characters (it "
                                   "becomes part of the image tag)")
        if self.check_paths:
            directory = Path(self.source).parent / normal
            if not directory.is_dir():
                raise self.fail(where, f"{normal}: no such directory (relative to "
                                       f"{Path(self.source).parent or '.'})")
            if not (directory / "Dockerfile").is_file():
                raise self.fail(where, f"{normal}: has no Dockerfile")
        return normal

    def image(self, value: Any, where: str) -> str:
        if (not isinstance(value, str) or len(value) > MAX_IMAGE_REFERENCE
                or not _IMAGE_REFERENCE.match(value)):
            shown = value if isinstance(value, str) else kind(value)
            raise self.fail(where, f"{shown!r} is not an image reference "
                                   "([registry/]repository[:tag][@digest])")
        return value

    def health_check_command(self, value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if (not isinstance(value, list) or len(value) < 2
                or not all(isinstance(item, str) and item for item in value)):
            raise self.fail(where, 'expected a list like [CMD-SHELL, "curl -f http://localhost/ '
                                   '|| exit 1"] or [CMD, executable, arg, ...]')
        if value[0] not in _HEALTH_CHECK_KINDS:
            raise self.fail(where, f"the first item must be CMD or CMD-SHELL, not {value[0]!r}")
        for index, item in enumerate(value):
            if "," in item:
                raise self.fail(f"{where}[{index}]", "commas are not supported: the command "
                                "reaches the template as a comma-delimited list")
            if item != item.strip():
                # CloudFormation trims each item of a CommaDelimitedList.
                raise self.fail(f"{where}[{index}]", "leading or trailing spaces would be "
                                "trimmed (a comma-delimited list parameter); remove them")
        return tuple(value)

    def secrets(self, value: Any, where: str, app: str) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping of NAME: secret or parameter ARN, got "
                                   f"{kind(value)}")
        pairs = []
        for name, arn in value.items():
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise self.fail(join(where, name), "not a valid environment variable name")
            if name in RESERVED_ENVIRONMENT:
                raise self.fail(join(where, name), "is set by the service template itself")
            if not isinstance(arn, str) or not (re.fullmatch(SECRETSMANAGER_ARN_PATTERN, arn)
                                                or re.fullmatch(SSM_PARAMETER_ARN_PATTERN, arn)):
                # The value itself may be a secret pasted by mistake: never echo it.
                raise self.fail(join(where, name), "expected a Secrets Manager secret ARN "
                                "(arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 "
                                "characters>) or an SSM parameter ARN (arn:aws:ssm:<region>:"
                                "<account>:parameter/<name>); the value is not shown")
            if not secret_name(arn).startswith(f"{app}/"):
                # The boundary lets the app's roles read these names only (issue 15):
                # another team's secret must not reach this app's containers.
                what = "secret" if ":secretsmanager:" in arn else "parameter"
                raise self.fail(join(where, name), f"the {what}'s name must start with "
                                f"'{app}/' (the app's own; a parameter may be '/{app}/...'), "
                                "so the app's roles may read it and no other team's")
            pairs.append((name, arn))
        return tuple(sorted(pairs))

    def environment(self, value: Any, where: str) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping of NAME: value, got {kind(value)}")
        pairs = []
        for name, raw_value in value.items():
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise self.fail(join(where, name), "not a valid environment variable name")
            if name in RESERVED_ENVIRONMENT:
                raise self.fail(join(where, name), "is set by the service template itself")
            if isinstance(raw_value, (dict, list)) or raw_value is None:
                raise self.fail(join(where, name), "expected a string, number or boolean")
            text = str(raw_value).lower() if isinstance(raw_value, bool) else str(raw_value)
            pairs.append((name, text))
        return tuple(sorted(pairs))
