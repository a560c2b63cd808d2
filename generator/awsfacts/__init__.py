"""AWS's own facts in one place: quotas, resource-provider schemas, update rules.

generate, lint, check-upgrade and deploy all read these; nothing restates them.
"""
