"""Node certificates: the wallet in the SAN, hashes, encrypted keys, and a TLS 1.3 mutual handshake."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from eth_account import Account

from flownet.cli import cli
from flownet.errors import ConfigError
from flownet.pki import inspect, new_identity, write_identity

WALLET = Account.create().address


def test_certificate_names_its_wallet_and_hashes_are_stable() -> None:
    key, certificate = new_identity(WALLET.lower(), 31337, days=30)
    info = inspect(certificate)
    assert (info.chain_id, info.wallet) == (31337, WALLET)
    assert info.cert_hash == hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert info.key_hash == hashlib.sha256(spki).digest()
    assert 29 * 86400 < info.not_after - info.not_before <= 30 * 86400 + 300
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False


@pytest.mark.parametrize(("days", "chain"), [(0, 1), (3651, 1), (10, 0)])
def test_bad_parameters(days: int, chain: int) -> None:
    with pytest.raises(ConfigError):
        new_identity(WALLET, chain, days=days)


def test_certificate_without_wallet_is_refused() -> None:
    _, certificate = new_identity(WALLET, 1)
    bare = x509.load_der_x509_certificate(certificate.public_bytes(serialization.Encoding.DER))
    assert inspect(bare).wallet == WALLET
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "no wallet")])
    import datetime as dt

    now = dt.datetime.now(dt.UTC)
    plain = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    with pytest.raises(ConfigError, match="no subjectAltName naming a wallet"):
        inspect(plain)


def test_mutual_tls13_handshake_with_encrypted_keys(tmp_path: Path) -> None:
    paths = {}
    for who in ("provider", "client"):
        key, certificate = new_identity(Account.create().address, 31337)
        paths[who] = write_identity(tmp_path, who, key, certificate, f"{who}-password")
        assert paths[who][0].stat().st_mode & 0o777 == 0o600
        assert b"ENCRYPTED PRIVATE KEY" in paths[who][0].read_bytes()
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    server_ctx.load_cert_chain(paths["provider"][1], paths["provider"][0], password="provider-password")
    server_ctx.load_verify_locations(paths["client"][1])
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    client_ctx.check_hostname = False
    client_ctx.load_cert_chain(paths["client"][1], paths["client"][0], password="client-password")
    client_ctx.load_verify_locations(paths["provider"][1])

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: dict[str, object] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            seen["peer"] = inspect(x509.load_der_x509_certificate(der)).wallet
            seen["version"] = tls.version()
            tls.sendall(tls.recv(5))

    thread = threading.Thread(target=serve)
    thread.start()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, client_ctx.wrap_socket(raw) as tls:
        tls.sendall(b"hello")
        assert tls.recv(5) == b"hello"
    thread.join(5)
    listener.close()
    client_wallet = inspect(x509.load_pem_x509_certificate(paths["client"][1].read_bytes())).wallet
    assert seen == {"peer": client_wallet, "version": "TLSv1.3"}


def test_cert_new_and_show_commands(tmp_path: Path) -> None:
    env = {"FLOWNET_SCRYPT_N": "1024", "FLOWNET_PASSWORD": "cert-test-password"}
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli, ["--home", str(tmp_path), *args], env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    run("wallet", "new", "alice")
    address = run("wallet", "address", "alice").strip()
    out = run("cert", "new", "--wallet", "alice", "--chain-id", "31337", "--days", "7")
    assert f"wallet      eip155:31337:{address}" in out
    crt = tmp_path / "certs" / "alice.crt.pem"
    assert f"eip155:31337:{address}" in run("cert", "show", str(crt))
    again = runner.invoke(
        cli, ["--home", str(tmp_path), "cert", "new", "--wallet", "alice", "--chain-id", "1"], env=env
    )
    assert again.exit_code == 2 and "already exists" in again.output
    wrong = runner.invoke(
        cli, ["--home", str(tmp_path), "cert", "new", "--wallet", "alice", "--chain-id", "1"],
        env={**env, "FLOWNET_PASSWORD": "nope"},
    )  # fmt: skip
    assert wrong.exit_code == 7 and "wrong password" in wrong.output
