"""One place that turns flags and the usual AWS settings into boto3 clients, and
botocore's exceptions into the one-line messages an operator can act on."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

# Throttling is retried by botocore itself ("standard" mode: exponential backoff with
# jitter, throttling codes included), never by a loop of ours. Operators can raise it with
# --max-attempts or botocore's own AWS_MAX_ATTEMPTS.
DEFAULT_MAX_ATTEMPTS = 8
THROTTLING_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "SlowDown",
    "ProvisionedThroughputExceededException", "RequestThrottled",
})
ACCESS_DENIED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
})
# Errors common to all AWS APIs (https://docs.aws.amazon.com/awsconsolehelpdocs/latest/gsg/common-errors.html):
# "ExpiredTokenException: The security token included in the request is expired." (the
# query protocols, CloudFormation's among them, say ExpiredToken), and "RequestExpired: The
# request reached the service more than 15 minutes after the date stamp on the request ...,
# or the date stamp on the request is more than 15 minutes in the future" (a wrong clock).
# New credentials (or a right clock) fix them; permissions do not.
EXPIRED_CREDENTIALS_CODES = frozenset({
    "ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired",
})
# Credentials AWS does not recognise at all (a deleted or mistyped key, a wrong secret).
INVALID_CREDENTIALS_CODES = frozenset({
    "UnrecognizedClientException", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "AuthFailure", "InvalidSignatureException",
})
# What a connection problem that outlasted botocore's retries leaves behind, and what to do
# about it: the operations already started carry on in AWS, and every command here can run
# again (a deploy reports the stacks already changed as "no changes").
AFTER_A_DROPPED_CONNECTION = ("anything already started carries on in AWS; check with "
                              "`python -m generator status`, then run the same command again")
# botocore's socket timeouts (its defaults); module attributes so tests can shorten them.
CONNECT_TIMEOUT_SECONDS = 60
READ_TIMEOUT_SECONDS = 60


class AwsProblem(Exception):
    """An AWS call that cannot succeed as asked; str() is the one-line message.

    `exit_code` is 2 when the operator must fix their input or environment (credentials,
    region, permissions) and 1 when AWS refused or failed the operation itself.
    """

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Aws:
    """A boto3 session plus the settings every client shares.

    Every client of a command is made from this one session, with the same retries and
    endpoint.
    """

    session: Any
    config: Any
    endpoint_url: str | None

    @property
    def region(self) -> str:
        return self.session.region_name

    def client(self, service: str):
        kwargs = {"config": self.config}
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        return self.session.client(service, **kwargs)


def connect(region: str | None = None, profile: str | None = None,
            endpoint_url: str | None = None, max_attempts: int | None = None) -> Aws:
    """Session from flags, else the environment and ~/.aws; fails early with one line."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ProfileNotFound

    _check_environment()
    # botocore reads AWS_DEFAULT_REGION; the other SDKs (and CodeBuild) also set AWS_REGION.
    region = region or os.environ.get("AWS_REGION") or None
    try:
        session = boto3.Session(region_name=region, profile_name=profile)
    except ProfileNotFound as err:
        raise AwsProblem(f"{err} (check --profile / AWS_PROFILE and ~/.aws/config)", 2) from None
    if not session.region_name:
        raise AwsProblem(
            "no AWS region: pass --region, set AWS_REGION, or set a region in your profile", 2)
    if session.get_credentials() is None:
        raise AwsProblem(
            "no AWS credentials found: pass --profile, set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`", 2)
    # total_max_attempts counts the first call too (the Config key max_attempts does not),
    # which is what AWS_MAX_ATTEMPTS and our --max-attempts mean.
    retries: dict[str, Any] = {"mode": "standard"}
    if max_attempts is not None:
        retries["total_max_attempts"] = max_attempts
    elif not _env_sets_max_attempts():
        retries["total_max_attempts"] = DEFAULT_MAX_ATTEMPTS
    endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    # Some operations (Cloud Map's DiscoverInstances) prefix the host ("data-"); a local
    # endpoint such as moto's has no such host, so the prefix goes when the URL is explicit.
    config = Config(retries=retries, user_agent_extra="ecs-service-connect-kit",
                    inject_host_prefix=endpoint_url is None,
                    connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=READ_TIMEOUT_SECONDS)
    return Aws(session=session, config=config, endpoint_url=endpoint_url)


