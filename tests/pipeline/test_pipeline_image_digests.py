"""Issue 16 item 3, build once: images.json pins each image by the digest ECR recorded for
its tag, read back after the push (ecr describe-images' imageDigest,
https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_ImageDetail.html), so every
environment deploys the bytes the first one verified. (The whole step, with fakes on PATH:
tests/workloads/test_workloads_build_images.py.)"""
from __future__ import annotations

import json
import subprocess

import pytest

from generator import topology as topology_module
from pipeline import build_images

REPOSITORY = "111111111111.dkr.ecr.eu-west-1.amazonaws.com/shop/service-0a1b2c3d"
DIGEST = "sha256:" + "ab" * 32


class FakeTools:
    """Stands in for pipeline.build_images._run: ECR knows the tags in `pushed` (with
    `answer` as describe-images' output), and a `docker push` adds its tag."""

    def __init__(self, pushed=(), answer=None):
        self.pushed, self.answer, self.calls = set(pushed), answer, []

    def __call__(self, argv, *, stdin=None, capture=False, check=True):
        self.calls.append(argv[1:])
        out = ""
        if argv[1:3] == ["ecr", "describe-images"]:
            tag = argv[argv.index("--image-ids") + 1].split("=", 1)[1]
            if tag not in self.pushed:
                return subprocess.CompletedProcess(argv, 254, "", "")
            out = self.answer if self.answer is not None else json.dumps(
                {"imageDetails": [{"imageTags": [tag], "imageDigest": DIGEST}]})
        elif argv[1:2] == ["push"]:
            self.pushed.add(argv[2].rsplit(":", 1)[1])
        return subprocess.CompletedProcess(argv, 0, out, "")


@pytest.fixture
def seed(repo_root):
    return topology_module.load(repo_root / "topology.yaml")


def _build(monkeypatch, tmp_path, topology, tools):
    monkeypatch.setattr(build_images, "_run", tools)
    monkeypatch.setattr(build_images, "_tool", lambda name: name)
    path = tmp_path / "images.json"
    code = build_images.build(topology, REPOSITORY, "0" * 40, path)
    return code, path


def test_a_new_image_is_pinned_by_the_digest_read_back_after_its_push(monkeypatch, tmp_path, seed):
    tools = FakeTools()
    code, path = _build(monkeypatch, tmp_path, seed, tools)
    assert code == 0
    (image,) = build_images.images(seed)
    assert json.loads(path.read_text()) == {
        service.name: f"{REPOSITORY}@{DIGEST}" for service in seed.services}
    describes = [i for i, c in enumerate(tools.calls) if c[:2] == ["ecr", "describe-images"]]
    pushes = [i for i, c in enumerate(tools.calls) if c[:1] == ["push"]]
    # Asked before (is it there?) and after the push (what did ECR record?).
    assert len(describes) == 2 and describes[0] < pushes[0] < describes[1]
    assert tools.calls[pushes[0]] == ["push", image.uri(REPOSITORY)]


def test_an_image_already_pushed_is_pinned_without_a_build(monkeypatch, tmp_path, seed):
    (image,) = build_images.images(seed)
    tools = FakeTools(pushed={image.tag})
    code, path = _build(monkeypatch, tmp_path, seed, tools)
    assert code == 0
    assert not [c for c in tools.calls if c[:1] in (["build"], ["push"])]
    assert set(json.loads(path.read_text()).values()) == {f"{REPOSITORY}@{DIGEST}"}


@pytest.mark.parametrize("answer", [
    json.dumps({"imageDetails": []}),
    json.dumps({"imageDetails": [{"imageDigest": "sha256:short"}]}),
    "not json",
])
def test_an_answer_without_a_digest_fails_and_writes_nothing(monkeypatch, tmp_path, seed, answer):
    (image,) = build_images.images(seed)
    tools = FakeTools(pushed={image.tag}, answer=answer)
    with pytest.raises(build_images.BuildError, match="no sha256 image digest"):
        _build(monkeypatch, tmp_path, seed, tools)
    assert not (tmp_path / "images.json").exists()
