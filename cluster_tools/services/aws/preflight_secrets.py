"""Pre-flight of third-party input credentials (an HCP key pair, an NDA token): they live in Secrets
Manager, referenced by ARN; the nodes read them at job time through their role. Checked here: each secret
exists (its value is never read), and the policies the nodes get (parallelcluster.additional_iam_policies)
allow secretsmanager:GetSecretValue on it, so a run does not fail on its first input.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import unquote

from cluster_tools.services.aws.preflight import AwsClients, Finding, aws_failure

GET_SECRET = "secretsmanager:GetSecretValue"


def check_secrets(clients: AwsClients, secret_ids: Sequence[str]) -> list[Finding]:
    """Each referenced secret exists and is not scheduled for deletion; its value is never read."""
    from cluster_tools.transport.aws_session import error_code

    if not secret_ids:
        return [Finding("ok", "secrets", "no third-party credentials referenced")]
    findings = []
    for secret in secret_ids:
        arn_region = secret.split(":")[3] if secret.startswith("arn:") and secret.count(":") >= 6 else None
        if arn_region and arn_region != clients.region:
            findings.append(
                Finding(
                    "warning",
                    "secrets",
                    f"secret {secret} is in {arn_region}, the cluster in {clients.region}: not checked here",
                    "keep the secret in the cluster's region",
                )
            )
            continue
        try:
            described = clients.secretsmanager.describe_secret(SecretId=secret)
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                findings.append(
                    Finding(
                        "error",
                        "secrets",
                        f"no secret {secret} in {clients.region}",
                        "store the credentials there: aws secretsmanager create-secret --name NAME "
                        "--secret-string file://creds.json (never in clustertools.yaml)",
                    )
                )
                continue
            findings.append(aws_failure("secrets", f"cannot check secret {secret}", exc, clients))
            continue
        if described.get("DeletedDate"):
            findings.append(
                Finding(
                    "error",
                    "secrets",
                    f"secret {secret} is scheduled for deletion",
                    f"restore it: aws secretsmanager restore-secret --secret-id {described.get('Name', secret)}",
                )
            )
        else:
            findings.append(
                Finding("ok", "secrets", f"secret {described.get('Name', secret)} exists (its value was not read)")
            )
    return findings


def check_secret_access(clients: AwsClients, secret_arns: Sequence[str], policy_arns: Sequence[str]) -> list[Finding]:
    """Each input secret is readable by the nodes: some policy they get allows GetSecretValue on it (and
    none denies it). IAM conditions are not evaluated: a policy with one is taken as allowing, said so."""
    if not secret_arns:
        return []
    if not policy_arns:
        return [
            Finding(
                "error",
                "secret-access",
                f"the nodes cannot read {arn}: they get no policy allowing {GET_SECRET} on it",
                "attach one: parallelcluster.additional_iam_policies: [arn:aws:iam::ACCOUNT:policy/NAME]",
            )
            for arn in secret_arns
        ]
    findings: list[Finding] = []
    statements = _policy_statements(clients, policy_arns, findings)
    return findings + [_access_finding(arn, statements, policy_arns) for arn in secret_arns]


def _policy_statements(
    clients: AwsClients, policy_arns: Sequence[str], findings: list[Finding]
) -> list[dict[str, Any]]:
    """The statements of the default version of each policy; a policy that cannot be read is a finding."""
    statements: list[dict[str, Any]] = []
    for policy in policy_arns:
        try:
            version = clients.iam.get_policy(PolicyArn=policy)["Policy"]["DefaultVersionId"]
            document = clients.iam.get_policy_version(PolicyArn=policy, VersionId=version)["PolicyVersion"]["Document"]
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") == "NoSuchEntity":
                findings.append(
                    Finding(
                        "error",
                        "secret-access",
                        f"no IAM policy {policy}",
                        "create it, or fix parallelcluster.additional_iam_policies",
                    )
                )
            else:
                findings.append(aws_failure("secret-access", f"cannot read policy {policy}", exc, clients))
            continue
        statements += _statements(document)
    return statements


def _access_finding(arn: str, statements: list[dict[str, Any]], policy_arns: Sequence[str]) -> Finding:
    """Whether the statements let the nodes read the secret ``arn``: a Deny wins, a Condition is not evaluated."""
    denied = any(_covers(s, arn) for s in statements if s.get("Effect") == "Deny")
    allowing = [s for s in statements if s.get("Effect") == "Allow" and _covers(s, arn)]
    if denied or not allowing:
        return Finding(
            "error",
            "secret-access",
            f"the nodes' policies do not allow {GET_SECRET} on {arn}" + (" (a Deny matches)" if denied else ""),
            f'allow it in one of: {", ".join(policy_arns)} (Resource "{arn}")',
        )
    if any("Condition" in s for s in allowing):
        return Finding(
            "warning",
            "secret-access",
            f"{GET_SECRET} on {arn} is allowed under a condition clustertools does not evaluate",
            "check the condition holds for the nodes' role",
        )
    return Finding("ok", "secret-access", f"the nodes may read {arn}")


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):  # IAM sends the document URL-encoded; boto3 usually decodes it already
        document = json.loads(unquote(document))
    found = document.get("Statement", [])
    return [found] if isinstance(found, dict) else [s for s in found if isinstance(s, dict)]


def _covers(statement: dict[str, Any], secret_arn: str) -> bool:
    return _matches(statement.get("Action"), GET_SECRET, case=False) and _matches(
        statement.get("Resource"), secret_arn, case=True
    )


def _matches(patterns: Any, value: str, *, case: bool) -> bool:
    items: Iterable[str] = [patterns] if isinstance(patterns, str) else (patterns or [])
    if case:
        return any(fnmatch.fnmatchcase(value, p) for p in items)
    return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in items)
