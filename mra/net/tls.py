"""TLS for the listeners: certificates, the context, and a self-signed pair for the demo.

TLS 1.2 is the minimum (RFC 8996 retired 1.0 and 1.1; RFC 8314 4.1 asks for 1.2 or later).
The certificate and key are read into memory at start-up (before privileges are dropped) and
again on SIGHUP; a reload that fails keeps the old context and logs why.
"""

from __future__ import annotations

import datetime
import ipaddress
import os

from OpenSSL import SSL
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLContextFactory
from zope.interface import implementer

from mra import log


@implementer(IOpenSSLContextFactory)
class TLSContext:
    """A context factory whose certificate can be replaced while connections stay up."""

    def __init__(self, cert_path: str, key_path: str) -> None:
        self.cert_path = cert_path
        self.key_path = key_path or cert_path
        self._options = self._load()

    def _load(self) -> ssl.CertificateOptions:
        with open(self.cert_path, "rb") as f:
            cert_pem = f.read()
        with open(self.key_path, "rb") as f:
            key_pem = f.read()
        cert = ssl.Certificate.loadPEM(cert_pem)
        key = ssl.KeyPair.load(key_pem, 1)  # FILETYPE_PEM
        chain = [ssl.Certificate.loadPEM(block).original for block in _pem_blocks(cert_pem)[1:]]
        options = ssl.CertificateOptions(
            privateKey=key.original,
            certificate=cert.original,
            extraCertChain=chain,
            raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
        )
        # The context is made on first use, and that is where OpenSSL finds a key that does
        # not match the certificate: make it now, so that a bad pair fails the load (and a
        # reload keeps the old pair) rather than every handshake after it.
        options.getContext()
        return options

    def reload(self) -> bool:
        try:
            self._options = self._load()
        except Exception as exc:
            log.error("tls-reload-failed", cert=self.cert_path, error=str(exc))
            return False
        log.info("tls-reloaded", cert=self.cert_path)
        return True

    def getContext(self) -> SSL.Context:
        return self._options.getContext()


def _pem_blocks(pem: bytes) -> list[bytes]:
    marker = b"-----BEGIN CERTIFICATE-----"
    return [marker + part for part in pem.split(marker)[1:]]


def generate_self_signed(cert_path: str, key_path: str, hostname: str = "localhost") -> None:
    """A self-signed certificate for `hostname` (CN and SAN; mbsync checks the DNS name)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    os.makedirs(os.path.dirname(os.path.abspath(cert_path)), exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
