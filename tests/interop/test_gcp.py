"""The GCP provider against drongo's Secret Manager (a real server, PyPI's
`drongo`) behind tests/gcp/fake_google.py, the fake of Google's token
endpoints, STS, IAM and metadata server, which Google's own libraries
(google-auth, google-cloud-secret-manager) are pointed at first, in the same
run, to show it faithful.

Environment: ST_SECRETS_BIN (the tool)."""

import base64
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "gcp"))
from fake_google import FakeGoogle  # noqa: E402

BIN = os.environ["ST_SECRETS_BIN"]
PROJECT = "train-proj"
EMAIL = "trainer@train-proj.iam.gserviceaccount.com"
AUDIENCE = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k8s"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


@pytest.fixture(scope="module")
def drongo():
    port = free_port()
    exe = Path(sys.executable).parent / "drongo"
    proc = subprocess.Popen([str(exe), "server", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            call(f"{url}/drongo/health")
            break
        except OSError:
            time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("drongo did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def add_secret(drongo, secret, *payloads):
    base = f"{drongo}/v1/projects/{PROJECT}/secrets"
    try:
        call(f"{base}?secretId={secret}", "POST", {"replication": {"automatic": {}}})
    except urllib.error.HTTPError as e:
        assert e.code == 409, e
    for p in payloads:
        call(f"{base}/{secret}:addVersion", "POST", {"payload": {"data": base64.b64encode(p.encode()).decode()}})


def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def google(drongo, tmp_path_factory):
    fake = FakeGoogle(drongo)
    work = tmp_path_factory.mktemp("gcp")
    # A service account's key file.
    sa = rsa_key()
    fake.service_accounts[EMAIL] = sa.public_key()
    key = work / "key.json"
    key.write_text(json.dumps({"type": "service_account", "project_id": PROJECT, "private_key_id": "k1",
                               "private_key": pem(sa), "client_email": EMAIL, "token_uri": f"{fake.url}/token"}))
    key.chmod(0o600)
    # gcloud's application-default credentials of a user.
    fake.users["client-1"] = ("client-secret-1", "refresh-1")
    gcloud = work / "gcloud"
    gcloud.mkdir()
    adc = gcloud / "application_default_credentials.json"
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": "client-1", "client_secret": "client-secret-1",
                               "refresh_token": "refresh-1", "token_uri": f"{fake.url}/token"}))
    adc.chmod(0o600)
    # Workload identity federation: a Kubernetes-style token file, STS, impersonation.
    issuer = rsa_key()
    fake.federation[AUDIENCE] = issuer.public_key()
    subject = work / "k8s-token"
    subject.write_text(jwt.encode({"sub": "system:serviceaccount:ml:trainer", "exp": int(time.time()) + 3600},
                                  pem(issuer), algorithm="RS256"))
    subject.chmod(0o600)
    external = work / "external.json"
    external.write_text(json.dumps({
        "type": "external_account", "audience": AUDIENCE,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": f"{fake.url}/v1/token",
        "service_account_impersonation_url":
            f"{fake.url}/v1/projects/-/serviceAccounts/{EMAIL}:generateAccessToken",
        "credential_source": {"file": str(subject), "format": {"type": "text"}},
    }))
    external.chmod(0o600)
    add_secret(drongo, "keys", json.dumps({"HF_TOKEN": "hf_from_gcp", "WANDB_API_KEY": "wandb_from_gcp"}))
    add_secret(drongo, "replicate-api-token", "r8_plain_value")
    yield {"fake": fake, "key": key, "gcloud": gcloud, "external": external, "work": work}
    fake.stop()


