"""generator.fingerprint: every generated template states the digest of its own body."""
from __future__ import annotations

import pytest

from generator import fingerprint, render


@pytest.fixture(scope="module")
def default_files(default_topology):
    return render.render(default_topology)


def test_every_generated_template_states_its_own_fingerprint(default_files):
    templates = {name: body.decode() for name, body in default_files.items()
                 if name.endswith(".yaml")}
    assert templates
    for name, body in templates.items():
        assert fingerprint.PLACEHOLDER not in body, name
        stated = fingerprint.of_description(body)
        assert stated is not None and stated == fingerprint.of_body(body), name


def test_any_change_to_a_body_changes_its_fingerprint(default_files):
    body = default_files["service.yaml"].decode()
    edited = body.replace("Fargate", "fargate", 1)
    assert edited != body
    assert fingerprint.of_body(edited) != fingerprint.of_body(body)
    # The edited body still states the old one, so it never matches what it claims.
    assert fingerprint.of_description(edited) != fingerprint.of_body(edited)


def test_a_body_without_a_placeholder_cannot_be_stamped_and_has_no_fingerprint():
    with pytest.raises(ValueError):
        fingerprint.stamp('{"Description": "x"}')
    assert fingerprint.of_body('{"Description": "x"}') is None
    assert fingerprint.of_description("no fingerprint here") is None
    assert fingerprint.of_description(None) is None
