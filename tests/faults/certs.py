"""certs.py CA_CRT CA_KEY DIR: server certificates that a client must refuse,
signed by the test CA (tests/bats/lib/peers.bash): DIR/wrongname.{crt,key}
(valid, for wrong.example only) and DIR/expired.{crt,key} (127.0.0.1, but
expired yesterday). For the fault matrix's fail-closed cases."""

import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def make(ca_cert, ca_key, out, cn, names, not_before, not_after):
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    with open(out + ".crt", "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(out + ".key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def main():
    with open(sys.argv[1], "rb") as f:
        ca_cert = x509.load_pem_x509_certificate(f.read())
    with open(sys.argv[2], "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    out = sys.argv[3]
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    make(ca_cert, ca_key, os.path.join(out, "wrongname"), "wrong.example",
         [x509.DNSName("wrong.example")], now - day, now + day)
    make(ca_cert, ca_key, os.path.join(out, "expired"), "127.0.0.1",
         [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
         now - 3 * day, now - day)


if __name__ == "__main__":
    sys.exit(main())
