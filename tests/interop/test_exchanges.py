"""Token exchanges against tests/exchange/fake_vendors.py, the fake of Hugging
Face's, OpenAI's, Anthropic's and W&B's token endpoints and of one API call
each (no vendor endpoint runs here). Each vendor's own SDK (huggingface_hub,
openai, anthropic, wandb) is pointed at it first, in the same run, to show it
faithful; then the tool exchanges there, eight ranks of a node share one
exchange per vendor where the SDKs make eight, and the SDKs take what the
tool hands them.

The subject tokens are signed by a test issuer on 127.0.0.1 whose discovery
document and JWKS the fake fetches, as the vendors fetch a registered
issuer's.

Environment: ST_SECRETS_BIN (the tool)."""

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "exchange"))
from fake_vendors import KEYS, ORG, FakeVendors, Issuer  # noqa: E402

BIN = os.environ["ST_SECRETS_BIN"]


@pytest.fixture()
def world(tmp_path):
    issuer = Issuer()
    fake = FakeVendors(issuer.url, claims={"user": "alice"})
    yield issuer, fake, tmp_path
    fake.stop()
    issuer.stop()


def subject(issuer, fake, work, vendor, **claims):
    path = work / f"{vendor}.jwt"
    # Longer than the vendors' credentials: an exchanged credential never
    # outlives its subject token.
    path.write_text(issuer.mint(fake.audience(vendor), 7200, user="alice", **claims))
    path.chmod(0o600)
    return path


def config(issuer, fake, work, **claims):
    exchanges = fake.exchanges({vendor: subject(issuer, fake, work, vendor, **claims) for vendor in KEYS})
    path = work / "config.json"
    path.write_text(json.dumps({"providers": ["exchange"], "exchanges": exchanges, "retries": 1}))
    return path


def tool_env(work):
    env = {k: v for k, v in os.environ.items() if k not in KEYS.values()}
    env.update(SIMPLETUNER_NODE_CACHE="1", SIMPLETUNER_NODE_CACHE_DIR=str(node_dir(work)), HOME=str(work))
    return env


def node_dir(work):
    # The node cache is memory-backed only: /dev/shm, named for this test's directory.
    return Path("/dev/shm") / f"st-secrets-exchange-{work.name}-{os.getpid()}"


def get(cfg, key, env):
    r = subprocess.run([BIN, "--config", str(cfg), "get", key], capture_output=True, text=True, env=env, timeout=60)
    return r


SDKS = textwrap.dedent("""
    import json, os, sys
    vendor, base, subject_file, audience = sys.argv[1:5]
    token = open(subject_file).read().strip()
    if vendor == "hf":
        from huggingface_hub import HfApi
        from huggingface_hub._oidc import exchange_oidc_token
        answer = exchange_oidc_token(subject_token=token, resource="org/model", endpoint=base)
        name = HfApi(endpoint=base, token=answer["access_token"]).whoami()["name"]
    elif vendor == "openai":
        import openai
        from openai.auth._workload import WorkloadIdentityAuth, k8s_service_account_token_provider
        auth = WorkloadIdentityAuth(workload_identity={"identity_provider_id": "idp_test",
                                                       "service_account_id": "sa_test",
                                                       "provider": k8s_service_account_token_provider(subject_file)},
                                    token_exchange_url=base + "/oauth/token")
        name = openai.OpenAI(api_key=auth.get_token(), base_url=base + "/v1").models.list().data[0].owned_by
    elif vendor == "anthropic":
        import anthropic
        from anthropic.lib.credentials import WorkloadIdentityCredentials
        cred = WorkloadIdentityCredentials(identity_token_provider=lambda: open(subject_file).read().strip(),
                                           federation_rule_id="fdrl_test", organization_id=%(org)r,
                                           service_account_id="svac_test")
        name = anthropic.Anthropic(credentials=cred, base_url=base).models.list().data[0].display_name
    else:
        import wandb
        name = wandb.Api(timeout=20).viewer.username
    print(json.dumps({"name": name}))
""" % {"org": ORG})


