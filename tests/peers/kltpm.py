"""kltpm - TPM 2.0 structures and crypto for the kl test peers.

Parses what an agent sends (TPM2B_PUBLIC, TPMS_ATTEST, TPMT_SIGNATURE, the
tpm2-tools PCR blob, IMA ascii lines, TCG2 event logs), verifies signatures
with an AK public area, and performs a software TPM2_MakeCredential to an RSA
or ECC EK. Layouts follow docs/protocol.md (sections given in the
comments) and the TPM 2.0 Library spec, Part 1 (credential protection, KDFa,
KDFe) and Part 2 (structures).

Every parser is strict: a wrong size, an unknown algorithm or a trailing byte
raises TpmError with a short reason. The peers turn that into the HTTP answer
or the failed verdict Keylime would give.

Run as a program it offers a few helpers for shell tests:
    kltpm.py auth-tag CERTINFO AGENT_ID       HMAC of docs/protocol.md section 2.5
    kltpm.py name B64_TPM2B_PUBLIC            object name, hex
    kltpm.py makecred B64_EK_PUB HEX_NAME SECRET   credential blob, base64
"""

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


class TpmError(ValueError):
    """Bad TPM structure or failed check; str() is the reason."""


# TPM_ALG_ID values (Part 2, table 9) and the names Keylime uses on the wire.
HASH_ALGS = {0x0004: "sha1", 0x000B: "sha256", 0x000C: "sha384",
             0x000D: "sha512", 0x0012: "sm3_256"}
HASH_IDS = {v: k for k, v in HASH_ALGS.items()}
SIG_ALGS = {0x0014: "rsassa", 0x0016: "rsapss", 0x0018: "ecdsa",
            0x001A: "ecdaa", 0x001B: "sm2", 0x001C: "ecschnorr"}
SIG_IDS = {v: k for k, v in SIG_ALGS.items()}
ALG_RSA, ALG_ECC, ALG_KEYEDHASH, ALG_SYMCIPHER = 0x0001, 0x0023, 0x0008, 0x0025
ALG_NULL, ALG_AES, ALG_CFB, ALG_RSAES, ALG_OAEP = 0x0010, 0x0006, 0x0043, 0x0015, 0x0017
CURVES = {0x0003: (ec.SECP256R1, 32), 0x0004: (ec.SECP384R1, 48),
          0x0005: (ec.SECP521R1, 66)}

# TPMA_OBJECT bits used here.
OBJ_FIXED_TPM = 0x00000002
OBJ_RESTRICTED = 0x00010000
OBJ_DECRYPT = 0x00020000
OBJ_SIGN = 0x00040000

TPM_GENERATED_VALUE = 0xFF544347
ST_ATTEST_CERTIFY = 0x8017
ST_ATTEST_QUOTE = 0x8018


def hash_new(alg):
    """hashlib object for a Keylime hash name ("sha256") or a TPM_ALG_ID."""
    if isinstance(alg, int):
        if alg not in HASH_ALGS:
            raise TpmError("unsupported hash algorithm 0x%04x" % alg)
        alg = HASH_ALGS[alg]
    if alg == "sm3_256":
        raise TpmError("sm3_256 is not supported by the test peers")
    try:
        return hashlib.new(alg)
    except ValueError:
        raise TpmError("unknown hash algorithm %r" % alg) from None


def digest(alg, data):
    h = hash_new(alg)
    h.update(data)
    return h.digest()


def digest_size(alg):
    return hash_new(alg).digest_size


def crypto_hash(alg):
    """cryptography hash object for a name or TPM_ALG_ID."""
    name = HASH_ALGS.get(alg, alg) if isinstance(alg, int) else alg
    table = {"sha1": hashes.SHA1, "sha256": hashes.SHA256,
             "sha384": hashes.SHA384, "sha512": hashes.SHA512}
    if name not in table:
        raise TpmError("unsupported hash algorithm %r" % (name,))
    return table[name]()


