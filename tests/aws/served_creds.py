"""The AWS side of the test of `st-secrets run --aws-credentials`
(cli/tests/leases.rs): credentials that are forced to expire while a
command's boto3 and AWS CLI read S3 on moto (signatures checked) through
the container-credentials endpoint `run` serves.

  prepare MOTO_SETUP DIR   an IAM user "reader" (S3 read), a bucket with one
                           object, the user's first access key in DIR/key.json,
                           and DIR/config: a profile whose credential_process
                           is `process DIR`
  process DIR              the credential_process answer: the current key,
                           expiring 5 min 2 s from now (the chain asks again
                           after 2 s: it refreshes 5 min before an expiry)
  rotate MOTO_SETUP DIR N PERIOD
                           N times: a new access key in DIR/key.json, then
                           after PERIOD seconds the old one deleted (it no
                           longer works); the last key's ID in DIR/final;
                           prints the count
  child DIR UNTIL          (the command under run) boto3 reads the object
                           every 0.2 s and the AWS CLI every 2 s until UNTIL
                           and the last key was used (a minute more at most);
                           asks the endpoint without the token and with
                           another; prints one JSON line
"""

import datetime
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3

BUCKET, OBJECT, BODY = "st-served", "data.bin", b"training data"


def admin_client(setup, service):
    return boto3.client(
        service,
        region_name=setup["region"],
        endpoint_url=setup["url"],
        aws_access_key_id=setup["admin"]["id"],
        aws_secret_access_key=setup["admin"]["secret"],
    )


def write_key(d, key):
    with open(os.path.join(d, "key.json.tmp"), "w") as f:
        json.dump({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}, f)
    os.rename(os.path.join(d, "key.json.tmp"), os.path.join(d, "key.json"))


def prepare(setup_path, d):
    setup = json.load(open(setup_path))
    iam, s3 = admin_client(setup, "iam"), admin_client(setup, "s3")
    iam.create_user(UserName="reader")
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    arn = iam.create_policy(PolicyName="s3-reader", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="reader", PolicyArn=arn)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=OBJECT, Body=BODY)
    write_key(d, iam.create_access_key(UserName="reader")["AccessKey"])
    with open(os.path.join(d, "config"), "w") as f:
        f.write("[default]\ncredential_process = %s %s process %s\n" % (sys.executable, __file__, d))


def process(d):
    key = json.load(open(os.path.join(d, "key.json")))
    expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5, seconds=2)
    print(json.dumps({"Version": 1, "AccessKeyId": key["id"], "SecretAccessKey": key["secret"],
                      "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}))


def rotate(setup_path, d, n, period):
    setup = json.load(open(setup_path))
    iam = admin_client(setup, "iam")
    for _ in range(n):
        old = json.load(open(os.path.join(d, "key.json")))["id"]
        write_key(d, iam.create_access_key(UserName="reader")["AccessKey"])
        time.sleep(period)
        iam.delete_access_key(UserName="reader", AccessKeyId=old)
    # The last key, for the command to wait for (not a time to assume).
    final = json.load(open(os.path.join(d, "key.json")))["id"]
    with open(os.path.join(d, "final.tmp"), "w") as f:
        f.write(final)
    os.rename(os.path.join(d, "final.tmp"), os.path.join(d, "final"))
    print(n, flush=True)


def status_of(url, token):
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", token)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def child(d, until):
    url = os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"]
    out = {"no_token": status_of(url, None), "other_token": status_of(url, "0" * 64),
           "port": int(url.split(":")[2].split("/")[0]), "removed": [
               v for v in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID") if v in os.environ]}
    s3 = boto3.client("s3")
    calls = errors = cli_calls = cli_errors = 0
    kinds, keys = {}, set()
    next_cli = 0.0
    def waiting():
        # Until UNTIL, then on (for at most a minute more) until the last
        # rotation's key has been used: a busy machine delays it.
        if time.time() < until:
            return True
        final = os.path.join(d, "final")
        if os.path.exists(final) and open(final).read() in keys:
            return False
        return time.time() < until + 60

    while waiting():
        try:
            assert s3.get_object(Bucket=BUCKET, Key=OBJECT)["Body"].read() == BODY
            calls += 1
            keys.add(s3._request_signer._credentials.get_frozen_credentials().access_key)
        except Exception as e:  # noqa: BLE001 - counted by kind
            errors += 1
            kind = getattr(e, "response", {}).get("Error", {}).get("Code", type(e).__name__)
            kinds[kind] = kinds.get(kind, 0) + 1
        if time.time() >= next_cli:
            next_cli = time.time() + 2
            r = subprocess.run(["aws", "s3", "cp", f"s3://{BUCKET}/{OBJECT}", "-"], capture_output=True)
            cli_calls += 1
            if r.returncode != 0 or r.stdout != BODY:
                cli_errors += 1
                kinds["cli: " + r.stderr.decode()[-120:]] = 1
        time.sleep(0.2)
    final = os.path.join(d, "final")
    final_seen = os.path.exists(final) and open(final).read() in keys
    out.update(calls=calls, errors=errors, cli_calls=cli_calls, cli_errors=cli_errors,
               kinds=kinds, keys_seen=len(keys), final_seen=final_seen)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "prepare":
        prepare(sys.argv[2], sys.argv[3])
    elif cmd == "process":
        process(sys.argv[2])
    elif cmd == "rotate":
        rotate(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    elif cmd == "child":
        child(sys.argv[2], float(sys.argv[3]))
