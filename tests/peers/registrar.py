#!/usr/bin/python3
"""registrar.py - a strict Keylime registrar (REST API v2.x) for kl's tests.

    registrar.py --state DIR [--tls-cert F --tls-key F]

Serves the agent side of docs/protocol.md section 2 on plain HTTP and (with a
certificate) HTTPS, plus a plain-HTTP control port; the ports are in
DIR/ports.json, the log in DIR/registrar.log.

API (both schemes):
  GET  /version                         v2 envelope with the version document
  POST /v{2.x}/agents/{id}              register: validate, MakeCredential, blob
  POST /v{2.x}/agents                   the same with "agent_id" in the body
  PUT  /v{2.x}/agents/{id}[/activate]   activate with auth_tag
  *    /v3.0/...                        500, empty body (section 2.8)
Control (JSON):
  GET /agents, GET|DELETE /agents/{id}  records (aik_tpm, ek_tpm, ekcert, active,
                                        regcount, challenge)
  GET|DELETE /requests, GET|POST|DELETE /faults   (see common.py)
  POST /config {"current_version", "supported_versions", "version_status": 404,
                "challenge": "<32 chars for the next registrations>" | null}
"""

import re
import secrets
import string
import sys
import threading

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import common
import kltpm
from common import empty, json_response, parse_json, BadJson

INVALID = "Could not register agent with invalid data"
IDENTITY_CHANGED = ("Agent re-registration with different TPM identity is forbidden for "
                    "security reasons")


def envelope(code, status, results=None):
    """The v2 envelope, 4-space indented, application/json (section 2.1)."""
    return json_response(code, {"code": code, "status": status, "results": results or {}},
                         indent=common.JSON_INDENT)


class Invalid(Exception):
    """A field failed validation; the answer is 400 with INVALID."""


def parse_ekcert(value):
    """ekcert: PEM (first certificate counts) or strict base64 DER -> DER bytes."""
    if not isinstance(value, str) or not value:
        raise Invalid("ekcert is not a non-empty string")
    if "-----BEGIN CERTIFICATE-----" in value:
        try:
            cert = x509.load_pem_x509_certificate(value.encode())
        except ValueError:
            raise Invalid("ekcert PEM does not parse") from None
    else:
        try:
            der = kltpm.b64decode_strict(value, "ekcert")
            cert = x509.load_der_x509_certificate(der)
        except (kltpm.TpmError, ValueError):
            raise Invalid("ekcert is neither PEM nor base64 DER") from None
    return cert, cert.public_bytes(Encoding.DER)


def parse_public_field(body, field, what):
    value = body.get(field)
    if not isinstance(value, str):
        raise Invalid("%s missing or not a string" % field)
    try:
        raw = kltpm.b64decode_strict(value, field)
        return raw, kltpm.parse_tpm2b_public(raw, what)
    except kltpm.TpmError as e:
        raise Invalid(str(e)) from None


