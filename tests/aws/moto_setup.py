"""Sets up moto's server for the AWS tests and writes what they need as JSON.

moto runs with INITIAL_NO_AUTH_ACTION_COUNT=4: the first four requests (create
an admin user, its policy, attach it, create its access key) go unsigned;
every later request, these set-up calls included, must carry a valid SigV4
signature of a known access key and pass moto's IAM policy evaluation.

Usage: moto_setup.py MOTO_URL OUT_JSON
"""

import base64
import json
import sys

import boto3

URL, OUT = sys.argv[1], sys.argv[2]
REGION = "us-east-1"
SECRET = {"HF_TOKEN": "hf_moto_value", "REPLICATE_API_TOKEN": "r8_moto_value", "PORT": 8080}


def client(service, key=None):
    kwargs = {}
    if key:
        kwargs = {
            "aws_access_key_id": key["AccessKeyId"],
            "aws_secret_access_key": key["SecretAccessKey"],
            "aws_session_token": key.get("SessionToken"),
        }
    else:
        kwargs = {"aws_access_key_id": "bootstrap", "aws_secret_access_key": "bootstrap"}
    return boto3.client(service, region_name=REGION, endpoint_url=URL, **kwargs)


def policy(actions):
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    )


# The four unauthenticated actions.
iam = client("iam")
iam.create_user(UserName="admin")
arn = iam.create_policy(PolicyName="admin", PolicyDocument=policy("*"))["Policy"]["Arn"]
iam.attach_user_policy(UserName="admin", PolicyArn=arn)
admin = iam.create_access_key(UserName="admin")["AccessKey"]

# From here on every request is signed with the admin's key.
iam = client("iam", admin)
sm = client("secretsmanager", admin)
test_version = sm.create_secret(Name="st-secrets/test", SecretString=json.dumps(SECRET))["VersionId"]
sm.create_secret(Name="st-secrets/binary", SecretBinary=json.dumps(SECRET).encode())
sm.create_secret(Name="st-secrets/plain", SecretString="just-a-token-not-json")
# A shared team secret, looked up before the project's in the tests of lists.
sm.create_secret(
    Name="st-secrets/team", SecretString=json.dumps({"HF_TOKEN": "hf_team_value", "TEAM_ONLY": "team"})
)

# A user who may only ask who they are: GetSecretValue is denied.
iam.create_user(UserName="outsider")
arn = iam.create_policy(PolicyName="whoami", PolicyDocument=policy(["sts:GetCallerIdentity"]))["Policy"]["Arn"]
iam.attach_user_policy(UserName="outsider", PolicyArn=arn)
outsider = iam.create_access_key(UserName="outsider")["AccessKey"]

# A role for session-token credentials (STS AssumeRole).
trust = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
)
role = iam.create_role(RoleName="trainer", AssumeRolePolicyDocument=trust)["Role"]
iam.put_role_policy(
    RoleName="trainer",
    PolicyName="read-secrets",
    # sts:AssumeRole: a profile chain assumes the role again with its credentials.
    PolicyDocument=policy(["secretsmanager:GetSecretValue", "sts:GetCallerIdentity", "sts:AssumeRole"]),
)
session = client("sts", admin).assume_role(RoleArn=role["Arn"], RoleSessionName="st-secrets-test")[
    "Credentials"
]

# Sanity: signing really is enforced now.
try:
    client("secretsmanager", {"AccessKeyId": admin["AccessKeyId"], "SecretAccessKey": "wrong"}).get_secret_value(
        SecretId="st-secrets/test"
    )
except Exception as e:  # noqa: BLE001 - any refusal will do
    assert "Signature" in str(e) or "signature" in str(e), e
else:
    raise SystemExit("moto accepted a wrong signature: is INITIAL_NO_AUTH_ACTION_COUNT set?")

with open(OUT, "w") as f:
    json.dump(
        {
            "url": URL,
            "region": REGION,
            "admin": {"id": admin["AccessKeyId"], "secret": admin["SecretAccessKey"]},
            "outsider": {"id": outsider["AccessKeyId"], "secret": outsider["SecretAccessKey"]},
            "session": {
                "id": session["AccessKeyId"],
                "secret": session["SecretAccessKey"],
                "token": session["SessionToken"],
            },
            "role_arn": role["Arn"],
            "secret": SECRET,
            "test_version": test_version,
            # The rotation test drives moto with boto3 through this interpreter.
            "python": sys.executable,
        },
        f,
    )
print("moto set up:", URL)
