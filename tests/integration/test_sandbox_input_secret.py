"""The input secret on the sandbox (issue 15, item 5): its credentials, read from the sandbox's Secrets Manager
(moto) through the node's aws, stage the input, and with storage.input_credentials_to_task reach the command's
own fetches; no file of the run on the head node holds them."""

from __future__ import annotations

import hashlib
import json

import boto3

from cluster_tools.transport.s3 import S3Target, make_s3_client
from tests.helpers import err
from tests.integration.run_helpers import make_project, submit, wait_for_run, write_subjects

KEY_ID, SECRET_KEY = "AKIAHCPSANDBOX000001", "sandbox/Hcp+Secret/NeverWritten000000000"


def test_the_command_fetches_with_the_input_secrets_credentials_and_nothing_holds_them(sandbox, tmp_path):
    endpoint = sandbox.status["s3_endpoint_url"]
    client = make_s3_client(S3Target(region="us-east-1", endpoint_url=endpoint, sandbox=True))
    for key in ("hcp/sub-1/T1w.nii.gz", "hcp/extra/atlas.txt"):
        client.put_object(Bucket="clustertools-sandbox", Key=key, Body=b"x")
    secrets = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    arn = secrets.create_secret(
        Name=f"hcp/keys-{tmp_path.name[-6:]}",
        SecretString=json.dumps({"AccessKeyId": KEY_ID, "SecretAccessKey": SECRET_KEY}),
    )["ARN"]
    project = make_project(sandbox, tmp_path, "secret")
    config = project / "clustertools.yaml"
    config.write_text(
        config.read_text().replace(
            "storage:\n",
            "storage:\n  input: s3://clustertools-sandbox/hcp\n"
            f"  input_credentials: {arn}\n  input_credentials_to_task: true\n",
            1,
        )
    )
    command = (
        'ls "$INPUT_DIR" > "$OUTPUT_DIR/staged.txt" && aws s3 cp --quiet s3://clustertools-sandbox/hcp/extra/atlas.txt '
        '"$OUTPUT_DIR/" && printf %s "$AWS_SECRET_ACCESS_KEY" | sha256sum | cut -c1-12 > "$OUTPUT_DIR/key.txt"'
    )
    run_id = submit(sandbox, project, str(write_subjects(project, ["sub-1"])), "--command", command)["run"]
    final = wait_for_run(sandbox, project, run_id)
    assert final["counts"]["SUCCEEDED"] == 1, [(s["subject"], s["error"]) for s in final["subjects"]]
    got = sandbox.cli("results", "get", run_id, "-o", str(tmp_path / "got"), cwd=project)
    assert got.returncode == 0, err(got)
    assert (tmp_path / "got" / "sub-1" / "staged.txt").read_text() == "T1w.nii.gz\n"
    assert (tmp_path / "got" / "sub-1" / "atlas.txt").exists(), "the command's own fetch"
    assert (tmp_path / "got" / "sub-1" / "key.txt").read_text() == hashlib.sha256(SECRET_KEY.encode()).hexdigest()[
        :12
    ] + "\n"
    run_dirs = [p for p in sandbox.state.rglob(run_id) if p.is_dir()]
    assert run_dirs, "the head node's run dir"
    for path in (p for d in [*run_dirs, tmp_path / "got"] for p in d.rglob("*") if p.is_file()):
        assert SECRET_KEY.encode() not in path.read_bytes(), path