def sdk(vendor, fake, subject_file, work, extra_env=None):
    env = {k: v for k, v in os.environ.items() if k not in KEYS.values()}
    env.update(HOME=str(work), WANDB_BASE_URL=fake.base("wandb"), WANDB_IDENTITY_TOKEN_FILE=str(subject_file),
               WANDB_CREDENTIALS_FILE=str(work / f"wandb-{os.urandom(4).hex()}.json"), WANDB_DIR=str(work),
               WANDB_CONFIG_DIR=str(work), WANDB_SILENT="true")
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-c", SDKS, vendor, fake.base(vendor), str(subject_file),
                           fake.audience(vendor)], capture_output=True, text=True, env=env, timeout=120)


def test_each_vendors_sdk_exchanges_at_the_fake_and_calls_its_api(world):
    issuer, fake, work = world
    for vendor in KEYS:
        r = sdk(vendor, fake, subject(issuer, fake, work, vendor), work)
        assert r.returncode == 0, (vendor, r.stderr[-2000:])
        assert json.loads(r.stdout.splitlines()[-1])["name"], vendor
        counts = fake.counts[vendor]
        assert counts["exchange"] == 1 and counts["refused"] == 0 and counts["expired"] == 0, (vendor, counts)
    # The fake refuses as the vendors do: another audience, a claim the
    # registration does not match, a JWT sent twice to Anthropic.
    wrong = work / "wrong.jwt"
    wrong.write_text(issuer.mint(fake.audience("openai"), user="alice"))
    assert sdk("hf", fake, wrong, work).returncode != 0
    wrong.write_text(issuer.mint(fake.audience("hf"), user="mallory"))
    assert sdk("hf", fake, wrong, work).returncode != 0
    assert fake.counts["hf"]["refused"] == 2
    once = subject(issuer, fake, work, "anthropic")
    assert sdk("anthropic", fake, once, work).returncode == 0
    assert sdk("anthropic", fake, once, work).returncode != 0, "checkJTI: a JWT is taken once"
    assert fake.counts["anthropic"]["jti_reused"] >= 1  # (the SDK tries the same JWT again once)


