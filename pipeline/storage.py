"""The pipeline stack's storage: the artifact bucket and its policy, the image repository,
and the artifact store's encryption (pipeline.crossaccount's key when an environment is in
another account, https://docs.aws.amazon.com/codepipeline/latest/userguide/pipelines-create-cross-account.html)."""
from __future__ import annotations

import json

from awacs.aws import Action, Bool, Condition, Deny, PolicyDocument, Statement
from awacs.aws import Principal as AwsPrincipal
from troposphere import AWS_NO_VALUE, GetAtt, If, Join, Ref, Sub
from troposphere import codepipeline, ecr, s3

from generator import names
from generator.topology import Topology
from pipeline import crossaccount, iam


def _bucket_encryption(topology: Topology) -> s3.BucketEncryption:
    s3_managed = s3.ServerSideEncryptionRule(
        ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(SSEAlgorithm="AES256"))
    if not topology.environments:
        return s3.BucketEncryption(ServerSideEncryptionConfiguration=[s3_managed])
    # Another account can read an object only with a key it is granted: the stack's own
    # key when an environment is elsewhere (pipeline.crossaccount).
    with_key = s3.ServerSideEncryptionRule(
        BucketKeyEnabled=True,
        ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(
            SSEAlgorithm="aws:kms", KMSMasterKeyID=crossaccount.key_arn()))
    return s3.BucketEncryption(ServerSideEncryptionConfiguration=[
        If(crossaccount.CROSS_ACCOUNT, with_key, s3_managed)])


def artifact_bucket(topology: Topology) -> s3.Bucket:
    # Kept when the stack goes: a non-empty bucket would fail the stack's deletion anyway.
    return s3.Bucket(
        iam.ARTIFACT_BUCKET,
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
        BucketEncryption=_bucket_encryption(topology),
        VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
        PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True,
            RestrictPublicBuckets=True,
        ),
        OwnershipControls=s3.OwnershipControls(
            Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
        LifecycleConfiguration=s3.LifecycleConfiguration(Rules=[
            s3.LifecycleRule(
                Id="expire-old-artifacts", Status="Enabled",
                ExpirationInDays=Ref("ArtifactRetentionDays"),
                NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(NoncurrentDays=7),
                AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                    DaysAfterInitiation=1),
            ),
        ]),
    )


# A TLS-only policy is usually one Deny of "s3:*"; this project allows no "*" action, so
# the Deny lists every action any principal here performs on the bucket, and more.


def artifact_bucket_policy(topology: Topology) -> s3.BucketPolicy:
    bucket_arn = GetAtt(iam.ARTIFACT_BUCKET, "Arn")
    grants = (crossaccount.artifact_read_statements(topology, iam.ARTIFACT_BUCKET)
              if topology.environments else [])
    policy = s3.BucketPolicy(
        "ArtifactBucketPolicy",
        Bucket=Ref(iam.ARTIFACT_BUCKET),
        PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[Statement(
            Sid="DenyInsecureTransport",
            Effect=Deny,
            Principal=AwsPrincipal("*"),
            # A Deny grants nothing, so every S3 action is refused without TLS (AWS's
            # TLS-only pattern); the roles' Allow statements never use a wildcard action.
            Action=[Action("s3", "*")],
            Resource=[bucket_arn, Sub("${%s.Arn}/*" % iam.ARTIFACT_BUCKET)],
            Condition=Condition(Bool("aws:SecureTransport", "false")),
        )] + grants),
    )
    if grants:
        # The grants name accounts only where one differs from this stack's
        # (crossaccount.conditions); with none, the TLS rule stays alone.
        policy.PolicyDocument = If(crossaccount.CROSS_ACCOUNT, policy.PolicyDocument,
                                   PolicyDocument(Version="2012-10-17",
                                                  Statement=policy.PolicyDocument.Statement[:1]))
    return policy


def image_repository(topology: Topology) -> ecr.Repository:
    lifecycle = {"rules": [{
        "rulePriority": 1,
        "description": "keep the most recent ImagesToKeep images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                      "countNumber": "${ImagesToKeep}"},
        "action": {"type": "expire"},
    }]}
    # countNumber must be a JSON number: substitute the parameter without quotes.
    text = json.dumps(lifecycle, sort_keys=True).replace('"${ImagesToKeep}"', "${ImagesToKeep}")
    # Kept when the stack goes: running tasks and rollbacks still pull these images.
    repository = ecr.Repository(
        iam.IMAGE_REPOSITORY,
        DeletionPolicy="Retain",
        UpdateReplacePolicy="Retain",
        RepositoryName=Join("", [names.image_repository(topology.app),
                                 names.stack_instance_suffix()]),
        ImageScanningConfiguration=ecr.ImageScanningConfiguration(ScanOnPush=True),
        ImageTagMutability="IMMUTABLE",
        EncryptionConfiguration=ecr.EncryptionConfiguration(EncryptionType="AES256"),
        LifecyclePolicy=ecr.LifecyclePolicy(LifecyclePolicyText=Sub(text)),
    )
    if topology.environments:
        # The environments in other accounts run these images: their execution roles
        # pull from here (repository-policy-examples.html, "Allow another account").
        repository.RepositoryPolicyText = If(crossaccount.CROSS_ACCOUNT,
                                             crossaccount.repository_policy(topology),
                                             Ref(AWS_NO_VALUE))
    return repository


def artifact_store(topology: Topology) -> codepipeline.ArtifactStore:
    store = codepipeline.ArtifactStore(Type="S3", Location=Ref(iam.ARTIFACT_BUCKET))
    if topology.environments:
        # https://docs.aws.amazon.com/codepipeline/latest/userguide/pipelines-create-cross-account.html:
        # artifacts another account reads are encrypted with a customer managed key.
        store.EncryptionKey = If(crossaccount.CROSS_ACCOUNT, codepipeline.EncryptionKey(
            Id=crossaccount.key_arn(), Type="KMS"), Ref(AWS_NO_VALUE))
    return store
