"""Reads what the pipeline deploys: the templates and the params files under templates/."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

CLUSTER_TEMPLATE = "cluster.yaml"
SERVICE_TEMPLATE = "service.yaml"
NETWORK_TEMPLATE = "network.yaml"
INGRESS_TEMPLATE = "ingress.yaml"
BOOTSTRAP_TEMPLATE = "bootstrap.yaml"
PIPELINE_TEMPLATE = "pipeline.yaml"
PARAMS_DIR = "params"


class FilesProblem(Exception):
    """A template or params file that cannot be used; str() is the one-line message."""


@dataclass(frozen=True)
class Template:
    path: Path
    body: str
    # Parameter name -> its declaration (Type, Default, ...), in template order.
    parameters: dict

    def has_default(self, name: str) -> bool:
        return "Default" in self.parameters.get(name, {})


@dataclass(frozen=True)
class ParamsFile:
    path: Path
    parameters: dict[str, str]
    tags: dict[str, str]


class _TolerantLoader(yaml.SafeLoader):
    """Enough YAML to read Parameters: CloudFormation's !Ref-style tags become plain values."""


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


_TolerantLoader.add_multi_constructor("!", _any_tag)


def read_template(directory: Path, name: str) -> Template:
    path = Path(directory) / name
    try:
        body = path.read_text(encoding="utf-8")
        document = yaml.load(body, Loader=_TolerantLoader)  # noqa: S506 - SafeLoader subclass
    except FileNotFoundError:
        raise FilesProblem(f"{path}: not found; run `python -m generator generate` first") from None
    except (OSError, yaml.YAMLError) as err:
        raise FilesProblem(f"{path}: cannot read: {' '.join(str(err).split())}") from None
    if not isinstance(document, dict):
        raise FilesProblem(f"{path}: not a CloudFormation template")
    return Template(path, body, dict(document.get("Parameters") or {}))


def read_params(directory: Path, service: str, environment: str | None = None) -> ParamsFile:
    """params/<service>.json, or an environment's params/<environment>/<service>.json."""
    params_dir = Path(directory) / PARAMS_DIR
    path = (params_dir / environment if environment else params_dir) / f"{service}.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FilesProblem(f"{path}: not found; run `python -m generator generate` first") from None
    except (OSError, ValueError) as err:
        raise FilesProblem(f"{path}: cannot read: {err}") from None
    if not isinstance(document, dict) or not isinstance(document.get("Parameters"), dict):
        raise FilesProblem(f"{path}: expected {{\"Parameters\": {{...}}, \"Tags\": {{...}}}}")
    return ParamsFile(
        path,
        {key: str(value) for key, value in document["Parameters"].items()},
        {key: str(value) for key, value in (document.get("Tags") or {}).items()},
    )
