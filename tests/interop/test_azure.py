"""The Azure provider against tests/azure/fake_azure.py, the fake of Key
Vault, Microsoft Entra and the managed identity endpoints (no emulator of
them installs here), which Microsoft's own libraries (azure-identity,
azure-keyvault-secrets) are pointed at first, in the same run, to show it
faithful.

Environment: ST_SECRETS_BIN (the tool)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "azure"))
from fake_azure import TENANT, FakeAzure, thumbprints  # noqa: E402

BIN = os.environ["ST_SECRETS_BIN"]


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture(scope="module")
def azure(tmp_path_factory):
    work = tmp_path_factory.mktemp("azure")
    # The https side's certificate, for 127.0.0.1 (Microsoft's libraries speak https only).
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(work / "tls.key"), "-out", str(work / "tls.crt"))
    fake = FakeAzure(str(work / "tls.crt"), str(work / "tls.key"))
    fake.apps["app-secret"] = {"secret": "entra-client-secret"}
    # An application's certificate and key, in one PEM file (0600).
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=app-cert",
            "-keyout", str(work / "app.key"), "-out", str(work / "app.crt"))
    cert_pem = (work / "app.crt").read_text()
    both = work / "app.pem"
    both.write_text(cert_pem + (work / "app.key").read_text())
    both.chmod(0o600)
    from cryptography import x509
    fake.apps["app-cert"] = {"thumbprint": thumbprints(cert_pem),
                             "public_key": x509.load_pem_x509_certificate(cert_pem.encode()).public_key()}
    # Workload identity: a Kubernetes-style token for Entra's exchange audience.
    issuer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake.apps["app-wi"] = {"issuer_key": issuer.public_key()}
    federated = work / "azure-identity-token"

    def write_federated():
        federated.write_text(jwt.encode({"sub": "system:serviceaccount:ml:trainer", "aud": "api://AzureADTokenExchange",
                                         "exp": int(time.time()) + 3600}, pem(issuer), algorithm="RS256"))
        federated.chmod(0o600)

    write_federated()
    fake.set_secret("training", json.dumps({"HF_TOKEN": "hf_from_azure", "WANDB_API_KEY": "wandb_from_azure"}))
    fake.set_secret("replicate-api-token", "r8_from_azure")
    yield {"fake": fake, "work": work, "ca": work / "tls.crt", "cert": both, "federated": federated}
    fake.stop()


SDK_CHECK = textwrap.dedent("""
    import json, os, sys
    from azure.core.exceptions import HttpResponseError
    from azure.identity import (CertificateCredential, ClientSecretCredential, ManagedIdentityCredential,
                                WorkloadIdentityCredential)
    from azure.keyvault.secrets import SecretClient
    https, http, tenant, cert, federated = sys.argv[1:6]
    kw = {"authority": https, "disable_instance_discovery": True}
    creds = {
        "client_secret": ClientSecretCredential(tenant, "app-secret", "entra-client-secret", **kw),
        "certificate": CertificateCredential(tenant, "app-cert", certificate_path=cert, **kw),
        "workload_identity": WorkloadIdentityCredential(tenant_id=tenant, client_id="app-wi",
                                                        token_file_path=federated, **kw),
    }
    os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = http
    creds["imds"] = ManagedIdentityCredential()
    out = {}
    for name, cred in creds.items():
        # The vault is 127.0.0.1: its challenge's resource cannot be a parent
        # domain of it, so the SDK's domain check is turned off (the tool's is
        # exercised against a challenge naming another host).
        client = SecretClient(https, cred, verify_challenge_resource=False)
        out[name] = json.loads(client.get_secret("training").value)["HF_TOKEN"]
    del os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"]
    os.environ["IDENTITY_ENDPOINT"] = http + "/msi/token"
    os.environ["IDENTITY_HEADER"] = "app-service-header"
    client = SecretClient(https, ManagedIdentityCredential(), verify_challenge_resource=False)
    out["app_service"] = client.get_secret("replicate-api-token").value
    # Versions as the SDK writes them: a new one, then disabled.
    s = client.set_secret("sdk-made", "first")
    s2 = client.set_secret("sdk-made", "second")
    out["versions"] = [client.get_secret("sdk-made", s.properties.version).value, client.get_secret("sdk-made").value]
    client.update_secret_properties("sdk-made", s2.properties.version, enabled=False)
    try:
        client.get_secret("sdk-made")
        out["disabled"] = "served"
    except HttpResponseError as e:
        out["disabled"] = [e.status_code, e.error.code if e.error else None]
    print(json.dumps(out))