def validate_registration(body):
    """Check a registration body (section 2.3) -> the record to store; Invalid."""
    ak_raw, ak = parse_public_field(body, "aik_tpm", "aik_tpm")
    if not ak.is_restricted_signing():
        raise Invalid("aik_tpm is not a restricted signing key")
    ek_raw, ek = parse_public_field(body, "ek_tpm", "ek_tpm")
    if not ek.attrs & kltpm.OBJ_DECRYPT or not ek.attrs & kltpm.OBJ_RESTRICTED:
        raise Invalid("ek_tpm is not a restricted decryption key")
    ekcert = body.get("ekcert")
    ekcert_der = None
    if ekcert is not None:
        cert, ekcert_der = parse_ekcert(ekcert)
        try:
            same = ek.same_key(cert.public_key())
        except (ValueError, kltpm.TpmError):
            same = False
        if not same:
            raise Invalid("ekcert public key differs from ek_tpm")
    for field in ("iak_tpm", "idevid_tpm", "iak_cert", "idevid_cert", "iak_attest", "iak_sign"):
        if body.get(field) is not None:
            raise Invalid("%s: IAK/IDevID is not supported by this test registrar" % field)
    if "ip" in body and not isinstance(body["ip"], str):
        raise Invalid("ip is not a string")
    if "port" in body:
        port = body["port"]
        if isinstance(port, str) and port.isdigit():
            port = int(port)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise Invalid("port is not a port number")
    mtls = body.get("mtls_cert")
    if mtls is not None and mtls != "disabled":
        try:
            x509.load_pem_x509_certificate(mtls.encode() if isinstance(mtls, str) else b"")
        except ValueError:
            raise Invalid("mtls_cert is not a PEM certificate") from None
    return {"aik_tpm": kltpm.b64(ak_raw), "ek_tpm": kltpm.b64(ek_raw),
            "ekcert": ekcert, "ekcert_der": ekcert_der and kltpm.b64(ekcert_der),
            "ak": ak, "ek": ek, "ip": body.get("ip"), "port": body.get("port")}