def b64decode_strict(text, what="value"):
    """Standard base64 with padding, no whitespace: docs/protocol.md section 0."""
    if not isinstance(text, str):
        raise TpmError("%s is not a string" % what)
    if not re.fullmatch(r"[A-Za-z0-9+/]*={0,2}", text) or len(text) % 4:
        raise TpmError("%s is not strict base64" % what)
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise TpmError("%s is not strict base64" % what) from None


def b64(data):
    return base64.b64encode(data).decode("ascii")


class Reader:
    """Big-endian cursor over TPM wire bytes; every read checks the length."""

    def __init__(self, data, what):
        self.data = bytes(data)
        self.pos = 0
        self.what = what

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise TpmError("%s: truncated at byte %d" % (self.what, self.pos))
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def tpm2b(self):
        return self.take(self.u16())

    def end(self):
        if self.pos != len(self.data):
            raise TpmError("%s: %d trailing bytes" % (self.what, len(self.data) - self.pos))


def tpm2b(data):
    return struct.pack(">H", len(data)) + data


# ---------------------------------------------------------------------------
# TPM2B_PUBLIC / TPMT_PUBLIC (Part 2 section 12.2; docs/protocol.md section 8.2)

class Public:
    """A parsed TPMT_PUBLIC of an RSA or ECC key."""

    def __init__(self, tpmt):
        self.tpmt = bytes(tpmt)
        r = Reader(tpmt, "TPMT_PUBLIC")
        self.type = r.u16()
        self.name_alg = r.u16()
        if self.name_alg not in HASH_ALGS:
            raise TpmError("TPMT_PUBLIC: unknown nameAlg 0x%04x" % self.name_alg)
        self.attrs = r.u32()
        self.auth_policy = r.tpm2b()
        self.sym_alg = r.u16()
        self.sym_bits = self.sym_mode = None
        if self.sym_alg != ALG_NULL:
            self.sym_bits = r.u16()
            self.sym_mode = r.u16()
        self.scheme = r.u16()
        self.scheme_hash = None
        if self.type == ALG_RSA:
            if self.scheme not in (ALG_NULL, ALG_RSAES):
                self.scheme_hash = r.u16()
            self.key_bits = r.u16()
            exponent = r.u32()
            self.exponent = exponent or 65537
            self.modulus = r.tpm2b()
            if len(self.modulus) * 8 != self.key_bits:
                raise TpmError("TPMT_PUBLIC: modulus is %d bytes for %d bits"
                               % (len(self.modulus), self.key_bits))
            self.key_algorithm = "rsa"
            self.key_size = self.key_bits
        elif self.type == ALG_ECC:
            if self.scheme != ALG_NULL:
                self.scheme_hash = r.u16()
                if self.scheme == 0x001A:  # ECDAA carries a count too
                    r.u16()
            self.curve = r.u16()
            kdf = r.u16()
            if kdf != ALG_NULL:
                r.u16()
            self.x = r.tpm2b()
            self.y = r.tpm2b()
            if self.curve not in CURVES:
                raise TpmError("TPMT_PUBLIC: unsupported curve 0x%04x" % self.curve)
            self.key_algorithm = "ecc"
            self.key_size = {0x0003: 256, 0x0004: 384, 0x0005: 521}[self.curve]
        else:
            raise TpmError("TPMT_PUBLIC: type 0x%04x is neither RSA nor ECC" % self.type)
        if self.scheme_hash is not None and self.scheme_hash not in HASH_ALGS:
            raise TpmError("TPMT_PUBLIC: unknown scheme hash 0x%04x" % self.scheme_hash)
        r.end()
        self._key = None

    @property
    def name(self):
        """nameAlg || H_nameAlg(TPMT_PUBLIC), docs/protocol.md section 8.3."""
        return struct.pack(">H", self.name_alg) + digest(self.name_alg, self.tpmt)

    @property
    def tpm2b_bytes(self):
        return tpm2b(self.tpmt)

    def is_restricted_signing(self):
        return (self.attrs & OBJ_RESTRICTED and self.attrs & OBJ_SIGN
                and not self.attrs & OBJ_DECRYPT)

    def scheme_name(self):
        return SIG_ALGS.get(self.scheme)

    def public_key(self):
        """The key as a cryptography public key object."""
        if self._key is None:
            if self.type == ALG_RSA:
                n = int.from_bytes(self.modulus, "big")
                self._key = rsa.RSAPublicNumbers(self.exponent, n).public_key()
            else:
                curve, _ = CURVES[self.curve]
                try:
                    self._key = ec.EllipticCurvePublicNumbers(
                        int.from_bytes(self.x, "big"), int.from_bytes(self.y, "big"),
                        curve()).public_key()
                except ValueError:
                    raise TpmError("TPMT_PUBLIC: ECC point is not on the curve") from None
        return self._key

    def same_key(self, other_key):
        """True if other_key (cryptography object) is this public key."""
        mine = self.public_key()
        if isinstance(mine, rsa.RSAPublicKey):
            return (isinstance(other_key, rsa.RSAPublicKey)
                    and mine.public_numbers() == other_key.public_numbers())
        return (isinstance(other_key, ec.EllipticCurvePublicKey)
                and mine.curve.name == other_key.curve.name
                and mine.public_numbers() == other_key.public_numbers())