""")


def test_microsofts_own_libraries_accept_the_fake(azure):
    fake = azure["fake"]
    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(azure["ca"]), "SSL_CERT_FILE": str(azure["ca"])}
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "IDENTITY_ENDPOINT", "MSI_ENDPOINT", "AZURE_FEDERATED_TOKEN_FILE"):
        env.pop(name, None)
    before = dict(fake.counts)
    r = subprocess.run([sys.executable, "-c", SDK_CHECK, fake.https_url, fake.url, TENANT, str(azure["cert"]),
                        str(azure["federated"])], env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout)
    assert out == {"client_secret": "hf_from_azure", "certificate": "hf_from_azure",
                   "workload_identity": "hf_from_azure", "imds": "hf_from_azure", "app_service": "r8_from_azure",
                   "versions": ["first", "second"], "disabled": [403, "Forbidden"]}
    assert fake.counts["token"] - before["token"] == 3  # secret, certificate, workload identity
    assert fake.counts["imds"] > before["imds"] and fake.counts["app_service"] > before["app_service"]
    assert fake.counts["challenge"] > before["challenge"]
    assert fake.counts["expired"] == before["expired"] and fake.counts["refused"] == before["refused"]


def tool(azure, *args, env=None, config=None):
    work = azure["work"]
    cfg = work / "config.json"
    cfg.write_text(json.dumps(config or {"providers": ["azure"], "azure_vault": azure["fake"].url,
                                         "azure_secret": ["training", "replicate-api-token"]}))
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "AWS_EC2_METADATA_DISABLED": "true",
            # Never the real instance metadata service.
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9"}
    return subprocess.run([BIN, "--config", str(cfg), *args], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=120)


def credentials(azure, kind):
    url = azure["fake"].url
    entra = {"AZURE_TENANT_ID": TENANT, "AZURE_AUTHORITY_HOST": url}
    return {
        "client_secret": {**entra, "AZURE_CLIENT_ID": "app-secret", "AZURE_CLIENT_SECRET": "entra-client-secret"},
        "certificate": {**entra, "AZURE_CLIENT_ID": "app-cert", "AZURE_CLIENT_CERTIFICATE_PATH": str(azure["cert"])},
        "workload_identity": {**entra, "AZURE_CLIENT_ID": "app-wi",
                              "AZURE_FEDERATED_TOKEN_FILE": str(azure["federated"])},
        "imds": {"AZURE_POD_IDENTITY_AUTHORITY_HOST": url},
        "app_service": {"IDENTITY_ENDPOINT": f"{url}/msi/token", "IDENTITY_HEADER": "app-service-header"},
    }[kind]


@pytest.mark.parametrize("kind", ["client_secret", "certificate", "workload_identity", "imds", "app_service"])
def test_the_tool_reads_secrets_with_each_kind_of_credentials(azure, kind):
    fake = azure["fake"]
    counter = {"imds": "imds", "app_service": "app_service"}.get(kind, "token")
    before = dict(fake.counts)
    r = tool(azure, "get", "HF_TOKEN", env=credentials(azure, kind))
    assert (r.returncode, r.stdout.strip()) == (0, "hf_from_azure"), r.stderr
    # A value that is not a JSON object: one key, the secret's name.
    r = tool(azure, "get", "REPLICATE_API_TOKEN", env=credentials(azure, kind))
    assert (r.returncode, r.stdout.strip()) == (0, "r8_from_azure"), r.stderr
    assert fake.counts[counter] - before[counter] == 2, "one token per process"
    assert fake.counts["challenge"] - before["challenge"] == 2, "one challenge per process"
    assert fake.counts["expired"] == before["expired"] and fake.counts["refused"] == before["refused"]


def test_a_disabled_current_version_is_refused_by_name_and_never_the_one_before(azure):
    fake = azure["fake"]
    fake.set_secret("rotating", json.dumps({"ROTATING_KEY": "v1"}))
    v2 = fake.set_secret("rotating", json.dumps({"ROTATING_KEY": "v2"}))
    env = credentials(azure, "client_secret")
    config = {"providers": ["azure"], "azure_vault": fake.url, "azure_secret": "rotating"}
    assert tool(azure, "get", "ROTATING_KEY", env=env, config=config).stdout.strip() == "v2"
    fake.set_enabled("rotating", v2, False)
    try:
        r = tool(azure, "get", "ROTATING_KEY", env=env, config=config)
        assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
        assert "secret 'rotating'" in r.stderr and "is disabled" in r.stderr and "v1" not in r.stdout
        # The version before, named, is read.
        v1 = fake.vault["rotating"][0]["version"]
        pinned = {**config, "azure_secret": f"rotating/{v1}"}
        assert tool(azure, "get", "ROTATING_KEY", env=env, config=pinned).stdout.strip() == "v1"
    finally:
        fake.set_enabled("rotating", v2, True)


def test_a_nodes_processes_share_one_token_for_its_lifetime_not_for_cache_ttl(azure):
    # The node's processes one after another, values kept 1 s, Entra's
    # tokens 8 s (replaced 80% through: after 6.4 s). The short form of the
    # cloud benchmark's federated run.
    fake = azure["fake"]
    shm = tempfile.mkdtemp(prefix="st-azure-node-", dir="/dev/shm")
    config = {"providers": ["azure"], "azure_vault": fake.url, "azure_secret": "training", "cache_ttl": 1,
              "node_cache": True, "node_cache_dir": shm}
    env = credentials(azure, "workload_identity")
    fake.token_ttl = 8
    before = dict(fake.counts)
    try:
        started = time.monotonic()
        for at in (0.0, 1.6, 3.2, 7.0):
            time.sleep(max(0.0, started + at - time.monotonic()))
            r = tool(azure, "get", "HF_TOKEN", env=env, config=config)
            assert (r.returncode, r.stdout.strip()) == (0, "hf_from_azure"), r.stderr
            if at == 3.2:
                # Three reads (each value past its TTL), one token.
                assert (fake.counts["get"] - before["get"], fake.counts["token"] - before["token"]) == (3, 1)
        assert (fake.counts["get"] - before["get"], fake.counts["token"] - before["token"]) == (4, 2)
        assert fake.counts["expired"] == before["expired"] and fake.counts["refused"] == before["refused"]
    finally:
        fake.token_ttl = 3599
        shutil.rmtree(shm)


def test_bad_input_is_refused_by_name_without_values(azure):
    fake = azure["fake"]
    env = credentials(azure, "client_secret")
    # A challenge naming another host gets no token (a vault that is not what it says).
    fake.challenge_resource = "https://vault.azure.net"
    before = dict(fake.counts)
    try:
        r = tool(azure, "get", "HF_TOKEN", env=env)
    finally:
        fake.challenge_resource = fake.resource
    assert r.returncode != 0 and "not the vault's host 127.0.0.1" in r.stderr, r.stderr
    assert fake.counts["token"] == before["token"]
    # A wrong client secret: Entra's refusal, not the secret.
    r = tool(azure, "get", "HF_TOKEN", env={**env, "AZURE_CLIENT_SECRET": "wrong-secret-value"})
    assert r.returncode != 0 and "invalid_client" in r.stderr and "wrong-secret" not in r.stderr, r.stderr
    # A federated token file others may write.
    writable = azure["work"] / "writable-token"
    writable.write_text(azure["federated"].read_text())
    writable.chmod(0o666)
    r = tool(azure, "get", "HF_TOKEN", env={**credentials(azure, "workload_identity"),
                                             "AZURE_FEDERATED_TOKEN_FILE": str(writable)})
    assert "writable by group or others" in r.stderr and "writable-token" in r.stderr, r.stderr
    # A certificate file without its key (private, as the rule asks of the file).
    keyless = azure["work"] / "keyless.pem"
    keyless.write_text((azure["work"] / "app.crt").read_text())
    keyless.chmod(0o600)
    r = tool(azure, "get", "HF_TOKEN", env={**credentials(azure, "certificate"),
                                             "AZURE_CLIENT_CERTIFICATE_PATH": str(keyless)})
    assert "no unencrypted PEM private key" in r.stderr, r.stderr
    # The certificate file holds its key: one everyone may read is refused.
    keyless.chmod(0o644)
    r = tool(azure, "get", "HF_TOKEN", env={**credentials(azure, "certificate"),
                                             "AZURE_CLIENT_CERTIFICATE_PATH": str(keyless)})
    assert "readable by everyone" in r.stderr, r.stderr
    # A secret name Key Vault would not accept, said by the configuration.
    r = tool(azure, "get", "HF_TOKEN", env=env,
             config={"providers": ["azure"], "azure_vault": fake.url, "azure_secret": "hf_token"})
    assert r.returncode != 0 and "azure_secret" in r.stderr and "NAME or NAME/VERSION" in r.stderr, r.stderr