SDK_CHECK = textwrap.dedent("""
    import json, os, sys
    import google.auth.transport.requests as tr
    from google.auth import compute_engine, identity_pool
    from google.oauth2 import credentials as user_credentials, service_account
    from google.cloud import secretmanager
    url, key, adc, external = sys.argv[1:5]
    scopes = ["https://www.googleapis.com/auth/cloud-platform"]
    request = tr.Request()
    out = {}
    sa = service_account.Credentials.from_service_account_file(key, scopes=scopes)
    sa.refresh(request)
    out["service_account"] = bool(sa.token)
    info = json.load(open(adc))
    user = user_credentials.Credentials(None, refresh_token=info["refresh_token"], token_uri=info["token_uri"],
                                        client_id=info["client_id"], client_secret=info["client_secret"])
    user.refresh(request)
    out["authorized_user"] = bool(user.token)
    fed = identity_pool.Credentials.from_file(external, scopes=scopes)
    fed.refresh(request)
    out["external_account"] = bool(fed.token)
    md = compute_engine.Credentials()
    md.refresh(request)
    out["metadata"] = bool(md.token)
    from google.oauth2 import id_token
    ident = compute_engine.IDTokenCredentials(request, "https://vendor.example", use_metadata_identity_endpoint=True)
    ident.refresh(request)
    claims = id_token.verify_token(ident.token, request, audience="https://vendor.example",
                                   certs_url=url + "/oauth2/v3/certs")
    out["identity"] = claims["email"].startswith("default@")
    client = secretmanager.SecretManagerServiceClient(
        transport="rest", credentials=sa, client_options={"api_endpoint": url})
    r = client.access_secret_version(name="projects/train-proj/secrets/keys/versions/latest")
    out["access"] = json.loads(r.payload.data)["HF_TOKEN"]
    out["version"] = r.name.rsplit("/", 1)[1]
    print(json.dumps(out))
""")


