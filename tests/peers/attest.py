"""attest - what the test verifier decides about an attestation (docs/protocol.md 5-6).

No HTTP here: verifier.py parses requests and sends answers; this module holds
the enrollment and attestation records and the rules Keylime applies to them:

  choose()            validate evidence_supported (5.1) and pick the evidence
                      and parameters to request (5.2), IMA starting_offset (6.6)
  check_collected()   validate evidence_collected against the request (6.2)
  verify_evidence()   judge the evidence (6.6): quote signature, nonce, PCR
                      digest, clock, PCR policy, UEFI log replay, IMA replay with
                      incremental offsets and the runtime policy

Validation problems are appended to an `errors` list as JSON:API 422 objects;
verification problems to a `failures` list as (failure_reason, detail) pairs.
"""

import base64
import datetime
import re
import secrets

import kltpm
from common import utcnow, isotime

HASH_NAMES = ["sha1", "sha256", "sha384", "sha512", "sm3_256"]
SIG_NAMES = ["rsassa", "rsapss", "ecdsa", "ecschnorr", "ecdaa", "sm2"]
MB_PCRS = set(range(0, 10)) | set(range(11, 16))
EVIDENCE = "/data/attributes/evidence"
BROKEN = "broken_evidence_chain"
POLICY = "policy_violation"


class KeylimeCrash(Exception):
    """Input on which Keylime answers 500 with an empty body (observed)."""


def err422(detail, pointer):
    return {"status": "422", "code": "invalid_resource_data", "detail": detail,
            "source": {"pointer": pointer}}