def parse_tpm2b_public(data, what="TPM2B_PUBLIC"):
    """TPM2B_PUBLIC bytes -> Public; the size must cover the rest exactly."""
    r = Reader(data, what)
    inner = r.tpm2b()
    r.end()
    if not inner:
        raise TpmError("%s: empty" % what)
    try:
        return Public(inner)
    except TpmError as e:
        raise TpmError("%s: %s" % (what, e)) from None


def parse_public_any(data):
    """TPM2B_PUBLIC, or a bare TPMT_PUBLIC (the Rust agent's `public`)."""
    try:
        return parse_tpm2b_public(data)
    except TpmError:
        return Public(data)


# ---------------------------------------------------------------------------
# TPMS_ATTEST (docs/protocol.md section 8.5) and TPMT_SIGNATURE (section 8.6)

class Attest:
    def __init__(self, data):
        self.raw = bytes(data)
        r = Reader(data, "TPMS_ATTEST")
        self.magic = r.u32()
        self.type = r.u16()
        self.qualified_signer = r.tpm2b()
        self.extra_data = r.tpm2b()
        self.clock = r.u64()
        self.reset_count = r.u32()
        self.restart_count = r.u32()
        self.safe = r.u8()
        self.firmware_version = r.u64()
        if self.type == ST_ATTEST_CERTIFY:
            self.certified_name = r.tpm2b()
            self.certified_qualified_name = r.tpm2b()
        elif self.type == ST_ATTEST_QUOTE:
            self.pcr_select = parse_pcr_selection(r)
            self.pcr_digest = r.tpm2b()
        else:
            raise TpmError("TPMS_ATTEST: type 0x%04x is neither certify nor quote" % self.type)
        r.end()
        if self.magic != TPM_GENERATED_VALUE:
            raise TpmError("TPMS_ATTEST: magic 0x%08x is not TPM_GENERATED_VALUE" % self.magic)

    def clock_info(self):
        return {"clock": self.clock, "reset_count": self.reset_count,
                "restart_count": self.restart_count, "safe": self.safe}


def parse_pcr_selection(r):
    """TPML_PCR_SELECTION in wire format -> {hash_alg_id: set(pcrs)}."""
    count = r.u32()
    if count > 16:
        raise TpmError("TPML_PCR_SELECTION: %d banks" % count)
    out = {}
    for _ in range(count):
        alg = r.u16()
        size = r.u8()
        if size > 4:
            raise TpmError("TPML_PCR_SELECTION: sizeofSelect %d" % size)
        bitmap = r.take(size)
        if alg in out:
            raise TpmError("TPML_PCR_SELECTION: bank 0x%04x twice" % alg)
        out[alg] = {i * 8 + b for i, byte in enumerate(bitmap)
                    for b in range(8) if byte >> b & 1}
    return out