def _check_environment() -> None:
    """The AWS variables botocore would otherwise reject with a traceback, one line each."""
    attempts = os.environ.get("AWS_MAX_ATTEMPTS")
    if attempts and not (attempts.strip().isdigit() and int(attempts) >= 1):
        raise AwsProblem(f"environment: AWS_MAX_ATTEMPTS={attempts!r} is not a positive "
                         "integer", 2)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise AwsProblem(f"environment: AWS_ENDPOINT_URL={endpoint!r} is not an http(s) URL", 2)


def _env_sets_max_attempts() -> bool:
    return bool(os.environ.get("AWS_MAX_ATTEMPTS"))


def error_code(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    return response.get("Error", {}).get("Code", "")


def error_message(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    return " ".join(str(response.get("Error", {}).get("Message", err)).split())


def explain(err: Exception) -> AwsProblem | None:
    """The operator-facing problem for a botocore exception, or None if it is not one.

    botocore raises these only once its retries are spent ("standard" mode retries
    throttling, 5xx answers and connection errors: timeouts, resets, closed connections),
    so each message says what to do next, not "try again in a loop".
    """
    from botocore import exceptions as bx

    if isinstance(err, AwsProblem):
        return err
    if isinstance(err, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return AwsProblem("no AWS credentials found: pass --profile, set AWS_PROFILE or "
                          "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`", 2)
    if isinstance(err, bx.NoRegionError):
        return AwsProblem("no AWS region: pass --region, set AWS_REGION, or set a region "
                          "in your profile", 2)
    if isinstance(err, (bx.TokenRetrievalError, bx.SSOError, bx.CredentialRetrievalError)):
        return AwsProblem(f"AWS credentials expired or unreadable: {_one_line(err)} "
                          "(run `aws sso login`, or refresh the profile's credentials)", 2)
    if isinstance(err, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
        return AwsProblem(f"cannot reach AWS: {_one_line(err)} ({type(err).__name__}, after "
                          "retries): check the network, any proxy (HTTPS_PROXY), --region and "
                          f"--endpoint-url; {AFTER_A_DROPPED_CONNECTION}", 1)
    if isinstance(err, (bx.HTTPClientError, bx.ConnectionError)):
        # ConnectionClosedError, ReadTimeoutError, SSLError, ProxyConnectionError...
        return AwsProblem(f"lost the connection to AWS: {_one_line(err)} "
                          f"({type(err).__name__}, after retries); {AFTER_A_DROPPED_CONNECTION}",
                          1)
    if isinstance(err, bx.ClientError):
        code = error_code(err)
        operation = getattr(err, "operation_name", "the call")
        if code in EXPIRED_CREDENTIALS_CODES:
            clock = (" (or this machine's clock is off: check it)"
                     if code == "RequestExpired" else "")
            return AwsProblem(f"AWS credentials expired: {operation}: {code}: "
                              f"{error_message(err)}; refresh them (`aws sso login`, or new "
                              f"temporary credentials for the role){clock} and run again", 2)
        if code in INVALID_CREDENTIALS_CODES:
            return AwsProblem(f"AWS does not accept these credentials: {operation}: {code}: "
                              f"{error_message(err)} (check --profile / AWS_PROFILE and the "
                              "access key)", 2)
        if code in ACCESS_DENIED_CODES:
            return AwsProblem(f"access denied: {operation}: {error_message(err)} "
                              "(check the role or profile's permissions)", 2)
        metadata = err.response.get("ResponseMetadata", {})
        attempts = metadata.get("RetryAttempts", 0) + 1
        if metadata.get("RetryQuotaReached"):
            # botocore's standard mode stops retrying once a client's retry quota is spent,
            # whatever --max-attempts says.
            return AwsProblem(f"{operation} failed: {code}: {error_message(err)} (after "
                              f"{attempts} attempt(s): botocore's retry quota is spent, too "
                              "many calls failed in a row); wait a few minutes and run again; "
                              f"{AFTER_A_DROPPED_CONNECTION}", 1)
        if code in THROTTLING_CODES:
            return AwsProblem(f"AWS is throttling {operation} (still throttled after "
                              f"{attempts} attempts with backoff); wait a minute and run "
                              "again, or raise --max-attempts", 1)
        if metadata.get("HTTPStatusCode", 0) >= 500:
            return AwsProblem(f"AWS failed {operation}: {code}: {error_message(err)} (after "
                              f"{attempts} attempt(s)); run again in a few minutes; "
                              f"{AFTER_A_DROPPED_CONNECTION}", 1)
        return AwsProblem(f"{operation} failed: {code}: {error_message(err)}", 1)
    if isinstance(err, bx.BotoCoreError) and not isinstance(err, bx.ParamValidationError):
        return AwsProblem(f"AWS call failed: {type(err).__name__}: {_one_line(err)}", 1)
    return None


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split())


DEPLOYER, READER = "deployer", "reader"


def for_environment(aws: Aws, topology, say=lambda line: None, role: str = DEPLOYER) -> Aws:
    """The clients of an environment's account: these credentials when they are that
    account's, else the environment's `role` there (DEPLOYER to change it, READER to look),
    assumed from them.

    The role's credentials refresh themselves (botocore's assume-role fetcher, the one a
    profile with role_arn uses): a session assumed from another role's (CodeBuild's) is role
    chaining, which AWS limits to one hour
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_terms-and-concepts.html#iam-term-role-chaining),
    and a deploy of hundreds of services takes longer.
    """
    from generator import names

    environment = topology.environment
    if environment is None:
        return aws
    identity = aws.client("sts").get_caller_identity()
    if identity["Account"] == environment.account:
        return aws
    partition = identity["Arn"].split(":")[1]
    arn_of = (names.environment_deployer_role_arn if role == DEPLOYER
              else names.environment_reader_role_arn)
    role_arn = arn_of(topology.project_app, environment.account, partition)
    session = _assumed_session(aws, role_arn, f"{topology.project_app}-{environment.name}")
    assumed = Aws(session=session, config=aws.config, endpoint_url=aws.endpoint_url)
    try:
        account = assumed.client("sts").get_caller_identity()["Account"]
    except Exception as err:
        problem = explain(err)
        if problem is None:
            raise
        raise AwsProblem(
            f"environment {environment.name}: cannot assume {role_arn} from account "
            f"{identity['Account']}: {problem}; it trusts the pipeline's steps only: run this "
            f"with credentials of account {environment.account}, or bootstrap that account "
            f"for this pipeline: `python -m generator bootstrap --env {environment.name} "
            f"--trust {identity['Account']}`", 2) from None
    if account != environment.account:
        raise AwsProblem(f"environment {environment.name}: {role_arn} answered as account "
                         f"{account}, not {environment.account}", 2)
    say(f"environment {environment.name}: account {environment.account} as {role_arn} "
        f"(assumed from account {identity['Account']})")
    return assumed


def _assumed_session(aws: Aws, role_arn: str, session_name: str):
    import functools

    import boto3
    import botocore.session
    from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

    source = aws.session
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=functools.partial(source.client, region_name=source.region_name,
                                         endpoint_url=aws.endpoint_url, config=aws.config),
        source_credentials=source.get_credentials(), role_arn=role_arn,
        extra_args={"RoleSessionName": session_name[:64]})
    core = botocore.session.Session()
    # botocore has no public setter for a session's credentials; test_ops_environments
    # fails if this stops taking effect (its calls would land in the source account).
    core._credentials = DeferredRefreshableCredentials(  # noqa: SLF001
        method="assume-role", refresh_using=fetcher.fetch_credentials)
    return boto3.Session(botocore_session=core, region_name=source.region_name)