class Registrar(common.Peer):
    name = "registrar"

    def __init__(self, state_dir, ports=None):
        super().__init__(state_dir, ports)
        self.lock = threading.Lock()
        self.agents = {}
        self.version = {"current_version": "2.6",
                        "supported_versions": ["2.0", "2.1", "2.2", "2.3", "2.4", "2.5",
                                               "2.6", "3.0"]}
        self.version_status = 200
        self.fixed_challenge = None

        r = self.router = common.Router()
        r.add("GET", r"/version", self.get_version)
        r.add("*", r"/v3(?:\.0)?/.*", lambda req: empty(500))
        r.add("POST", r"/v(2\.\d+)/agents/([^/]+)", self.register)
        r.add("POST", r"/v(2\.\d+)/agents/?", lambda req, v: self.register(req, v, None))
        r.add("PUT", r"/v(2\.\d+)/agents/([^/]+)", self.activate)
        r.add("PUT", r"/v(2\.\d+)/agents/([^/]+)/activate", self.activate)

        c = self.control_router
        c.add("GET", r"/agents", self.ctl_list)
        c.add("GET", r"/agents/([^/]+)", self.ctl_get)
        c.add("DELETE", r"/agents/([^/]+)", self.ctl_delete)
        c.add("POST", r"/config", self.ctl_config)

    def api(self, req):
        return self.router.dispatch(req, lambda r: envelope(404, "Not Found"),
                                    lambda r: envelope(405, "Method Not Allowed"))

    # -- API -------------------------------------------------------------
    def get_version(self, req):
        # Upstream reads a JSON body whenever the request names a JSON type,
        # and an empty one is malformed: 400 with an empty body (observed).
        if req.media_type() == "application/json" and not req.body:
            return empty(400)
        if self.version_status != 200:
            return envelope(self.version_status, "Not Found")
        return envelope(200, "Success", dict(self.version))

    def _version_ok(self, ver):
        return ver in self.version["supported_versions"]

    def _json_body(self, req):
        """None if the body is ignored (no JSON content type); BadJson if broken."""
        if req.media_type() != "application/json":
            return None
        return parse_json(req.body)

    def register(self, req, ver, agent_id):
        if not self._version_ok(ver):
            return envelope(404, "Not Found")
        try:
            body = self._json_body(req)
        except BadJson:
            return empty(400)
        if body is None:
            self.log("register: no JSON content type, body ignored")
            return envelope(400, INVALID)
        if not isinstance(body, dict):
            return envelope(400, INVALID)
        if agent_id is None:
            agent_id = body.get("agent_id")
            if not isinstance(agent_id, str) or not agent_id:
                return envelope(400, INVALID)
        try:
            record = validate_registration(body)
        except Invalid as e:
            self.log("register %s: invalid: %s" % (agent_id, e))
            return envelope(400, INVALID)

        with self.lock:
            old = self.agents.get(agent_id)
            if old is not None:
                for field in ("ek_tpm", "aik_tpm", "ekcert_der"):
                    if old[field] is not None and old[field] != record[field]:
                        self.log("register %s: %s changed" % (agent_id, field))
                        return envelope(403, IDENTITY_CHANGED)
            challenge = self.fixed_challenge or "".join(
                secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
            try:
                blob = kltpm.make_credential(record["ek"], record["ak"].name, challenge.encode())
            except kltpm.TpmError as e:
                self.log("register %s: MakeCredential: %s" % (agent_id, e))
                return envelope(400, INVALID)
            record.update(agent_id=agent_id, challenge=challenge, active=False,
                          regcount=(old["regcount"] + 1) if old else 1,
                          api_version=ver, scheme=req.scheme)
            self.agents[agent_id] = record
        self.log("register %s: ok (regcount %d)" % (agent_id, record["regcount"]))
        return envelope(200, "Success", {"blob": kltpm.b64(blob)})

    def activate(self, req, ver, agent_id):
        if not self._version_ok(ver):
            return envelope(404, "Not Found")
        try:
            body = self._json_body(req) or {}
        except BadJson:
            return empty(400)
        with self.lock:
            rec = self.agents.get(agent_id)
            if rec is None:
                return envelope(404, "Agent with ID '%s' not found" % agent_id)
            tag = body.get("auth_tag") if isinstance(body, dict) else None
            if not isinstance(tag, str):
                return empty(400)
            expected = kltpm.auth_tag(rec["challenge"], agent_id)
            if tag != expected:
                del self.agents[agent_id]
                self.log("activate %s: wrong auth_tag, agent deleted" % agent_id)
                return envelope(400, (
                    "Auth tag '%s' for agent '%s' does not match expected value. The agent "
                    "has been deleted from the database and will need to be restarted to "
                    "reattempt registration" % (tag, agent_id)))
            rec["active"] = True
        self.log("activate %s: ok" % agent_id)
        return envelope(200, "Success")

    # -- control -----------------------------------------------------------
    @staticmethod
    def _public(rec):
        return {k: v for k, v in rec.items() if k not in ("ak", "ek")}

    def ctl_list(self, req):
        with self.lock:
            return json_response(200, sorted(self.agents))

    def ctl_get(self, req, agent_id):
        with self.lock:
            rec = self.agents.get(agent_id)
            if rec is None:
                return json_response(404, {"error": "no agent %s" % agent_id})
            return json_response(200, self._public(rec))

    def ctl_config(self, req):
        try:
            cfg = parse_json(req.body)
        except BadJson:
            return json_response(400, {"error": "bad JSON"})
        if not isinstance(cfg, dict):
            return json_response(400, {"error": "an object"})
        for key, value in cfg.items():
            if key in ("current_version", "supported_versions"):
                self.version[key] = value
            elif key == "version_status":
                self.version_status = int(value)
            elif key == "challenge":
                if value is not None and not re.fullmatch(r"[A-Za-z0-9]{1,32}", value):
                    return json_response(400, {"error": "challenge: 1-32 [A-Za-z0-9]"})
                self.fixed_challenge = value
            else:
                return json_response(400, {"error": "unknown config key %s" % key})
        return json_response(200, {"version": self.version, "version_status": self.version_status,
                                   "challenge": self.fixed_challenge})


def main():
    ap = common.base_args("strict Keylime registrar (API v2.x) for tests")
    args = ap.parse_args()
    peer = Registrar(args.state, args.ports)
    peer.listen("http", "http")
    if args.tls_cert:
        peer.listen("https", "https", tls_context=common.tls_context(args.tls_cert, args.tls_key))
    peer.listen("control", "http", control=True)
    peer.write_ports()
    peer.run_forever()


if __name__ == "__main__":
    sys.exit(main())
