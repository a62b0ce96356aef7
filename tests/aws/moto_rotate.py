"""One step of a secret's rotation on moto, as a rotation function takes it
(the rotation test in tests/aws_moto.rs drives it): signed with the keys in
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.

Usage: moto_rotate.py MOTO_URL create NAME JSON      -> prints the VersionId
       moto_rotate.py MOTO_URL pending NAME JSON     -> AWSPENDING; prints it
       moto_rotate.py MOTO_URL promote NAME NEW OLD  -> AWSCURRENT moves to NEW
"""

import sys

import boto3

URL, STEP, NAME = sys.argv[1], sys.argv[2], sys.argv[3]
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=URL)
if STEP == "create":
    print(sm.create_secret(Name=NAME, SecretString=sys.argv[4])["VersionId"])
elif STEP == "pending":
    answer = sm.put_secret_value(SecretId=NAME, SecretString=sys.argv[4], VersionStages=["AWSPENDING"])
    print(answer["VersionId"])
elif STEP == "promote":
    sm.update_secret_version_stage(
        SecretId=NAME, VersionStage="AWSCURRENT", MoveToVersionId=sys.argv[4], RemoveFromVersionId=sys.argv[5]
    )
    sm.update_secret_version_stage(SecretId=NAME, VersionStage="AWSPENDING", RemoveFromVersionId=sys.argv[4])
else:
    raise SystemExit(f"unknown step {STEP}")
