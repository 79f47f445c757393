"""Node identities for the mutual-TLS tunnel: a key pair and a self-issued X.509 certificate per wallet.

The certificate names its wallet in a SAN URI in CAIP-10 form, ``eip155:<chainId>:<address>``; the
wallet registers the certificate's hashes on chain (CertificateRegistry, one record per wallet and
hash), so a peer trusts a certificate because the chain says the wallet it names registered it, has not
revoked it and (for a provider or verifier) still has stake bonded — no certificate authority ever
sees, or generates, anyone's private key. The private key is stored encrypted with the
wallet's password.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from eth_utils.address import to_checksum_address

from flownet.errors import ConfigError

__all__ = ["CertInfo", "inspect", "new_identity", "write_identity"]

_SAN_RE = re.compile(r"^eip155:([0-9]{1,20}):(0x[0-9a-fA-F]{40})$")


@dataclass(frozen=True)
class CertInfo:
    """What the registry and the tunnel need to know about a certificate."""

    cert_hash: bytes  # sha256 of the DER
    key_hash: bytes  # sha256 of the SubjectPublicKeyInfo DER
    chain_id: int
    wallet: str
    not_before: int
    not_after: int


def new_identity(
    wallet: str, chain_id: int, days: int = 365, now: dt.datetime | None = None
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A fresh P-256 key and a certificate for `wallet` on `chain_id`, valid for `days` days."""
    if not 1 <= days <= 3650:
        raise ConfigError(f"certificate lifetime must be 1..3650 days (not {days})")
    if chain_id <= 0:
        raise ConfigError(f"chain id must be positive (not {chain_id})")
    wallet = str(to_checksum_address(wallet))
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"flownet node {wallet}")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(os.urandom(16), "big") >> 1)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(f"eip155:{chain_id}:{wallet}")]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def inspect(certificate: x509.Certificate) -> CertInfo:
    """The hashes and the wallet of `certificate`; a certificate without a FlowNet SAN is refused."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise ConfigError("certificate has no subjectAltName naming a wallet (eip155:<chainId>:<address>)") from None
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if _SAN_RE.match(u)]
    if len(uris) != 1:
        raise ConfigError(f"certificate must name exactly one wallet as eip155:<chainId>:<address> (found {uris})")
    match = _SAN_RE.match(uris[0])
    assert match is not None
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return CertInfo(
        cert_hash=hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest(),
        key_hash=hashlib.sha256(spki).digest(),
        chain_id=int(match.group(1)),
        wallet=str(to_checksum_address(match.group(2))),
        not_before=int(certificate.not_valid_before_utc.timestamp()),
        not_after=int(certificate.not_valid_after_utc.timestamp()),
    )


def write_identity(
    directory: Path, name: str, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate, password: str
) -> tuple[Path, Path]:
    """Write ``<name>.key.pem`` (encrypted with `password`, mode 0600) and ``<name>.crt.pem``; never overwrite."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_path, cert_path = directory / f"{name}.key.pem", directory / f"{name}.crt.pem"
    for path in (key_path, cert_path):
        if path.exists():
            raise ConfigError(f"{path} already exists; remove it or choose another name")
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode()),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(encrypted)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path
