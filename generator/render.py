"""Topology -> the bytes of every file under templates/, and writing them all or nothing.

Same topology, same bytes: the committed templates/ are golden files that
`generate --check` compares against.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import cfn_flip
from troposphere import Template

from generator import dashboard, fingerprint, params
from generator.stacks import bootstrap, cluster, ingress, network, service
from generator.topology import Topology

HEADER = "# Generated from topology.yaml by `python -m generator generate`; do not edit.\n"
PARAMS_DIR = "params"


def _stacks() -> dict[str, Callable[[Topology], Template]]:
    """Every template but bootstrap.yaml, which is built from these (bootstrap_template)."""
    from pipeline import stack as pipeline_stack  # the pipeline is a stack like the others

    return {
        "cluster.yaml": cluster.build,
        "network.yaml": network.build,
        "ingress.yaml": ingress.build,
        "service.yaml": service.build,
        "pipeline.yaml": pipeline_stack.build,
    }


def bootstrap_template(topology: Topology) -> Template:
    """bootstrap.yaml's Template: its deploy role covers the types of every other template."""
    deployed = {name: build(topology).to_dict() for name, build in _stacks().items()}
    return bootstrap.build(topology, deployed)


def template_bytes(template: Template) -> bytes:
    return _yaml_bytes(template.to_dict())


def _yaml_bytes(document: dict) -> bytes:
    # What Template.to_yaml() emits (its JSON, then cfn-flip), from a dict built once, with
    # the template's fingerprint at the end of its Description (generator.fingerprint).
    if "Description" in document:
        document = {**document,
                    "Description": fingerprint.with_placeholder(document["Description"])}
    text = json.dumps(document, indent=1, sort_keys=True, separators=(",", ": "))
    long_form = _has_lone_for_each(document)
    body = HEADER + cfn_flip.to_yaml(text, clean_up=False, long_form=long_form)
    if "Description" in document:
        body = fingerprint.stamp(body)
    return body.encode("utf-8")


def _has_lone_for_each(node) -> bool:
    """True when a mapping's only key is `Fn::ForEach::<Loop>`. cfn-flip (1.3) writes any
    one-key `Fn::` mapping in short form, which would make it `!ForEach::<Loop>`: a tag
    CloudFormation does not document (Fn::ForEach's YAML is the long form only,
    intrinsic-function-reference-foreach.html). Such a template is written in long form."""
    if isinstance(node, list):
        return any(_has_lone_for_each(item) for item in node)
    if not isinstance(node, dict):
        return False
    if len(node) == 1 and str(next(iter(node))).startswith("Fn::ForEach::"):
        return True
    return any(_has_lone_for_each(value) for value in node.values())


def json_bytes(document: dict) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("utf-8")


def render(topology: Topology) -> dict[str, bytes]:
    """Relative path (POSIX) -> content, for every generated file."""
    return render_with_documents(topology)[0]


def render_with_documents(topology: Topology) -> tuple[dict[str, bytes], dict[str, dict]]:
    """The files, and each template as the dict it was written from (long-form
    intrinsics), so checks need not parse the YAML back."""
    deployed = {name: build(topology).to_dict() for name, build in _stacks().items()}
    documents = {"bootstrap.yaml": bootstrap.build(topology, deployed).to_dict(), **deployed}
    files = {name: _yaml_bytes(document) for name, document in documents.items()}
    for deployment in topology.deployments:
        for svc in deployment.services:
            files[params_path(deployment, svc.name)] = json_bytes(
                params.configuration(deployment, svc))
    # Each deployment's CloudWatch dashboards: bodies `deploy` puts (generator.dashboard).
    files.update(dashboard.render(topology))
    return dict(sorted(files.items())), documents


def params_path(topology: Topology, service: str) -> str:
    """params/<service>.json, or params/<env>/<service>.json for an environment's."""
    if topology.environment is None:
        return f"{PARAMS_DIR}/{service}.json"
    return f"{PARAMS_DIR}/{topology.environment.name}/{service}.json"


def stale_files(out_dir: Path, files: dict[str, bytes], orphans: bool = True) -> list[str]:
    """Files that differ from `files`, are missing, or (`orphans`) are params files no
    service owns or dashboards no deployment has."""
    differing = []
    for relative, content in files.items():
        path = out_dir / relative
        if not path.is_file() or path.read_bytes() != content:
            differing.append(relative)
    return sorted(differing + (orphaned_params(out_dir, files) if orphans else []))


def orphaned_params(out_dir: Path, files: dict[str, bytes]) -> list[str]:
    """Generated files on disk that `files` no longer has: params files, dashboards."""
    found = []
    for directory, patterns in ((PARAMS_DIR, ("*.json", "*/*.json")),
                                (dashboard.DIRECTORY, ("*.json",))):
        if (out_dir / directory).is_dir():
            found += [path.relative_to(out_dir).as_posix()
                      for pattern in patterns for path in (out_dir / directory).glob(pattern)]
    return sorted(relative for relative in found if relative not in files)


def write(out_dir: Path, files: dict[str, bytes], orphans: bool = True) -> list[str]:
    """Write changed files atomically (temp file + rename); return what changed.

    Everything is rendered before this is called, so bad input never reaches the disk.
    """
    changed = stale_files(out_dir, files, orphans)
    for relative in changed:
        path = out_dir / relative
        if relative not in files:
            path.unlink()
            if (path.parent not in (out_dir / PARAMS_DIR, out_dir / dashboard.DIRECTORY)
                    and not any(path.parent.iterdir())):
                path.parent.rmdir()  # a removed environment's params directory
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(files[relative])
            os.chmod(temp, 0o644)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    return changed
