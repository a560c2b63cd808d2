"""Record every boto3 call a process makes, to check it against the declared operations
(generator.awsfacts.operations) that the CodeBuild steps' roles are derived from.

Uses botocore's event system: every client created while recording gets a
`before-call.*.*` handler (the event botocore emits right before it sends a request, with
the operation's model), whichever boto3 session creates it. moto's mocks answer after
this event, so calls against moto are recorded too.

In a test (tests/ops' conftest can import the fixture: `from iam.recording import
boto3_calls`, tests/ being on sys.path):

    def test_deploy_calls_only_what_the_role_allows(boto3_calls, ...):
        run_the_deploy()
        assert boto3_calls.operations <= operations.DEPLOY_OPERATIONS
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import botocore.session
import pytest


class BotoCallRecorder:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[str] = []  # "<boto3 client name>.<OperationName>", in call order

    @property
    def operations(self) -> set[str]:
        with self._lock:
            return set(self.calls)

    def _before_call(self, model, **_) -> None:
        with self._lock:
            self.calls.append(f"{model.service_model.service_name}.{model.name}")

    @contextlib.contextmanager
    def recording(self) -> Iterator["BotoCallRecorder"]:
        original = botocore.session.Session.create_client
        recorder = self

        def create_client(session, *args, **kwargs):
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-call.*.*", recorder._before_call)
            return client

        botocore.session.Session.create_client = create_client
        try:
            yield self
        finally:
            botocore.session.Session.create_client = original


@pytest.fixture
def boto3_calls() -> Iterator[BotoCallRecorder]:
    """Records the boto3 calls of clients created during the test."""
    with BotoCallRecorder().recording() as recorder:
        yield recorder
