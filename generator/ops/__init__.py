"""The boto3 commands: bootstrap, deploy, verify and status.

Nothing here is imported by `generate`, `lint` or `plan`; boto3 is imported only when
one of these commands runs.
"""