def test_eight_ranks_of_a_node_share_one_exchange_per_vendor_where_an_sdk_makes_one_per_process(world):
    issuer, fake, work = world
    cfg = config(issuer, fake, work)
    env = tool_env(work)
    try:
        for vendor, key in KEYS.items():
            ranks = [subprocess.Popen([BIN, "--config", str(cfg), "get", key], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=env) for _ in range(8)]
            outs = [p.communicate(timeout=60) for p in ranks]
            assert all(p.returncode == 0 for p in ranks), (vendor, [e[-500:] for _, e in outs])
            values = {o.strip() for o, _ in outs}
            assert len(values) == 1, f"{vendor}: the ranks got one credential"
            assert fake.counts[vendor]["exchange"] == 1, (vendor, fake.counts[vendor])
            assert fake.counts[vendor]["jti_reused"] == 0
            assert not any(o.strip() in e for o, e in outs), "no credential in a message"
        # The SDK side by side: one exchange per process (two here; eight
        # in the benchmark).
        before = fake.counts["hf"]["exchange"]
        sdks = [subprocess.Popen([sys.executable, "-c", SDKS, "hf", fake.base("hf"),
                                  str(subject(issuer, fake, work, "hf")), fake.audience("hf")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        done = [(p.communicate(timeout=120)[1], p.returncode) for p in sdks]
        assert all(rc == 0 for _, rc in done), [err[-800:] for err, _ in done]
        assert fake.counts["hf"]["exchange"] - before == 2
    finally:
        subprocess.run(["rm", "-rf", str(node_dir(work))], check=False)


def test_the_sdks_take_the_exchanged_credentials_without_exchanging_again(world):
    issuer, fake, work = world
    cfg = config(issuer, fake, work)
    env = tool_env(work)
    env["SIMPLETUNER_NODE_CACHE"] = "0"
    got = {}
    for vendor, key in KEYS.items():
        r = get(cfg, key, env)
        assert r.returncode == 0, (vendor, r.stderr)
        got[vendor] = r.stdout.strip()
        assert got[vendor] not in r.stderr
    exchanged = {v: fake.counts[v]["exchange"] for v in KEYS}
    check = textwrap.dedent("""
        import os, sys
        vendor, base, token = sys.argv[1:4]
        if vendor == "hf":
            from huggingface_hub import HfApi
            assert HfApi(endpoint=base).whoami()["name"] == "alice"   # the token from HF_TOKEN_PATH
        elif vendor == "openai":
            import openai
            assert openai.OpenAI(base_url=base + "/v1").models.list().data    # OPENAI_API_KEY
        elif vendor == "anthropic":
            import anthropic
            assert anthropic.Anthropic(base_url=base).models.list().data    # the profile's credentials file
        else:
            import wandb
            assert wandb.Api(timeout=20).viewer.username == "alice"   # WANDB_CREDENTIALS_FILE
    """)
    for vendor, token in got.items():
        child = {k: v for k, v in os.environ.items() if k not in KEYS.values()}
        child.update(HOME=str(work), WANDB_SILENT="true", WANDB_DIR=str(work), WANDB_CONFIG_DIR=str(work))
        if vendor == "hf":
            (work / "hf-token").write_text(token)
            child["HF_TOKEN_PATH"] = str(work / "hf-token")
        elif vendor == "openai":
            child["OPENAI_API_KEY"] = token
        elif vendor == "anthropic":
            # The SDK's profile for a token another process keeps current
            # (user_oauth without a client_id: the file is read at each use).
            conf = work / "anthropic"
            (conf / "configs").mkdir(parents=True, exist_ok=True)
            (conf / "credentials").mkdir(exist_ok=True)
            (conf / "configs" / "st.json").write_text(json.dumps({"authentication": {"type": "user_oauth"},
                                                                  "organization_id": ORG}))
            creds = conf / "credentials" / "st.json"
            creds.write_text(json.dumps({"type": "oauth_token", "access_token": token,
                                         "expires_at": int(time.time()) + 300}))
            creds.chmod(0o600)
            child.update(ANTHROPIC_CONFIG_DIR=str(conf), ANTHROPIC_PROFILE="st")
        else:
            # wandb-core exchanges again itself when less than 5 minutes are left
            # (300 s left: it did; 600 s: it did not).
            expires = datetime.fromtimestamp(time.time() + 900, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            creds = work / "wandb-credentials.json"
            creds.write_text(json.dumps({"credentials": {fake.base("wandb"): {"access_token": token,
                                                                               "expires_at": expires}}}))
            creds.chmod(0o600)
            child.update(WANDB_BASE_URL=fake.base("wandb"), WANDB_CREDENTIALS_FILE=str(creds),
                         WANDB_IDENTITY_TOKEN_FILE=str(subject(issuer, fake, work, "wandb")))
        r = subprocess.run([sys.executable, "-c", check, vendor, fake.base(vendor), "-"], capture_output=True,
                           text=True, env=child, timeout=120)
        assert r.returncode == 0, (vendor, r.stderr[-2000:])
        assert fake.counts[vendor]["expired"] == 0
    assert {v: fake.counts[v]["exchange"] for v in KEYS} == exchanged, "no SDK exchanged again"


def test_run_as_files_hands_huggingface_hub_its_token_path(world):
    issuer, fake, work = world
    cfg = config(issuer, fake, work)
    env = tool_env(work)
    env["SIMPLETUNER_NODE_CACHE"] = "0"
    child = ("import os; from huggingface_hub import HfApi; "
             "assert 'HF_TOKEN' not in os.environ and os.stat(os.environ['HF_TOKEN_PATH']).st_mode & 0o777 == 0o600; "
             f"print(HfApi(endpoint={fake.base('hf')!r}).whoami()['name'])")
    r = subprocess.run([BIN, "--config", str(cfg), "run", "--as-files", "--only", "HF_TOKEN", "--", sys.executable,
                        "-c", child], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "alice"
    assert fake.counts["hf"]["exchange"] == 1


def test_run_as_files_hands_wandb_its_credentials_file_and_wandb_does_not_exchange(world):
    issuer, fake, work = world
    cfg = config(issuer, fake, work)
    env = tool_env(work)
    env.update(SIMPLETUNER_NODE_CACHE="0", WANDB_SILENT="true", WANDB_DIR=str(work), WANDB_CONFIG_DIR=str(work))
    child = ("import os, wandb; assert 'WANDB_API_KEY' not in os.environ; "
             "print(wandb.Api(timeout=20).viewer.username)")
    r = subprocess.run([BIN, "--config", str(cfg), "run", "--as-files", "--only", "WANDB_API_KEY", "--",
                        sys.executable, "-c", child], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "alice"
    assert fake.counts["wandb"]["exchange"] == 1, "the tool's exchange only"


def test_run_as_files_hands_anthropic_its_sdks_profile(world):
    # The SDK's profile for a token kept current elsewhere: the SDK sends it
    # with the OAuth API's beta flag (a bare ANTHROPIC_AUTH_TOKEN is not),
    # to the API the exchange's endpoint names, and never exchanges itself.
    issuer, fake, work = world
    cfg = config(issuer, fake, work)
    env = tool_env(work)
    env["SIMPLETUNER_NODE_CACHE"] = "0"
    child = ("import os, stat, anthropic; assert 'ANTHROPIC_AUTH_TOKEN' not in os.environ; "
             "d = os.environ['ANTHROPIC_CONFIG_DIR']; p = os.environ['ANTHROPIC_PROFILE']; "
             "assert stat.S_IMODE(os.stat(f'{d}/credentials/{p}.json').st_mode) == 0o600; "
             "print(anthropic.Anthropic().models.list().data[0].display_name)")
    r = subprocess.run([BIN, "--config", str(cfg), "run", "--as-files", "--only", "ANTHROPIC_AUTH_TOKEN", "--",
                        sys.executable, "-c", child], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "wrkspc_default"
    assert fake.counts["anthropic"]["exchange"] == 1, "the tool's exchange only"
    assert fake.counts["anthropic"]["expired"] == 0


S3_CHECK = textwrap.dedent("""
    import boto3, os, sys
    s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", **dict(zip(
        ("aws_access_key_id", "aws_secret_access_key"), sys.argv[2:4])))
    print(" ".join(b["Name"] for b in s3.list_buckets()["Buckets"]))
""")


def test_coreweaves_key_pair_reaches_s3_through_boto3_and_the_tools_credentials_file(world):
    # CoreWeave publishes no SDK for its exchange: the fake is shown by its
    # documented request (as its curl example sends it) and by boto3, AWS's
    # own S3 client, signing with the keys it gave.
    issuer, fake, work = world
    token = issuer.mint(fake.audience("coreweave"), 7200, user="alice")
    body = json.dumps({"durationSeconds": 300, "orgId": "org_test", "oidcToken": token}).encode()
    request = urllib.request.Request(fake.base("coreweave") + "/v1/cwobject/temporary-credentials/oidc",
                                     data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        keys = json.load(r)
    base = fake.base("coreweave")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    s3 = [sys.executable, "-c", S3_CHECK, base]
    r = subprocess.run(s3 + [keys["accessKeyId"], keys["secretKey"]], capture_output=True, text=True, env=env,
                       timeout=60)
    assert (r.returncode, r.stdout.strip()) == (0, "checkpoints"), r.stderr[-2000:]
    r = subprocess.run(s3 + [keys["accessKeyId"], "not-the-secret"], capture_output=True, text=True, env=env,
                       timeout=60)
    assert r.returncode != 0 and "InvalidAccessKeyId" in r.stderr, r.stderr[-2000:]
    # The tool: one exchange gives both secrets, and run --as-files hands
    # them to boto3 as the AWS credentials file.
    subject_file = work / "coreweave.jwt"
    subject_file.write_text(token)
    subject_file.chmod(0o600)
    cfg = work / "coreweave.json"
    cfg.write_text(json.dumps({"providers": ["exchange"], "retries": 1, "exchanges": {"AWS_SECRET_ACCESS_KEY": {
        "profile": "coreweave-object-storage", "url": base + "/v1/cwobject/temporary-credentials/oidc",
        "audience": fake.audience("coreweave"), "organization_id": "org_test", "duration_seconds": 900,
        "subject_token_file": str(subject_file)}}}))
    child = textwrap.dedent("""
        import boto3, os, sys
        assert "AWS_SECRET_ACCESS_KEY" not in os.environ and os.environ["AWS_SHARED_CREDENTIALS_FILE"]
        s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
        print(" ".join(b["Name"] for b in s3.list_buckets()["Buckets"]))
    """)
    tool = {**tool_env(work), "SIMPLETUNER_NODE_CACHE": "0", "AWS_EC2_METADATA_DISABLED": "true"}
    for k in [k for k in tool if k.startswith("AWS_") and k != "AWS_EC2_METADATA_DISABLED"]:
        del tool[k]
    r = subprocess.run([BIN, "--config", str(cfg), "run", "--as-files", "--only",
                        "AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY", "--", sys.executable, "-c", child, base],
                       capture_output=True, text=True, env=tool, timeout=120)
    assert (r.returncode, r.stdout.strip()) == (0, "checkpoints"), r.stderr[-2000:]
    assert fake.counts["coreweave"]["exchange"] == 2, "the documented request's and the tool's one"
    assert fake.counts["coreweave"]["expired"] == 0


def test_a_subject_token_that_would_be_refused_is_never_sent(world):
    issuer, fake, work = world
    env = tool_env(work)
    env["SIMPLETUNER_NODE_CACHE"] = "0"
    now = int(time.time())
    cases = {
        "expired": {"iat": now - 900, "nbf": now - 900, "exp": now - 60},
        "not valid yet": {"iat": now + 600, "nbf": now + 600, "exp": now + 1500},  # a clock 10 minutes off
    }
    for why, claims in cases.items():
        cfg = config(issuer, fake, work, **claims)
        r = get(cfg, "HF_TOKEN", env)
        assert r.returncode != 0 and why in r.stderr, (why, r.stderr)
    # Another audience's token.
    cfg = config(issuer, fake, work)
    (work / "hf.jwt").write_text(issuer.mint(fake.audience("openai"), user="alice"))
    r = get(cfg, "HF_TOKEN", env)
    assert r.returncode != 0 and "for audience" in r.stderr, r.stderr
    assert fake.counts["hf"]["exchange"] + fake.counts["hf"]["refused"] == 0, "nothing was sent"
    # A registration's claim unmatched: the vendor's refusal, named, not retried.
    (work / "hf.jwt").write_text(issuer.mint(fake.audience("hf"), 7200, user="mallory"))
    r = get(cfg, "HF_TOKEN", env)
    assert r.returncode != 0 and "invalid_grant" in r.stderr, r.stderr
    assert fake.counts["hf"]["refused"] == 1


def test_run_as_files_watch_keeps_wandbs_credentials_file_current(tmp_path):
    # W&B's credentials of 10 s, read by the command every second for 18 s
    # from the file wandb itself would read: each read finds a credential
    # the API takes, the file is rewritten as the node exchanges again, and
    # wandb never needs to exchange itself.
    issuer = Issuer()
    fake = FakeVendors(issuer.url, claims={"user": "alice"}, lifetimes={"wandb": 10})
    try:
        cfg = config(issuer, fake, tmp_path)
        env = tool_env(tmp_path)
        env["SIMPLETUNER_NODE_CACHE"] = "0"
        child = textwrap.dedent("""
            import json, os, sys, time, urllib.request, urllib.error
            path, base = os.environ["WANDB_CREDENTIALS_FILE"], os.environ["WANDB_BASE_URL"]
            assert "WANDB_API_KEY" not in os.environ and os.path.exists(os.environ["WANDB_IDENTITY_TOKEN_FILE"])
            assert os.stat(path).st_mode & 0o777 == 0o600
            seen, refused = set(), 0
            for _ in range(18):
                creds = json.load(open(path))["credentials"][base]
                seen.add(creds["access_token"])
                req = urllib.request.Request(base + "/graphql", data=b"{}",
                                             headers={"Authorization": "Bearer " + creds["access_token"]})
                try:
                    urllib.request.urlopen(req, timeout=5).read()
                except urllib.error.HTTPError:
                    refused += 1
                time.sleep(1)
            print(json.dumps({"tokens": len(seen), "refused": refused}))
        """)
        r = subprocess.run([BIN, "--config", str(cfg), "run", "--as-files", "--watch", "--no-mask", "--only",
                            "WANDB_API_KEY", "--", sys.executable, "-c", child], capture_output=True, text=True,
                           env=env, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        got = json.loads(r.stdout.splitlines()[-1])
        assert got["refused"] == 0 and fake.counts["wandb"]["expired"] == 0, (got, fake.counts["wandb"])
        assert got["tokens"] >= 2, got
        assert fake.counts["wandb"]["exchange"] == got["tokens"], (got, fake.counts["wandb"])
    finally:
        fake.stop()
        issuer.stop()