def parse_boot_time(value):
    """ISO 8601 (Z or offset) or integer Unix seconds -> aware datetime or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            dt = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=datetime.timezone.utc)
        return dt.astimezone(datetime.timezone.utc)
    return None


def norm_hex(value):
    v = value.lower()
    return v[2:] if v.startswith("0x") else v


class Enrollment:
    """One enrolled agent: what the tenant gave (the control API's /enroll
    body, see verifier.py), plus the attestation history the rules need."""

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("enrollment must be an object")
        known = {"agent_id", "aik_tpm", "tpm_policy", "ima_policy", "mb_policy",
                 "accept_tpm_hash_algs", "accept_tpm_signing_algs", "allow_ecc",
                 "pop_own_scheme"}
        if set(spec) - known:
            raise ValueError("unknown enrollment fields %s" % sorted(set(spec) - known))
        self.agent_id = spec.get("agent_id")
        if not isinstance(self.agent_id, str) or not self.agent_id:
            raise ValueError("agent_id required")
        try:
            self.aik_raw = kltpm.b64decode_strict(spec.get("aik_tpm"), "aik_tpm")
            self.ak = kltpm.parse_tpm2b_public(self.aik_raw, "aik_tpm")
        except kltpm.TpmError as e:
            raise ValueError(str(e)) from None
        if not self.ak.is_restricted_signing():
            raise ValueError("aik_tpm is not a restricted signing key")
        self.aik_tpm = spec["aik_tpm"]
        self.tpm_policy = {}
        if not isinstance(spec.get("tpm_policy") or {}, dict):
            raise ValueError("tpm_policy must be an object")
        for k, vals in (spec.get("tpm_policy") or {}).items():
            if k == "mask":
                continue
            if not k.isdigit() or not 0 <= int(k) <= 23:
                raise ValueError("tpm_policy key %r is not a PCR number" % k)
            if isinstance(vals, str):
                vals = [vals]
            if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
                raise ValueError("tpm_policy[%s] must be a list of hex strings" % k)
            if vals:
                self.tpm_policy[int(k)] = [norm_hex(v) for v in vals]
        self.ima_policy = spec.get("ima_policy")
        if self.ima_policy is not None:
            p = self.ima_policy
            if not isinstance(p, dict) or not (p.get("permissive")
                                               or isinstance(p.get("allow"), dict)):
                raise ValueError("ima_policy: {\"permissive\": true} or {\"allow\": {...}}")
            for rx in p.get("excludes", []):
                re.compile(rx)
            kltpm.hash_new(p.get("log_hash_alg", "sha1"))
        self.mb_policy = spec.get("mb_policy") or None
        self.allow_ecc = bool(spec.get("allow_ecc", False))
        # Not Keylime: accept a PoP proof signed with the AK's own scheme and
        # hash, so that RSAPSS and non-SHA-256 AKs can reach negotiation.
        self.pop_own_scheme = bool(spec.get("pop_own_scheme", False))
        self.accept_hash = spec.get("accept_tpm_hash_algs") or ["sha512", "sha384", "sha256"]
        default_sign = ["ecschnorr", "rsassa"] + (["ecdsa"] if self.allow_ecc else [])
        self.accept_sign = spec.get("accept_tpm_signing_algs") or default_sign
        for names, known in ((self.accept_hash, HASH_NAMES), (self.accept_sign, SIG_NAMES)):
            if not isinstance(names, list) or not all(n in known for n in names):
                raise ValueError("accepted algorithms must be a list of %s" % known)
        self.spec = spec
        self.attestations = []
        self.passes = 0
        self.consecutive_failures = 0
        self.last_evidence_at = None        # for the quote_interval spacing (429)
        self.last_received_quote = None     # last finished verification (timeout timer)
        self.last_successful = None
        self.last_pass = None               # the Attestation that passed last
        self.last_auth_quote = None         # clock info of the last authenticated quote

    def required_pcrs(self):
        pcrs = set(self.tpm_policy)
        if self.mb_policy:
            pcrs |= MB_PCRS
        if self.ima_policy:
            pcrs.add(10)
        return sorted(pcrs)

    def key_fits_scheme(self, key_alg, scheme):
        """Section 5.2 step 2: key_algorithm must prefix the scheme name."""
        if scheme.startswith(key_alg):
            return True
        return self.allow_ecc and key_alg == "ecc" and scheme == "ecdsa"


class Attestation:
    """One negotiate/submit cycle and, once verified, its verdict."""

    def __init__(self, index, boot_time):
        self.index = index
        self.boot_time = boot_time
        self.stage = "awaiting_evidence"
        self.evaluation = "pending"
        self.failure_reason = None
        self.failures = []
        self.capabilities_received_at = utcnow()
        self.challenges_expire_at = None
        self.evidence_received_at = None
        self.verified_at = None
        self.supported = []          # evidence_supported items, as sent
        self.requested = []          # evidence_requested items, as answered
        self.collected = None        # evidence_collected items, as sent
        self.starting_offset = None
        self.ima_entries = None
        self.certified_entry_count = None
        self.ima_lag = 0
        self.pcr10 = None            # (bank, value) quoted, when it passed
        self.received = {}

    def item(self, etype):
        for i, it in enumerate(self.requested):
            if it["evidence_type"] == etype:
                return i, it
        return None, None

    def verdict(self):
        return {"index": self.index, "stage": self.stage, "evaluation": self.evaluation,
                "failure_reason": self.failure_reason, "failures": self.failures,
                "boot_time": isotime(self.boot_time),
                "capabilities_received_at": isotime(self.capabilities_received_at),
                "challenges_expire_at": isotime(self.challenges_expire_at),
                "evidence_received_at": isotime(self.evidence_received_at),
                "verified_at": isotime(self.verified_at),
                "evidence_requested": self.requested,
                "starting_offset": self.starting_offset, "ima_entries": self.ima_entries,
                "certified_entry_count": self.certified_entry_count,
                "received": self.received}


# -- negotiation (sections 5.1, 5.2) ---------------------------------------

def check_system_info(enr, attrs, errors):
    """-> (boot_time or None, missing-without-IMA flag) (5.1.4)."""
    ptr = "/data/attributes/system_info/boot_time"
    si = attrs.get("system_info")
    if si is not None and not isinstance(si, dict):
        errors.append(err422("Attribute 'system_info' must be an object.",
                             "/data/attributes/system_info"))
        return None, False
    raw = (si or {}).get("boot_time")
    if raw is None:
        if enr.ima_policy is not None:
            errors.append(err422("Attribute 'system_info' is required.", ptr))
            return None, False
        return None, True
    boot_time = parse_boot_time(raw)
    if boot_time is None:
        errors.append(err422("Attribute 'system_info' must be a valid timestamp.", ptr))
        return None, False
    if enr.attestations and enr.attestations[-1].boot_time \
            and boot_time < enr.attestations[-1].boot_time:
        errors.append(err422("Attribute 'system_info' must be equal to or greater than the "
                             "boot time of last attestation.", ptr))
    return boot_time, False


def choose(enr, attrs, boot_time, errors):
    """Validate evidence_supported (5.1) and pick parameters (5.2).
    -> (evidence_requested, ima starting_offset or None)."""
    items = attrs.get("evidence_supported")
    if not isinstance(items, list) or not items:
        errors.append(err422("Attribute 'evidence' is required.", EVIDENCE))
        return [], None
    quote = ima = uefi = None
    for n, it in enumerate(items):
        ptr = "%s/%d" % (EVIDENCE, n)
        if not isinstance(it, dict) or not isinstance(it.get("evidence_class"), str) \
                or not isinstance(it.get("evidence_type"), str):
            errors.append(err422("Attribute 'evidence' must contain items with an "
                                 "evidence_class and an evidence_type.", ptr))
            continue
        caps = it.get("capabilities")
        if not isinstance(caps, dict):
            errors.append(err422("Attribute 'evidence' must have capabilities for each item.",
                                 ptr + "/capabilities"))
            continue
        kind = (it["evidence_class"], it["evidence_type"])
        if kind == ("certification", "tpm_quote"):
            if check_quote_caps(enr, caps, ptr + "/capabilities", errors) and quote is None:
                quote = (n, it)
        elif kind == ("log", "ima_log") and ima is None:
            ima = (n, it)
        elif kind == ("log", "uefi_log") and uefi is None:
            uefi = (n, it)
    if errors:
        return [], None
    required = enr.required_pcrs()
    if not required:
        return [], None             # no policy at all: nothing requested (V13)
    requested = []
    if quote is None:
        errors.append(err422("Attribute 'evidence' must contain a certification item of "
                             "type 'tpm_quote' per agent policy.", EVIDENCE))
        return [], None
    chosen = choose_quote(enr, quote[1]["capabilities"], required)
    if chosen is None:
        errors.append(err422("Attribute 'evidence' must have 'tpm_quote' with capabilities "
                             "which are valid and satisfy agent policy (check PCR banks in "
                             "'available_subjects').", EVIDENCE))
        return [], None
    requested.append({"evidence_class": "certification", "evidence_type": "tpm_quote",
                      "chosen_parameters": chosen})
    if enr.mb_policy:
        caps = uefi[1]["capabilities"] if uefi else None
        if uefi is None:
            errors.append(err422("Attribute 'evidence' must contain a log item of type "
                                 "'uefi_log' per agent policy.", EVIDENCE))
        elif "application/octet-stream" not in (caps.get("formats") or []):
            errors.append(err422("Attribute 'evidence' must have 'uefi_log' with format "
                                 "'application/octet-stream'.",
                                 "%s/%d/capabilities/formats" % (EVIDENCE, uefi[0])))
        else:
            requested.append({"evidence_class": "log", "evidence_type": "uefi_log",
                              "chosen_parameters": {"format": "application/octet-stream"}})
    offset = None
    if enr.ima_policy is not None:
        offset = choose_ima(enr, ima, boot_time, len(requested), errors)
        if offset is not None:
            requested.append({"evidence_class": "log", "evidence_type": "ima_log",
                              "chosen_parameters": {"starting_offset": offset,
                                                    "format": "text/plain"}})
    return requested, offset


def check_quote_caps(enr, caps, ptr, errors):
    """Shape checks of a tpm_quote item (5.1.1); False drops the item."""
    if caps.get("component_version") != "2.0":
        return False
    before = len(errors)
    for field, names in (("hash_algorithms", HASH_NAMES), ("signature_schemes", SIG_NAMES)):
        v = caps.get(field)
        if not isinstance(v, list) or not v or not all(x in names for x in v):
            errors.append(err422("Attribute 'evidence' must have '%s' as a list of known "
                                 "names." % field, "%s/%s" % (ptr, field)))
    subj = caps.get("available_subjects")
    hashes = caps.get("hash_algorithms") if isinstance(caps.get("hash_algorithms"), list) else []
    if not isinstance(subj, dict) or not subj or not all(
            bank in HASH_NAMES and bank in hashes and isinstance(pcrs, list)
            and all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= 23 for p in pcrs)
            for bank, pcrs in subj.items()):
        errors.append(err422("Attribute 'evidence' must be a dictionary mapping PCR bank names "
                             "to PCR numbers for tpm_quote evidence.",
                             ptr + "/available_subjects"))
        errors.insert(before, err422(
            "Attribute 'evidence' must have 'tpm_quote' with capabilities which are valid and "
            "satisfy agent policy (check PCR banks in 'available_subjects').", EVIDENCE))
    keys = caps.get("certification_keys")
    if not isinstance(keys, list) or not keys:
        errors.append(err422("Attribute 'evidence' must have a non-empty list of "
                             "'certification_keys'.", ptr + "/certification_keys"))
        return False
    schemes = caps.get("signature_schemes")
    schemes = schemes if isinstance(schemes, list) else []
    for k, key in enumerate(keys):
        kp = "%s/certification_keys/%d" % (ptr, k)
        if not isinstance(key, dict):
            errors.append(err422("Attribute 'evidence' must have certification keys as "
                                 "objects.", kp))
            continue
        if key.get("key_class") != "asymmetric":
            errors.append(err422("Attribute 'evidence' must have key_class 'asymmetric'.",
                                 kp + "/key_class"))
        alg = key.get("key_algorithm")
        if alg not in ("rsa", "ecc"):
            errors.append(err422("Attribute 'evidence' must have key_algorithm 'rsa' or 'ecc'.",
                                 kp + "/key_algorithm"))
        elif not any(enr.key_fits_scheme(alg, s) for s in schemes):
            errors.append(err422("Attribute 'evidence' must be compatible with a given "
                                 "signature schemes.", kp + "/key_algorithm"))
        size = key.get("key_size")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            errors.append(err422("Attribute 'evidence' must have a positive integer key_size.",
                                 kp + "/key_size"))
        if not any(isinstance(key.get(f), str) and key.get(f)
                   for f in ("server_identifier", "local_identifier", "public")):
            errors.append(err422("Attribute 'evidence' must identify each certification key.", kp))
        for field, names in (("allowable_hash_algorithms", HASH_NAMES),
                             ("allowable_signature_schemes", SIG_NAMES)):
            v = key.get(field)
            if v is not None and (not isinstance(v, list) or not all(x in names for x in v)):
                errors.append(err422("Attribute 'evidence' must have '%s' as a list of known "
                                     "names." % field, "%s/%s" % (kp, field)))
        if key.get("public") is not None:
            try:
                kltpm.b64decode_strict(key["public"], "public")
            except kltpm.TpmError:
                errors.append(err422("Attribute 'evidence' must have 'public' as base64.",
                                     kp + "/public"))
    return len(errors) == before


def choose_quote(enr, caps, required):
    """Section 5.2 steps 2-7 -> chosen_parameters or None."""
    schemes, hashes = caps["signature_schemes"], caps["hash_algorithms"]
    subjects = caps["available_subjects"]
    stored = enr.aik_raw

    def usable(key):
        ok_s = [s for s in enr.accept_sign if s in schemes
                and enr.key_fits_scheme(key["key_algorithm"], s)
                and (key.get("allowable_signature_schemes") is None
                     or s in key["allowable_signature_schemes"])]
        ok_h = [h for h in enr.accept_hash if h in hashes
                and (key.get("allowable_hash_algorithms") is None
                     or h in key["allowable_hash_algorithms"])]
        return ok_s, ok_h

    candidates = []
    for order, key in enumerate(caps["certification_keys"]):
        ok_s, ok_h = usable(key)
        if not ok_s or not ok_h:
            continue
        pub = kltpm.b64decode_strict(key["public"]) if key.get("public") else None
        same = pub is not None and pub in (stored, stored[2:])
        candidates.append((not same, key.get("server_identifier") != "ak", order,
                           key, ok_s, ok_h))
    if not candidates:
        return None
    _, _, _, key, ok_s, ok_h = min(candidates, key=lambda c: c[:3])
    selected = {}
    for bank, pcrs in subjects.items():
        fits = bank in enr.accept_hash and bank in ok_h and set(required) <= set(pcrs)
        selected[bank] = sorted(required) if fits else None
    hash_alg = next((h for h in ok_h if selected.get(h) is not None), None)
    if hash_alg is None:
        return None
    return {"challenge": base64.b64encode(secrets.token_bytes(16)).decode(),
            "signature_scheme": ok_s[0], "hash_algorithm": hash_alg,
            "selected_subjects": selected, "certification_key": key}


def choose_ima(enr, ima, boot_time, position, errors):
    """Section 5.1.3 and 6.6: validate ima_log, compute starting_offset."""
    if ima is None:
        errors.append(err422("Attribute 'evidence' must contain a log item of type 'ima_log' "
                             "per agent policy.", EVIDENCE))
        return None
    n, it = ima
    caps = it["capabilities"]
    if "text/plain" not in (caps.get("formats") or []) \
            or caps.get("supports_partial_access") is not True:
        errors.append(err422("Attribute 'evidence' must have 'ima_log' with format 'text/plain' "
                             "and which supports partial access.",
                             "%s/%d/capabilities" % (EVIDENCE, n)))
        return None
    count = caps.get("entry_count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        errors.append(err422("Attribute 'evidence' must have an integer 'entry_count' for "
                             "'ima_log'.", "%s/%d/capabilities/entry_count" % (EVIDENCE, n)))
        return None
    last = enr.last_pass
    if last is None or boot_time is None or boot_time > last.boot_time:
        offset = 0
    else:
        offset = last.starting_offset + last.certified_entry_count
    if count == 0:
        # Observed: no starting_offset is computed and the item is "required".
        errors.append(err422("Attribute 'evidence' is required.",
                             "%s/%d/chosen_parameters/starting_offset" % (EVIDENCE, position)))
        return None
    if count < offset:
        errors.append(err422("Attribute 'evidence' must be greater than or equal to the "
                             "calculated starting offset of '%d'." % offset,
                             "%s/%d/capabilities/entry_count" % (EVIDENCE, n)))
        return None
    return offset


# -- evidence shape (section 6.2) -------------------------------------------

def check_collected(att, items, errors):
    """Section 6.2 shape checks -> the items; KeylimeCrash where Keylime answers 500."""
    if not isinstance(items, list) or not items:
        errors.append(err422("Attribute 'evidence' is required.", EVIDENCE))
        return None
    if len(items) != len(att.requested):
        errors.append(err422("Attribute 'evidence' must contain a number of elements equal to "
                             "that which were requested.", EVIDENCE))
        return None
    for n, (got, want) in enumerate(zip(items, att.requested)):
        if not isinstance(got, dict) or got.get("evidence_class") != want["evidence_class"] \
                or got.get("evidence_type") != want["evidence_type"]:
            errors.append(err422("Attribute 'evidence' must appear in the same order as the "
                                 "evidence requested.", "%s/%d" % (EVIDENCE, n)))
            return None
    for n, got in enumerate(items):
        ptr = "%s/%d/data" % (EVIDENCE, n)
        data = got.get("data")
        if not isinstance(data, dict):
            errors.append(err422("Attribute 'evidence' is required.", ptr))
            continue
        etype = got["evidence_type"]
        if etype == "tpm_quote":
            if isinstance(data.get("subject_data"), (dict, list)):
                raise KeylimeCrash()     # observed: a dictionary crashes Keylime
            for field in ("message", "signature", "subject_data"):
                try:
                    kltpm.b64decode_strict(data.get(field), field)
                except kltpm.TpmError:
                    errors.append(err422("Attribute 'evidence' must have '%s' as base64 "
                                         "binary data." % field, "%s/%s" % (ptr, field)))
            if not errors:
                check_subjects(att, data, ptr, errors)
        elif etype == "uefi_log":
            try:
                kltpm.b64decode_strict(data.get("entries"), "entries")
            except kltpm.TpmError:
                errors.append(err422("Attribute 'evidence' must have 'entries' as base64.",
                                     ptr + "/entries"))
        elif etype == "ima_log":
            check_ima_data(att, data, ptr, errors)
    return items


def check_subjects(att, data, ptr, errors):
    """The PCR blob must hold at least the requested PCRs ("must contain at least
    the PCRs requested"); a blob that does not parse fails verification later."""
    params = att.item("tpm_quote")[1]["chosen_parameters"]
    alg = kltpm.HASH_IDS[params["hash_algorithm"]]
    selected = params["selected_subjects"][params["hash_algorithm"]]
    try:
        selection, _ = kltpm.parse_pcr_blob(kltpm.b64decode_strict(data["subject_data"]))
    except kltpm.TpmError:
        return
    if not set(selected) <= set(selection.get(alg, [])):
        errors.append(err422("Attribute 'evidence' must contain at least the PCRs requested.",
                             ptr + "/subject_data"))


def check_ima_data(att, data, ptr, errors):
    """ima_log data (6.5): text lines, at least as many as the POST announced."""
    entries = data.get("entries")
    if not isinstance(entries, str):
        errors.append(err422("Attribute 'evidence' must have 'entries' as text.",
                             ptr + "/entries"))
        return
    if "entry_count" in data and (not isinstance(data["entry_count"], int)
                                  or isinstance(data["entry_count"], bool)):
        errors.append(err422("Attribute 'evidence' must have an integer 'entry_count'.",
                             ptr + "/entry_count"))
        return
    # Keylime splits the text into lines right away; what does not look like
    # IMA lines (base64, a last line without its newline) makes it crash.
    if entries and not entries.endswith("\n"):
        raise KeylimeCrash()
    lines = entries.split("\n")[:-1] if entries else []
    for line in lines:
        if not re.match(r"\d+ [0-9a-f]+ \S+ \S+", line):
            raise KeylimeCrash()
    supported = next(it for it in att.supported
                     if isinstance(it, dict) and it.get("evidence_type") == "ima_log")
    announced = supported["capabilities"]["entry_count"]
    need = announced - att.starting_offset
    if len(lines) < need:
        errors.append(err422("Attribute 'evidence' must contain at least %d entries based on "
                             "the total reported log length and chosen starting offset." % need,
                             ptr + "/entries"))


def echo_evidence(att):
    """The 202's data.attributes.evidence: capabilities, chosen parameters, data (6.7)."""
    out = []
    for want, got in zip(att.requested, att.collected):
        caps = next((it.get("capabilities") for it in att.supported
                     if isinstance(it, dict) and it.get("evidence_type") == want["evidence_type"]),
                    None)
        item = {"evidence_class": want["evidence_class"], "evidence_type": want["evidence_type"],
                "capabilities": caps, "chosen_parameters": want["chosen_parameters"],
                "data": dict(got["data"])}
        if want["evidence_type"] == "tpm_quote":
            item["data"]["meta"] = quote_meta(want, got["data"])
        out.append(item)
    return out


def quote_meta(want, data):
    meta = {}
    name = want["chosen_parameters"]["hash_algorithm"]
    try:
        vals = kltpm.pcr_values_for_bank(kltpm.b64decode_strict(data["subject_data"]),
                                         kltpm.HASH_IDS[name])
        meta["pcrs"] = {name: {str(k): "0x" + v.hex() for k, v in sorted(vals.items())}}
    except kltpm.TpmError:
        pass
    try:
        meta["clock_info"] = kltpm.Attest(kltpm.b64decode_strict(data["message"])).clock_info()
    except kltpm.TpmError:
        pass
    return meta


# -- verification (section 6.6) --------------------------------------------

def verify_evidence(enr, att, failures):
    """Judge the collected evidence of att (section 6.6), in Keylime's order.
    A failure to authenticate the quote stops here; policy checks go on."""
    qi, qwant = att.item("tpm_quote")
    params = qwant["chosen_parameters"]
    data = att.collected[qi]["data"]
    hash_name = params["hash_algorithm"]
    bank = kltpm.HASH_IDS[hash_name]
    rec = att.received
    rec.update(hash_algorithm=hash_name, signature_scheme=params["signature_scheme"])

    # 1-3: authenticate the quote: signature, nonce, PCR digest.
    quote = kltpm.Attest(kltpm.b64decode_strict(data["message"]))
    sig = kltpm.Signature(kltpm.b64decode_strict(data["signature"]))
    rec["clock_info"] = quote.clock_info()
    rec["quote_pcr_select"] = {kltpm.HASH_ALGS.get(a, str(a)): sorted(p)
                               for a, p in quote.pcr_select.items()}
    if quote.type != kltpm.ST_ATTEST_QUOTE:
        failures.append((BROKEN, "message is not a quote (type 0x%04x)" % quote.type))
        return
    if sig.scheme != params["signature_scheme"]:
        failures.append((BROKEN, "signature scheme %s is not the chosen %s"
                         % (sig.scheme, params["signature_scheme"])))
        return
    if sig.hash_alg != bank:
        failures.append((BROKEN, "signature hash %s is not the chosen %s"
                         % (sig.hash_name, hash_name)))
        return
    try:
        kltpm.verify_signature(enr.ak, sig, quote.raw)
    except kltpm.TpmError as e:
        failures.append((BROKEN, "quote signature: %s" % e))
        return
    if quote.extra_data != base64.b64decode(params["challenge"]):
        failures.append((BROKEN, "quote nonce (extraData) is not the challenge"))
        return
    pcrs = kltpm.pcr_values_for_bank(kltpm.b64decode_strict(data["subject_data"]), bank)
    rec["pcrs"] = {str(k): v.hex() for k, v in sorted(pcrs.items())}
    if sorted(quote.pcr_select.get(bank, ())) != sorted(pcrs):
        failures.append((BROKEN, "PCR blob selection %s differs from the quote's %s"
                         % (sorted(pcrs), sorted(quote.pcr_select.get(bank, ())))))
        return
    values = b"".join(pcrs[k] for k in sorted(pcrs))
    if kltpm.digest(bank, values) != quote.pcr_digest:
        failures.append((BROKEN, "PCR values do not match the quote's pcrDigest"))
        return

    # 4: clock sanity against the previous authenticated quote.
    prev = enr.last_auth_quote
    enr.last_auth_quote = quote.clock_info()
    if quote.safe != 1:
        failures.append((BROKEN, "quote clock is not safe"))
    if prev is not None:
        if quote.reset_count < prev["reset_count"]:
            failures.append((BROKEN, "resetCount went down"))
        elif quote.reset_count == prev["reset_count"]:
            if quote.restart_count < prev["restart_count"]:
                failures.append((BROKEN, "restartCount went down"))
            elif quote.clock <= prev["clock"]:
                failures.append((BROKEN, "clock did not advance since the previous quote"))

    # 5: PCR policy.
    missing = [p for p in params["selected_subjects"][hash_name] if p not in pcrs]
    if missing:
        failures.append((POLICY, "PCRs %s not in quote" % missing))
    for pcr, allowed in sorted(enr.tpm_policy.items()):
        if pcr in pcrs and pcrs[pcr].hex() not in allowed:
            failures.append((POLICY, "PCR #%d: %s does not match expected value"
                             % (pcr, pcrs[pcr].hex())))

    # 6-7: logs.
    ui, _ = att.item("uefi_log")
    if ui is not None:
        verify_uefi(enr, att.collected[ui]["data"], bank, pcrs, failures)
    ii, _ = att.item("ima_log")
    if ii is not None:
        verify_ima(enr, att, att.collected[ii]["data"], bank, pcrs, failures)


def verify_uefi(enr, data, bank, pcrs, failures):
    """A non-empty binary log; when it parses as a crypto-agile TCG2 log its
    replay must give the quoted PCRs ({"replay": true}: it must parse)."""
    log = kltpm.b64decode_strict(data["entries"])
    if not log:
        failures.append((BROKEN, "UEFI log is empty"))
        return
    strict = isinstance(enr.mb_policy, dict) and enr.mb_policy.get("replay")
    try:
        replayed = kltpm.replay_tcg2_log(log, bank)
    except kltpm.TpmError as e:
        if strict:
            failures.append((BROKEN, "UEFI log: %s" % e))
        return
    for pcr, value in sorted(replayed.items()):
        if pcr in MB_PCRS and pcr in pcrs and pcrs[pcr] != value:
            failures.append((BROKEN, "UEFI log replay does not match PCR #%d" % pcr))


def verify_ima(enr, att, data, bank, pcrs, failures):
    """Replay the lines from the PCR 10 of the last pass, find where the running
    value equals the quoted PCR 10 (certified_entry_count), check every line
    against the runtime policy, and the quote_progress rule of section 6.6."""
    policy = enr.ima_policy
    text = data["entries"]
    lines = text.split("\n")[:-1] if text else []
    att.ima_entries = len(lines)
    att.received["ima_entries_text"] = text
    if 10 not in pcrs:
        failures.append((POLICY, "PCR 10 not in quote"))
        return
    quoted = pcrs[10]
    last = enr.last_pass
    start = bytes(kltpm.digest_size(bank))
    if last is not None and last.pcr10 is not None and last.pcr10[0] == bank:
        start = last.pcr10[1]
    log_hash = policy.get("log_hash_alg", "sha1")
    excludes = [re.compile(rx) for rx in policy.get("excludes", [])]
    running = start
    match = 0 if running == quoted else None
    for i, line in enumerate(lines):
        where = "IMA entry %d (line %d of the log)" % (i, att.starting_offset + i)
        try:
            entry = kltpm.ImaEntry(line)
        except kltpm.TpmError as e:
            failures.append((BROKEN, "%s: %s" % (where, e)))
            return
        if entry.pcr != 10:
            failures.append((BROKEN, "%s: PCR %d is not 10" % (where, entry.pcr)))
            return
        if not entry.is_violation() and \
                kltpm.digest(log_hash, entry.template) != entry.template_hash:
            failures.append((BROKEN, "%s: template hash does not match its data" % where))
            return
        running = kltpm.pcr_extend(bank, running, entry.extend_value(bank))
        if match is None and running == quoted:
            match = i + 1
        if not policy.get("permissive") and not any(rx.search(entry.path) for rx in excludes):
            allowed = policy["allow"].get(entry.path)
            if allowed is None:
                failures.append((POLICY, "%s: %s: File not found in allowlist"
                                 % (where, entry.path)))
            elif entry.file_digest.hex() not in [norm_hex(d) for d in allowed]:
                failures.append((POLICY, "%s: %s: digest not in allowlist" % (where, entry.path)))
    if match is None:
        failures.append((BROKEN, "IMA log does not match PCR 10 (ima.pcr_mismatch)"))
        return
    lag = last.ima_lag if last is not None else 0
    if match < lag:
        failures.append((BROKEN, "quote_progress: matched at entry %d, %d needed" % (match, lag)))
        return
    att.certified_entry_count = match
    att.ima_lag = len(lines) - match
    att.pcr10 = (bank, quoted)