class Signature:
    def __init__(self, data):
        r = Reader(data, "TPMT_SIGNATURE")
        self.sig_alg = r.u16()
        if self.sig_alg in (0x0014, 0x0016):
            self.hash_alg = r.u16()
            self.sig = r.tpm2b()
        elif self.sig_alg in (0x0018, 0x001A, 0x001B, 0x001C):
            self.hash_alg = r.u16()
            self.r = r.tpm2b()
            self.s = r.tpm2b()
        else:
            raise TpmError("TPMT_SIGNATURE: unsupported sigAlg 0x%04x" % self.sig_alg)
        r.end()

    @property
    def scheme(self):
        return SIG_ALGS[self.sig_alg]

    @property
    def hash_name(self):
        return HASH_ALGS.get(self.hash_alg, "0x%04x" % self.hash_alg)


def verify_signature(pub, sig, message):
    """Check TPMT_SIGNATURE sig over message with Public pub; raise TpmError."""
    key = pub.public_key()
    h = crypto_hash(sig.hash_alg)
    try:
        if sig.sig_alg == 0x0014 and pub.type == ALG_RSA:
            key.verify(sig.sig, message, padding.PKCS1v15(), h)
        elif sig.sig_alg == 0x0016 and pub.type == ALG_RSA:
            key.verify(sig.sig, message,
                       padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.AUTO), h)
        elif sig.sig_alg == 0x0018 and pub.type == ALG_ECC:
            der = encode_dss_signature(int.from_bytes(sig.r, "big"), int.from_bytes(sig.s, "big"))
            key.verify(der, message, ec.ECDSA(h))
        else:
            raise TpmError("signature scheme %s does not fit a %s key"
                           % (sig.scheme, pub.key_algorithm))
    except InvalidSignature:
        raise TpmError("signature does not verify with the AK") from None


# ---------------------------------------------------------------------------
# The tpm2-tools "serialized" PCR blob (docs/protocol.md section 6.3.3): a
# little-endian image of TPML_PCR_SELECTION, u32 N, N x TPML_DIGEST, with the
# tpm2-tss struct sizes (8-byte selections, 66-byte digest slots).

PCR_BLOB_HEADER = 136
PCR_BLOB_BLOCK = 532


def parse_pcr_blob(blob):
    """-> (selection {alg_id: sorted pcr list}, [values in blob order])."""
    if len(blob) < PCR_BLOB_HEADER:
        raise TpmError("PCR blob: %d bytes, shorter than its header" % len(blob))
    count = struct.unpack_from("<I", blob, 0)[0]
    if count > 16:
        raise TpmError("PCR blob: selection count %d" % count)
    selection = {}
    for i in range(16):
        alg, size = struct.unpack_from("<HB", blob, 4 + 8 * i)
        bitmap = blob[4 + 8 * i + 3:4 + 8 * i + 7]
        if size not in (0, 3):
            raise TpmError("PCR blob: selection %d has sizeofSelect %d" % (i, size))
        if bitmap[3] or blob[4 + 8 * i + 7]:
            raise TpmError("PCR blob: selection %d has bits beyond PCR 23" % i)
        if i >= count:
            if alg or any(bitmap):
                raise TpmError("PCR blob: unused selection %d is not zero" % i)
            continue
        if alg not in HASH_ALGS:
            raise TpmError("PCR blob: selection %d has unknown hash 0x%04x" % (i, alg))
        if alg in selection:
            raise TpmError("PCR blob: bank 0x%04x selected twice" % alg)
        selection[alg] = sorted(j * 8 + b for j in range(3) for b in range(8)
                                if bitmap[j] >> b & 1)
    nblocks = struct.unpack_from("<I", blob, 132)[0]
    if len(blob) != PCR_BLOB_HEADER + PCR_BLOB_BLOCK * nblocks:
        raise TpmError("PCR blob: %d bytes, expected %d for %d digest blocks"
                       % (len(blob), PCR_BLOB_HEADER + PCR_BLOB_BLOCK * nblocks, nblocks))
    values = []
    for k in range(nblocks):
        base = PCR_BLOB_HEADER + PCR_BLOB_BLOCK * k
        bcount = struct.unpack_from("<I", blob, base)[0]
        if bcount > 8:
            raise TpmError("PCR blob: block %d count %d" % (k, bcount))
        for s in range(8):
            off = base + 4 + 66 * s
            size = struct.unpack_from("<H", blob, off)[0]
            if size > 64:
                raise TpmError("PCR blob: block %d slot %d size %d" % (k, s, size))
            if size:
                values.append(blob[off + 2:off + 2 + size])
    return selection, values