def test_googles_own_libraries_accept_the_fakes(google):
    fake = google["fake"]
    host = fake.url.removeprefix("http://")
    env = {**os.environ, "GCE_METADATA_HOST": host, "GCE_METADATA_IP": host, "NO_GCE_CHECK": "False"}
    before = dict(fake.counts)
    r = subprocess.run([sys.executable, "-c", SDK_CHECK, fake.url, str(google["key"]),
                        str(google["gcloud"] / "application_default_credentials.json"), str(google["external"])],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out == {"service_account": True, "authorized_user": True, "external_account": True,
                   "metadata": True, "identity": True, "access": "hf_from_gcp", "version": "1"}
    for grant in ("jwt", "refresh", "sts", "impersonate", "metadata", "identity"):
        assert fake.counts[grant] > before[grant], grant
    assert fake.counts["expired"] == before["expired"]


def tool(google, *args, env=None, config=None):
    work = google["work"]
    cfg = work / "config.json"
    cfg.write_text(json.dumps(config or {"providers": ["gcp"], "gcp_secret": ["keys", "replicate-api-token"],
                                         "gcp_project": PROJECT}))
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "AWS_EC2_METADATA_DISABLED": "true",
            "SIMPLETUNER_GCP_ENDPOINT": google["fake"].url, "GCE_METADATA_HOST": "127.0.0.1:9"}
    return subprocess.run([BIN, "--config", str(cfg), *args], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", ["service_account", "authorized_user", "external_account", "metadata"])
def test_the_tool_reads_secrets_with_each_kind_of_credentials(google, kind):
    fake = google["fake"]
    env = {
        "service_account": {"GOOGLE_APPLICATION_CREDENTIALS": str(google["key"])},
        "authorized_user": {"CLOUDSDK_CONFIG": str(google["gcloud"])},
        "external_account": {"GOOGLE_APPLICATION_CREDENTIALS": str(google["external"])},
        "metadata": {"GCE_METADATA_HOST": fake.url.removeprefix("http://")},
    }[kind]
    grant = {"service_account": "jwt", "authorized_user": "refresh", "external_account": "impersonate",
             "metadata": "metadata"}[kind]
    before = dict(fake.counts)
    r = tool(google, "get", "HF_TOKEN", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "hf_from_gcp"
    # A payload that is not a JSON object: one key, the secret's id.
    r = tool(google, "get", "REPLICATE_API_TOKEN", env=env)
    assert (r.returncode, r.stdout.strip()) == (0, "r8_plain_value"), r.stderr
    assert fake.counts[grant] - before[grant] == 2, "one token per process"
    assert fake.counts["expired"] == before["expired"] and fake.counts["refused"] == before["refused"]


def test_the_project_comes_from_the_metadata_server_when_nothing_names_it(google, drongo):
    fake = google["fake"]
    fake.project = PROJECT
    r = tool(google, "get", "HF_TOKEN", env={"GCE_METADATA_HOST": fake.url.removeprefix("http://")},
             config={"providers": ["gcp"], "gcp_secret": "keys"})
    assert (r.returncode, r.stdout.strip()) == (0, "hf_from_gcp"), r.stderr


def test_a_disabled_latest_version_is_refused_by_name_and_never_the_one_before(google, drongo):
    add_secret(drongo, "rotating", json.dumps({"ROTATING_KEY": "v1"}), json.dumps({"ROTATING_KEY": "v2"}))
    base = f"{drongo}/v1/projects/{PROJECT}/secrets/rotating/versions/2"
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(google["key"])}
    config = {"providers": ["gcp"], "gcp_secret": "rotating", "gcp_project": PROJECT}
    assert tool(google, "get", "ROTATING_KEY", env=env, config=config).stdout.strip() == "v2"
    call(f"{base}:disable", "POST", {})
    try:
        r = tool(google, "get", "ROTATING_KEY", env=env, config=config)
        assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
        assert "version 'latest' is disabled" in r.stderr and "v1" not in r.stdout
        # The version before, named, is read.
        pinned = {**config, "gcp_secret": "rotating/versions/1"}
        assert tool(google, "get", "ROTATING_KEY", env=env, config=pinned).stdout.strip() == "v1"
    finally:
        call(f"{base}:enable", "POST", {})


def test_a_metadata_server_that_refuses_then_answers_503_is_waited_out(google, drongo):
    port = free_port()
    late = {}

    def start_late():
        time.sleep(1.5)  # connections refused meanwhile
        late["fake"] = FakeGoogle(drongo, port=port)
        late["fake"].project = PROJECT
        late["fake"].metadata_unready_until = time.time() + 1.0  # then 503 for a second

    t = threading.Thread(target=start_late)
    t.start()
    started = time.time()
    r = tool(google, "get", "HF_TOKEN", env={"GCE_METADATA_HOST": f"127.0.0.1:{port}",
                                              "SIMPLETUNER_GCP_ENDPOINT": f"http://127.0.0.1:{port}"})
    t.join()
    try:
        assert (r.returncode, r.stdout.strip()) == (0, "hf_from_gcp"), r.stderr
        assert time.time() - started >= 2.0
        assert late["fake"].counts["metadata"] == 1
    finally:
        late["fake"].stop()


def test_bad_credentials_are_refused_by_name_without_values(google):
    work = google["work"]
    bad = work / "bad.json"
    bad.write_text('{"type": "service_account", "client_email": "a@b", "private_key": "sk-not-a-key"}')
    bad.chmod(0o600)
    r = tool(google, "get", "HF_TOKEN", env={"GOOGLE_APPLICATION_CREDENTIALS": str(bad)})
    assert r.returncode != 0
    assert "bad.json" in r.stderr and "not a PEM private key" in r.stderr and "sk-not" not in r.stderr
    # An executable source is refused unless allowed, and a world-writable program always.
    script = work / "token.sh"
    script.write_text("#!/bin/sh\necho '{}'\n")
    script.chmod(0o777)
    exe = work / "exe.json"
    exe.write_text(json.dumps({"type": "external_account", "audience": AUDIENCE,
                               "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                               "credential_source": {"executable": {"command": str(script)}}}))
    exe.chmod(0o600)
    r = tool(google, "get", "HF_TOKEN", env={"GOOGLE_APPLICATION_CREDENTIALS": str(exe)})
    assert "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1" in r.stderr, r.stderr
    r = tool(google, "get", "HF_TOKEN", env={"GOOGLE_APPLICATION_CREDENTIALS": str(exe),
                                              "GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES": "1"})
    assert "writable by group or others" in r.stderr, r.stderr


AWS_AUDIENCE = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/aws"


def aws_external(google, host, name="aws.json", **source):
    fake = google["fake"]
    fake.aws_audiences.add(AWS_AUDIENCE)
    fake.aws_keys["AKIAFEDERATIONTEST"] = "federation-secret-key"
    path = google["work"] / name
    verification = f"{host}?Action=GetCallerIdentity&Version=2011-06-15"
    path.write_text(json.dumps({
        "type": "external_account", "audience": AWS_AUDIENCE,
        "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request", "token_url": f"{fake.url}/v1/token",
        "credential_source": {"environment_id": "aws1", "regional_cred_verification_url": verification, **source}}))
    path.chmod(0o600)
    return path


AWS_SDK_CHECK = textwrap.dedent("""
    import json, sys
    import google.auth.transport.requests as tr
    from google.auth import aws
    creds = aws.Credentials.from_file(sys.argv[1], scopes=["https://www.googleapis.com/auth/cloud-platform"])
    creds.refresh(tr.Request())
    print(json.dumps({"token": bool(creds.token)}))
""")


def test_an_aws_workload_federates_as_googles_library_does(google):
    fake = google["fake"]
    keys = {"AWS_ACCESS_KEY_ID": "AKIAFEDERATIONTEST", "AWS_SECRET_ACCESS_KEY": "federation-secret-key",
            "AWS_SESSION_TOKEN": "federation-session-token", "AWS_REGION": "us-east-1"}
    # Google's library: it signs, Google's STS (the fake) checks; nothing
    # reaches AWS from the node, so the real STS host is named.
    before = dict(fake.counts)
    sdk_file = aws_external(google, "https://sts.{region}.amazonaws.com", "sdk.json")
    r = subprocess.run([sys.executable, "-c", AWS_SDK_CHECK, str(sdk_file)],
                       env={**os.environ, **keys}, capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout.strip()) == (0, '{"token": true}'), r.stderr[-3000:]
    assert fake.counts["sts_aws"] - before["sts_aws"] == 1
    # The tool, through the same exchange.
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(aws_external(google, "https://sts.{region}.amazonaws.com")),
           **keys}
    r = tool(google, "get", "HF_TOKEN", env=env)
    assert (r.returncode, r.stdout.strip()) == (0, "hf_from_gcp"), r.stderr
    assert fake.counts["sts_aws"] - before["sts_aws"] == 2
    r = tool(google, "--json", "providers", env=env)
    assert "AWS credentials" in r.stdout and "region us-east-1" in r.stdout, r.stdout
    # A key AWS does not know: Google's STS refuses, named, without a value.
    r = tool(google, "get", "HF_TOKEN", env={**env, "AWS_SECRET_ACCESS_KEY": "wrong-secret-key-value"})
    assert r.returncode != 0 and "STS token exchange" in r.stderr, r.stderr
    assert "wrong-secret" not in r.stderr + r.stdout and "federation-s" not in r.stderr
    assert fake.counts["sts_aws"] - before["sts_aws"] == 2
    # No region and no region_url; another version; an insecure URL: refused by name.
    no_region = {k: v for k, v in env.items() if k != "AWS_REGION"}
    r = tool(google, "get", "HF_TOKEN", env=no_region)
    assert "AWS_REGION" in r.stderr, r.stderr
    for name, source, said in (("v2.json", {"environment_id": "aws2"}, "environment_id"),
                               ("plain.json", {"region_url": "https://169.254.169.254/x"}, "region_url")):
        path = aws_external(google, "https://sts.{region}.amazonaws.com", name, **source)
        r = tool(google, "get", "HF_TOKEN", env={**env, "GOOGLE_APPLICATION_CREDENTIALS": str(path)})
        assert r.returncode != 0 and said in r.stderr and name in r.stderr, r.stderr


def test_the_metadata_servers_id_token_is_exchanged_at_a_vendor(google):
    # A GCP workload's subject token for a token exchange: minted by the
    # metadata server for each exchange, for the vendor's audience, and
    # verified by the vendor fake through the fake's published keys.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "exchange"))
    from fake_vendors import FakeVendors
    fake = google["fake"]
    vendors = FakeVendors(fake.url, claims={"email": f"default@{fake.project}.iam.gserviceaccount.com"})
    try:
        config = {"providers": ["exchange"], "retries": 1, "exchanges": {"HF_TOKEN": {
            "profile": "huggingface", "url": vendors.base("hf") + "/oauth/token", "resource": "org/model",
            "subject_gcp_metadata": True}}}
        before = fake.counts["identity"]
        r = tool(google, "get", "HF_TOKEN", env={"GCE_METADATA_HOST": fake.url.removeprefix("http://")},
                 config=config)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().startswith("hf_jwt_")
        assert (fake.counts["identity"] - before, vendors.counts["hf"]["exchange"]) == (1, 1)
        # Off GCP (no metadata server answers): said by name, nothing sent.
        r = tool(google, "get", "HF_TOKEN", config=config)
        assert r.returncode != 0 and "metadata" in r.stderr, r.stderr
        assert vendors.counts["hf"]["exchange"] + vendors.counts["hf"]["refused"] == 1
    finally:
        vendors.stop()
