"""The dashboard tests reuse the moto server and the projects of tests/ops, and the
two-environment topology of tests/environments."""
from tests.environments.conftest import two_environments, two_environments_text  # noqa: F401
from tests.ops.conftest import boto, moto, moto_server, project, project_factory, run  # noqa: F401