def build_pcr_blob(alg, pcrs, values):
    """The blob for one bank; pcrs ascending, values in the same order."""
    out = bytearray(struct.pack("<I", 1))
    bitmap = bytearray(3)
    for p in pcrs:
        bitmap[p // 8] |= 1 << (p % 8)
    out += struct.pack("<HB", alg, 3) + bitmap + b"\0\0"
    out += bytes(8 * 15)
    blocks = [values[i:i + 8] for i in range(0, len(values), 8)]
    out += struct.pack("<I", len(blocks))
    for block in blocks:
        out += struct.pack("<I", len(block))
        for v in block:
            out += struct.pack("<H", len(v)) + v + bytes(64 - len(v))
        out += bytes(66 * (8 - len(block)))
    return bytes(out)


def pcr_values_for_bank(blob, alg):
    """Blob -> {pcr: value} for bank alg, checked the strict way.

    Only one bank may be selected and it must be alg (the signing hash); each
    value must have the bank's digest size and there must be exactly one value
    per selected PCR. Keylime assigns the values of the signing bank in
    ascending PCR order and rejects trailing bytes; several banks would break
    its digest check, so they are refused here outright."""
    selection, values = parse_pcr_blob(blob)
    if list(selection) != [alg]:
        raise TpmError("PCR blob: selects banks %s, not only %s"
                       % ([HASH_ALGS.get(a, a) for a in selection], HASH_ALGS.get(alg, alg)))
    pcrs = selection[alg]
    if len(values) != len(pcrs):
        raise TpmError("PCR blob: %d values for %d selected PCRs" % (len(values), len(pcrs)))
    size = digest_size(alg)
    for i, v in enumerate(values):
        if len(v) != size:
            raise TpmError("PCR blob: value %d is %d bytes, not %d" % (i, len(v), size))
    return dict(zip(pcrs, values))


def pcr_extend(alg, old, data_digest):
    return digest(alg, old + data_digest)


# ---------------------------------------------------------------------------
# MakeCredential (Part 1 section 24, docs/protocol.md section 2.4)

def kdfa(alg, key, label, context_u, context_v, bits):
    """KDFa in counter mode with HMAC; label given without its NUL."""
    out = b""
    counter = 1
    while len(out) * 8 < bits:
        msg = (struct.pack(">I", counter) + label + b"\0" + context_u + context_v
               + struct.pack(">I", bits))
        out += hmac.new(key, msg, hash_new(alg).name).digest()
        counter += 1
    return out[:(bits + 7) // 8]


def kdfe(alg, z, label, party_u, party_v, bits):
    """KDFe (one-step KDF of SP 800-56A); label given without its NUL."""
    out = b""
    counter = 1
    while len(out) * 8 < bits:
        out += digest(alg, struct.pack(">I", counter) + z + label + b"\0" + party_u + party_v)
        counter += 1
    return out[:(bits + 7) // 8]


def _seed_for_ek(ek, rng):
    """Seed and its protection under the EK: (seed, encrypted secret bytes)."""
    nsize = digest_size(ek.name_alg)
    if ek.type == ALG_RSA:
        seed = rng(nsize)
        h = crypto_hash(ek.name_alg)
        enc = ek.public_key().encrypt(seed, padding.OAEP(
            mgf=padding.MGF1(h), algorithm=h, label=b"IDENTITY\0"))
        return seed, enc
    curve, csize = CURVES[ek.curve]
    eph = ec.generate_private_key(curve())
    shared = eph.exchange(ec.ECDH(), ek.public_key())  # x coordinate, padded
    nums = eph.public_key().public_numbers()
    ex = nums.x.to_bytes(csize, "big")
    ey = nums.y.to_bytes(csize, "big")
    ek_x = ek.x.rjust(csize, b"\0")
    seed = kdfe(ek.name_alg, shared, b"IDENTITY", ex, ek_x, nsize * 8)
    return seed, tpm2b(ex) + tpm2b(ey)


def make_credential(ek, object_name, credential, rng=os.urandom):
    """Software TPM2_MakeCredential -> the tpm2-tools credential file bytes.

    ek: Public of the EK (RSA or ECC, with an AES-CFB symmetric definition);
    object_name: the AK name; credential: the secret (at most a digest)."""
    if ek.sym_alg != ALG_AES or ek.sym_mode != ALG_CFB or ek.sym_bits not in (128, 192, 256):
        raise TpmError("EK has no AES-CFB symmetric definition")
    if len(credential) > digest_size(ek.name_alg):
        raise TpmError("credential longer than the EK nameAlg digest")
    seed, enc_secret = _seed_for_ek(ek, rng)
    sym_key = kdfa(ek.name_alg, seed, b"STORAGE", object_name, b"", ek.sym_bits)
    enc = Cipher(algorithms.AES(sym_key), modes.CFB(bytes(16))).encryptor()
    enc_identity = enc.update(tpm2b(credential)) + enc.finalize()
    hmac_key = kdfa(ek.name_alg, seed, b"INTEGRITY", b"", b"", digest_size(ek.name_alg) * 8)
    outer = hmac.new(hmac_key, enc_identity + object_name, hash_new(ek.name_alg).name).digest()
    id_object = tpm2b(outer) + enc_identity
    return (struct.pack(">II", 0xBADCC0DE, 1) + tpm2b(id_object) + tpm2b(enc_secret))


def auth_tag(challenge, agent_id):
    """hex(HMAC-SHA384(key = base64(challenge) as text, msg = agent id)), section 2.5."""
    if isinstance(challenge, str):
        challenge = challenge.encode()
    key = base64.b64encode(challenge)
    return hmac.new(key, agent_id.encode(), hashlib.sha384).hexdigest()


# ---------------------------------------------------------------------------
# IMA ascii log lines (docs/protocol.md section 6.5)

def ima_ng_template(algo, file_digest, path):
    """Template data of an ima-ng entry: d-ng field then n-ng field."""
    d = algo.encode() + b":\0" + file_digest
    p = path.encode() + b"\0"
    return struct.pack("<I", len(d)) + d + struct.pack("<I", len(p)) + p


class ImaEntry:
    """One parsed line; .template is the template data the PCR is extended with."""

    def __init__(self, line):
        fields = line.split(" ", 4)
        if len(fields) < 5:
            raise TpmError("IMA line has fewer than 5 fields")
        pcr, thash, tname, fdig, rest = fields
        if not pcr.isdigit():
            raise TpmError("IMA line: PCR %r is not a number" % pcr)
        self.pcr = int(pcr)
        if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{96}|[0-9a-f]{128}", thash):
            raise TpmError("IMA line: template hash is not lowercase hex")
        self.template_hash = bytes.fromhex(thash)
        self.template_name = tname
        m = re.fullmatch(r"([a-z0-9_]+):([0-9a-f]+)", fdig)
        if not m or len(m.group(2)) % 2:
            raise TpmError("IMA line: file digest is not <algo>:<hex>")
        self.file_algo = m.group(1)
        self.file_digest = bytes.fromhex(m.group(2))
        if tname == "ima-ng":
            self.path = rest
            self.template = ima_ng_template(self.file_algo, self.file_digest, self.path)
        elif tname == "ima-sig":
            path, sep, sig = rest.rpartition(" ")
            if sep and re.fullmatch(r"(?:[0-9a-f]{2})+", sig):
                self.path, sigb = path, bytes.fromhex(sig)
            else:
                self.path, sigb = rest, b""
            self.template = (ima_ng_template(self.file_algo, self.file_digest, self.path)
                             + struct.pack("<I", len(sigb)) + sigb)
        else:
            raise TpmError("IMA line: template %r is not supported" % tname)
        if not self.path:
            raise TpmError("IMA line: empty path")

    def is_violation(self):
        return not any(self.template_hash)

    def extend_value(self, alg):
        """What the kernel extends PCR 10 of bank alg with for this entry."""
        if self.is_violation():
            return b"\xff" * digest_size(alg)
        return digest(alg, self.template)


def ima_line(path, file_digest, algo="sha256", log_hash="sha1"):
    """An ima-ng line for a file digest; returns (line without newline, entry)."""
    t = ima_ng_template(algo, file_digest, path)
    line = "10 %s ima-ng %s:%s %s" % (digest(log_hash, t).hex(), algo, file_digest.hex(), path)
    return line, ImaEntry(line)


# ---------------------------------------------------------------------------
# TCG2 crypto-agile event log (binary_bios_measurements), for replay

EV_NO_ACTION = 0x00000003


def parse_tcg2_log(data):
    """-> list of (pcr, event_type, {alg_id: digest}); raise TpmError if not crypto-agile."""
    r = Reader(data, "event log")
    # First event: TCG_PCR_EVENT (SHA-1 format) holding the Spec ID event.
    pcr, etype = struct.unpack("<II", r.take(8))
    r.take(20)
    size = struct.unpack("<I", r.take(4))[0]
    spec = r.take(size)
    if etype != EV_NO_ACTION or not spec.startswith(b"Spec ID Event03\0"):
        raise TpmError("event log: no Spec ID Event03 header")
    sr = Reader(spec[16:], "Spec ID event")
    sr.take(4 + 1 + 1 + 1 + 1)  # platformClass, versions, uintnSize
    nalgs = struct.unpack("<I", sr.take(4))[0]
    sizes = {}
    for _ in range(nalgs):
        alg, dsize = struct.unpack("<HH", sr.take(4))
        sizes[alg] = dsize
    events = []
    while r.pos < len(r.data):
        pcr, etype, ndig = struct.unpack("<III", r.take(12))
        digests = {}
        for _ in range(ndig):
            alg = struct.unpack("<H", r.take(2))[0]
            if alg not in sizes:
                raise TpmError("event log: digest of undeclared algorithm 0x%04x" % alg)
            digests[alg] = r.take(sizes[alg])
        esize = struct.unpack("<I", r.take(4))[0]
        r.take(esize)
        events.append((pcr, etype, digests))
    return events


def replay_tcg2_log(data, alg):
    """-> {pcr: value} for bank alg (PCRs without events are absent)."""
    size = digest_size(alg)
    pcrs = {}
    for pcr, etype, digests in parse_tcg2_log(data):
        if etype == EV_NO_ACTION:
            continue
        if alg not in digests:
            raise TpmError("event log: an event lacks a %s digest" % HASH_ALGS[alg])
        pcrs[pcr] = pcr_extend(alg, pcrs.get(pcr, bytes(size)), digests[alg])
    return pcrs


def build_tcg2_log(events, algs=(0x000B,)):
    """A minimal crypto-agile log; events = [(pcr, event_type, event_bytes)].
    Each digest is H_alg(event bytes). Used by the test fixtures."""
    spec = b"Spec ID Event03\0" + struct.pack("<IBBBB", 0, 0, 2, 0, 2)
    spec += struct.pack("<I", len(algs))
    for a in algs:
        spec += struct.pack("<HH", a, digest_size(a))
    spec += b"\0"
    out = struct.pack("<II", 0, EV_NO_ACTION) + bytes(20) + struct.pack("<I", len(spec)) + spec
    for pcr, etype, ev in events:
        out += struct.pack("<III", pcr, etype, len(algs))
        for a in algs:
            out += struct.pack("<H", a) + digest(a, ev)
        out += struct.pack("<I", len(ev)) + ev
    return out


def main(argv):
    if len(argv) == 4 and argv[1] == "auth-tag":
        print(auth_tag(argv[2], argv[3]))
    elif len(argv) == 3 and argv[1] == "name":
        print(parse_tpm2b_public(b64decode_strict(argv[2])).name.hex())
    elif len(argv) == 5 and argv[1] == "makecred":
        ek = parse_tpm2b_public(b64decode_strict(argv[2]))
        print(b64(make_credential(ek, bytes.fromhex(argv[3]), argv[4].encode())))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
