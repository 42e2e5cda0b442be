#!/usr/bin/python3
"""verifier.py - a strict Keylime push-mode verifier (REST API v3.0) for kl's tests.

    verifier.py --state DIR --tls-cert F --tls-key F [--quote-interval 2]
                [--challenge-lifetime 1800] [--nonce-lifetime 60]
                [--session-lifetime 180] [--session-rate-per-agent 15]

HTTPS API (docs/protocol.md sections 3-7), under /v3 and /v3.0:
  POST  /sessions                         PoP challenge (section 4.1)
  PATCH /sessions/{sid}                   PoP proof -> token (section 4.3)
  POST  /agents/{id}/attestations         capabilities -> evidence requested (5)
  PATCH /agents/{id}/attestations/{n|latest}  evidence -> 202, then verified (6)
  GET   /agents/{id}/attestations...      403: admin only (6.9)
plus GET /v2.x/agents/{id} (the agent's own status, 6.9) and GET /version (410).
This file does HTTP, authentication, PoP sessions and the agent records; the
negotiation and verification rules are in attest.py.

The verdict logic follows section 6.6 with one deliberate difference: a quote
whose signature does not verify always fails (broken_evidence_chain), whatever
the policy. ECC AKs are refused at negotiation exactly like Keylime does
("ecc" is no prefix of "ecdsa"), unless the enrollment says "allow_ecc": true;
then ECDSA quotes and ECDSA PoP proofs with the AK's nameAlg are accepted.

Control port (plain HTTP, JSON), for the bats tests:
  POST   /enroll {"agent_id", "aik_tpm", "tpm_policy": {"0": ["hex", ...]},
                  "ima_policy": null | {"permissive": true} |
                       {"allow": {"/path": ["sha256hex", ...]}, "excludes": ["regex"],
                        "log_hash_alg": "sha1"},
                  "mb_policy": null | true | {"replay": true},
                  "accept_tpm_hash_algs": [...], "accept_tpm_signing_algs": [...],
                  "allow_ecc": false}
  GET    /agents, GET|DELETE /agents/{id}  status, attestation_count, verdicts
  POST   /config {"quote_interval", "challenge_lifetime", "nonce_lifetime",
                  "session_lifetime", "session_rate_per_agent", "session_rate_per_ip",
                  "session_rate_window", "auto_recover",
                  "verify_delay": seconds from the 202 to the verdict (0: before the 202)}
  POST   /expire-token/{id}, /expire-challenge/{id}, /timeout/{id}
  POST   /rate-reset/{id}   forget the quote_interval spacing and session rate
  POST   /seed-ima/{id} {"starting_offset", "pcr10": "hex", "bank": "sha256", "boot_time"}
  GET|DELETE /requests, GET|POST|DELETE /faults   (see common.py)
"""

import base64
import datetime
import json
import math
import re
import secrets
import sys
import threading
import time
import uuid
from collections import deque

import attest
import common
import kltpm
from common import BadJson, empty, isotime, json_response, parse_json, utcnow

JSON_UTF8 = "application/json; charset=UTF-8"
JSONAPI = "application/vnd.api+json"
TOP_MEMBERS = {"data", "errors", "meta", "links", "jsonapi"}
DATA_MEMBERS = {"type", "id", "attributes", "links", "meta"}


class Reply(Exception):
    """Raised inside a handler to answer at once with .response."""

    def __init__(self, response):
        super().__init__()
        self.response = response


def title_error(status, detail, content_type=JSON_UTF8, indent=None, headers=None):
    """Authentication-layer and session error shape: title, no code (3.3)."""
    titles = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
              404: "Not Found", 429: "Too Many Requests"}
    return json_response(status, {"errors": [{"status": str(status), "title": titles[status],
                                              "detail": detail}]},
                         indent=indent, content_type=content_type, headers=headers)


def api_errors(status, errors, path, headers=None):
    """Attestation error shape: code, links, jsonapi (3.3)."""
    return json_response(status, {"errors": errors, "links": {"self": path},
                                  "jsonapi": {"version": "1.1"}},
                         content_type=JSON_UTF8, headers=headers)


def api_error(status, code, detail, path, headers=None):
    return api_errors(status, [{"status": str(status), "code": code, "detail": detail}],
                      path, headers)


def jsonapi_body(req):
    """-> (data.type, data.attributes) or Reply(400, empty) per section 3.2."""
    try:
        doc = parse_json(req.body)
    except BadJson:
        raise Reply(empty(400)) from None
    if not isinstance(doc, dict) or set(doc) - TOP_MEMBERS:
        raise Reply(empty(400))
    data = doc.get("data")
    if not isinstance(data, dict) or set(data) - DATA_MEMBERS:
        raise Reply(empty(400))
    if not isinstance(data.get("type"), str):
        raise Reply(empty(400))
    attrs = data.get("attributes", {})
    if not isinstance(attrs, dict):
        raise Reply(empty(400))
    for k, v in attrs.items():
        if v is None or not re.fullmatch(r"[A-Za-z0-9_-]+", k):
            raise Reply(empty(400))
    return data["type"], attrs


def seconds_left(deadline, now):
    return max(1, math.ceil((deadline - now).total_seconds()))


class Session:
    def __init__(self, agent_id, nonce_lifetime):
        self.id = str(uuid.uuid4())
        self.agent_id = agent_id
        self.challenge = secrets.token_bytes(16)
        self.created_at = utcnow()
        self.challenges_expire_at = self.created_at + datetime.timedelta(seconds=nonce_lifetime)
        self.token = None
        self.token_expires_at = None
        self.active = False
        self.response_received_at = None
        self.provided = None

    def attributes(self, with_result):
        chosen = {"challenge": base64.b64encode(self.challenge).decode()}
        out = {"agent_id": self.agent_id}
        if not with_result:
            out["authentication_requested"] = [{"authentication_class": "pop",
                                                "authentication_type": "tpm_pop",
                                                "chosen_parameters": chosen}]
            out["created_at"] = isotime(self.created_at)
            out["challenges_expire_at"] = isotime(self.challenges_expire_at)
            return out
        out["evaluation"] = "pass" if self.token else "fail"
        if self.token:
            out["token"] = self.token
        auth = {"authentication_class": "pop", "authentication_type": "tpm_pop",
                "chosen_parameters": chosen}
        if isinstance(self.provided, dict) and "data" in self.provided:
            auth["data"] = self.provided["data"]
        out["authentication"] = [auth]
        out["created_at"] = isotime(self.created_at)
        out["challenges_expire_at"] = isotime(self.challenges_expire_at)
        out["response_received_at"] = isotime(self.response_received_at)
        out["token_expires_at"] = isotime(self.token_expires_at)
        return out


def check_pop(enr, sess):
    """Section 4.2: certify of the AK by the AK over the challenge."""
    p = sess.provided
    data = p.get("data") if isinstance(p, dict) else None
    if not isinstance(p, dict) or p.get("authentication_type") != "tpm_pop" \
            or not isinstance(data, dict):
        return "no tpm_pop authentication_provided with data"
    try:
        certify = kltpm.Attest(kltpm.b64decode_strict(data.get("message"), "message"))
        sig = kltpm.Signature(kltpm.b64decode_strict(data.get("signature"), "signature"))
    except kltpm.TpmError as e:
        return str(e)
    if certify.type != kltpm.ST_ATTEST_CERTIFY:
        return "message is not a certify structure"
    if certify.extra_data != sess.challenge:
        return "extraData is not the challenge"
    if certify.certified_name != enr.ak.name:
        return "certified name is not the enrolled AK"
    if enr.ak.type == kltpm.ALG_ECC and enr.allow_ecc:
        wanted = (0x0018, enr.ak.name_alg)
    elif enr.pop_own_scheme:
        wanted = (enr.ak.scheme, enr.ak.scheme_hash)
    else:
        wanted = (0x0014, 0x000B)   # fixed RSASSA/SHA-256 in Keylime (U1)
    if (sig.sig_alg, sig.hash_alg) != wanted:
        return "signature is %s/%s" % (sig.scheme, sig.hash_name)
    try:
        kltpm.verify_signature(enr.ak, sig, certify.raw)
    except kltpm.TpmError as e:
        return str(e)
    return None


class Verifier(common.Peer):
    name = "verifier"

    def __init__(self, state_dir, cfg, ports=None):
        super().__init__(state_dir, ports)
        self.cfg = cfg
        self.lock = threading.RLock()
        self.agents = {}
        self.pending_sessions = {}      # sid -> Session awaiting its PATCH
        self.tokens = {}                # token -> Session
        self.rate_agent = {}
        self.rate_ip = {}

        r = self.router = common.Router()
        v3 = r"(/v3(?:\.0)?)"
        r.add("POST", v3 + r"/sessions", self.session_create)
        r.add("PATCH", v3 + r"/sessions/([^/]+)", self.session_prove)
        r.add("POST", v3 + r"/agents/([^/]+)/attestations", self.negotiate)
        r.add("PATCH", v3 + r"/agents/([^/]+)/attestations/([^/]+)", self.submit)
        r.add("GET", v3 + r"/agents/([^/]+)/attestations(?:/[^/]+)?", self.read_attestation)
        r.add("*", v3 + r"/agents/([^/]+)", lambda req, p, a: empty(500))
        r.add("GET", r"/v(2(?:\.[0-6])?)/agents/([^/]+)", self.read_agent)
        r.add("GET", r"/version", lambda req: empty(410))

        c = self.control_router
        c.add("POST", r"/enroll", self.ctl_enroll)
        c.add("GET", r"/agents", lambda req: json_response(200, sorted(self.agents)))
        c.add("GET", r"/statuses", self.ctl_statuses)
        c.add("GET", r"/agents/([^/]+)", self.ctl_agent)
        c.add("DELETE", r"/agents/([^/]+)", self.ctl_delete)
        c.add("POST", r"/config", self.ctl_config)
        c.add("GET", r"/config", lambda req: json_response(200, self.cfg))
        c.add("POST", r"/expire-token/([^/]+)", self.ctl_expire_token)
        c.add("POST", r"/expire-challenge/([^/]+)", self.ctl_expire_challenge)
        c.add("POST", r"/timeout/([^/]+)", self.ctl_timeout)
        c.add("POST", r"/rate-reset/([^/]+)", self.ctl_rate_reset)
        c.add("POST", r"/seed-ima/([^/]+)", self.ctl_seed_ima)

    def date_skew(self):
        """Seconds added to the Date header of every reply (control: POST /config date_skew)."""
        return float(self.cfg.get("date_skew", 0))

    def api(self, req):
        try:
            with self.lock:
                return self.router.dispatch(req, lambda r: empty(404), lambda r: empty(405))
        except Reply as e:
            return e.response
        except attest.KeylimeCrash:
            return empty(500)

    # -- authentication and authorization (section 3.4) -------------------
    def identity(self, req):
        """Agent id of a valid bearer token, None without a header; Reply(401) else."""
        header = req.header("Authorization")
        if header is None:
            return None
        if not header.startswith("Bearer "):
            raise Reply(title_error(401, "Invalid Authorization header format"))
        sess = self.tokens.get(header[len("Bearer "):].strip())
        if sess is None:
            raise Reply(title_error(401, "Invalid authentication token"))
        if not sess.active:
            raise Reply(title_error(401, "Authentication session not active"))
        if sess.token_expires_at <= utcnow():
            raise Reply(title_error(401, "Authentication token expired"))
        return sess.agent_id

    def require_agent(self, req, agent_id, action):
        ident = self.identity(req)
        if ident is None:
            raise Reply(title_error(403, "Action %s requires agent authentication (PoP token)"
                                    % action))
        if ident != agent_id:
            raise Reply(title_error(403, "Agent %s cannot access resource %s (ownership required)"
                                    % (ident, agent_id)))

    def read_attestation(self, req, prefix, agent_id):
        self.identity(req)
        action = "list_attestations" if req.path.endswith("/attestations") else "read_attestation"
        return title_error(403, "Action %s requires admin authentication (mTLS certificate)"
                           % action)

    def read_agent(self, req, ver, agent_id):
        ident = self.identity(req)
        if ident is None:
            return title_error(403, "Action read_agent requires authentication")
        if ident != agent_id:
            return title_error(403, "Agent %s cannot access resource %s (ownership required)"
                               % (ident, agent_id))
        enr = self.agents.get(agent_id)
        if enr is None:
            return json_response(404, {"code": 404, "status": "agent id not found",
                                       "results": {}}, indent=common.JSON_INDENT)
        return json_response(200, {"code": 200, "status": "Success",
                                   "results": self.agent_record(enr)}, indent=common.JSON_INDENT)

    def agent_record(self, enr):
        """Keylime's process_get_status() for a push-mode agent, key for key:
        last_received_quote moves on every verification, last_successful_attestation
        and attestation_count only on a pass (Unix seconds, 0 until then)."""
        qi = self.cfg["quote_interval"]
        return {"operational_state": 3 if enr.passes else None,     # GET_QUOTE
                "v": None, "ip": None, "port": None,
                "tpm_policy": json.dumps({str(k): v for k, v in enr.tpm_policy.items()}),
                "meta_data": "{}",
                "has_mb_refstate": int(enr.mb_policy is not None),
                "has_runtime_policy": int(enr.ima_policy is not None),
                "accept_tpm_hash_algs": enr.accept_hash,
                "accept_tpm_encryption_algs": ["ecc", "rsa"],
                "accept_tpm_signing_algs": enr.accept_sign,
                "hash_alg": None, "enc_alg": None, "sign_alg": None,
                "verifier_id": "default", "verifier_ip": "127.0.0.1", "verifier_port": 8881,
                "severity_level": None, "last_event_id": None,
                "attestation_count": enr.passes,
                "last_received_quote": int(enr.last_received_quote or 0),
                "last_successful_attestation": int(enr.last_successful or 0),
                "attestation_status": self.status(enr),
                "attestation_period": "%ds" % int(qi),
                "maximum_attestation_interval": "%ds" % int(5 * qi)}

    def status(self, enr):
        """PENDING, PASS, FAIL or TIMEOUT, like the tenant's cvstatus (6.9, 7.2)."""
        timeout = 5 * self.cfg["quote_interval"]
        timed_out = (enr.last_received_quote is not None
                     and time.time() - enr.last_received_quote > timeout)
        if enr.consecutive_failures:
            return "FAIL"
        if timed_out:
            return "TIMEOUT"
        return "PASS" if enr.passes else "PENDING"

    # -- PoP sessions (section 4) -------------------------------------------
    def session_attrs(self, req):
        """Sessions accept vnd.api+json and application/json; other types or
        none: the body is not read (section 3.2)."""
        if req.media_type() not in (JSONAPI, "application/json"):
            return {}
        dtype, attrs = jsonapi_body(req)
        return attrs if dtype == "session" else {}

    def rate_limited(self, table, key, limit, now):
        window = self.cfg["session_rate_window"]
        q = table.setdefault(key, deque())
        while q and q[0] <= now - window:
            q.popleft()
        if len(q) >= limit:
            return max(1, math.ceil(q[0] + window - now))
        q.append(now)
        return 0

    def session_create(self, req, prefix):
        attrs = self.session_attrs(req)
        agent_id = attrs.get("agent_id")
        if not isinstance(agent_id, str) or not agent_id:
            return title_error(400, "agent_id is required", "application/json", common.JSON_INDENT)
        supported = attrs.get("authentication_supported")
        if not isinstance(supported, list) or not any(
                isinstance(a, dict) and a.get("authentication_type") == "tpm_pop"
                for a in supported):
            return title_error(400, "authentication_supported must include tpm_pop "
                               "authentication type",
                               "application/json", common.JSON_INDENT)
        now = time.time()
        wait = self.cfg["session_rate_per_ip"] and self.rate_limited(
            self.rate_ip, req.client, self.cfg["session_rate_per_ip"], now)
        if wait:
            return title_error(429, "Rate limit exceeded. Please try again later.",
                               "application/json", common.JSON_INDENT, {"Retry-After": str(wait)})
        wait = self.cfg["session_rate_per_agent"] and self.rate_limited(
            self.rate_agent, agent_id, self.cfg["session_rate_per_agent"], now)
        if wait:
            return title_error(429, "Rate limit exceeded for this agent. Please try again later.",
                               "application/json", common.JSON_INDENT, {"Retry-After": str(wait)})
        sess = Session(agent_id, self.cfg["nonce_lifetime"])
        self.pending_sessions[sess.id] = sess
        self.log("session %s created for %s" % (sess.id, agent_id))
        return json_response(200, {"data": {"type": "session", "id": sess.id,
                                            "attributes": sess.attributes(False)}},
                             indent=common.JSON_INDENT)

    def session_prove(self, req, prefix, sid):
        sess = self.pending_sessions.get(sid)
        if sess is None:
            return title_error(404, "Session not found", "application/json", common.JSON_INDENT)
        attrs = self.session_attrs(req)
        agent_id = attrs.get("agent_id")
        if not isinstance(agent_id, str) or not agent_id:
            return title_error(400, "agent_id is required", "application/json", common.JSON_INDENT)
        if agent_id != sess.agent_id:
            return title_error(400, "Agent ID mismatch", "application/json", common.JSON_INDENT)
        del self.pending_sessions[sid]       # single use, whatever the outcome
        now = utcnow()
        sess.response_received_at = now
        provided = attrs.get("authentication_provided")
        sess.provided = provided[0] if isinstance(provided, list) and provided else None
        enr = self.agents.get(agent_id)
        status = 200
        if now > sess.challenges_expire_at:
            self.log("session %s: challenge expired" % sid)
        elif enr is None:
            self.log("session %s: agent %s is not enrolled" % (sid, agent_id))
        else:
            problem = check_pop(enr, sess)
            if problem:
                self.log("session %s: proof rejected: %s" % (sid, problem))
                status = 401
            else:
                sess.token = "%s.%s" % (sess.id, secrets.token_urlsafe(32))
                sess.token_expires_at = now + datetime.timedelta(
                    seconds=self.cfg["session_lifetime"])
                sess.active = True
                for other in self.tokens.values():
                    if other.agent_id == agent_id:
                        other.active = False     # the newest token wins (4.3)
                self.tokens[sess.token] = sess
                self.log("session %s: pass, token for %s" % (sid, agent_id))
        return json_response(status, {"data": {"type": "session", "id": sess.id,
                                               "attributes": sess.attributes(True)}},
                             indent=common.JSON_INDENT)

    # -- capabilities negotiation (section 5) -------------------------------
    def attestation_prologue(self, req, agent_id):
        """Auth, content type, JSON:API; -> (enrollment, data.type, attributes)."""
        self.require_agent(req, agent_id, "submit_attestation")
        if req.media_type() != JSONAPI:
            raise Reply(empty(415))
        dtype, attrs = jsonapi_body(req)
        enr = self.agents.get(agent_id)
        if enr is None:
            raise Reply(api_error(404, "not_found", "Agent '%s' not found" % agent_id, req.path))
        return enr, dtype, attrs

    def negotiate(self, req, prefix, agent_id):
        enr, dtype, attrs = self.attestation_prologue(req, agent_id)
        if dtype != "attestation":
            return empty(500)           # observed (5.4)
        now = utcnow()
        latest = enr.attestations[-1] if enr.attestations else None
        if latest is not None and latest.stage == "evaluating_evidence":
            wait = seconds_left(getattr(latest, "decision_at", now), now)
            return api_error(503, "verification_in_progress",
                             "Cannot create attestation for agent '%s' while the last attestation "
                             "is still being verified. The active verification task is expected "
                             "to complete or time out within %d seconds." % (agent_id, wait),
                             req.path, {"Retry-After": str(wait)})
        qi = self.cfg["quote_interval"]
        if enr.last_evidence_at is not None:
            ready = enr.last_evidence_at + datetime.timedelta(seconds=qi)
            if now < ready:
                wait = seconds_left(ready, now)
                return api_error(429, "premature_attestation",
                                 "Cannot create attestation for agent '%s' before the configured "
                                 "interval has elapsed. Wait %d seconds before trying again."
                                 % (agent_id, wait), req.path, {"Retry-After": str(wait)})
        errors = []
        boot_time, missing_boot = attest.check_system_info(enr, attrs, errors)
        requested, offset = attest.choose(enr, attrs, boot_time, errors)
        if errors:
            self.log("negotiate %s: 422 %s" % (agent_id, [e["detail"] for e in errors]))
            return api_errors(422, errors, req.path)
        if missing_boot:
            self.log("negotiate %s: no boot_time and no IMA policy: 500 like Keylime" % agent_id)
            return empty(500)
        att = attest.Attestation(len(enr.attestations), boot_time)
        att.supported = attrs.get("evidence_supported")
        att.requested = requested
        att.starting_offset = offset
        if requested:
            att.challenges_expire_at = att.capabilities_received_at + datetime.timedelta(
                seconds=self.cfg["challenge_lifetime"])
        enr.attestations.append(att)
        location = "%s/agents/%s/attestations/%d" % (prefix, agent_id, att.index)
        self.log("negotiate %s: attestation %d, %d items, offset %s"
                 % (agent_id, att.index, len(requested), offset))
        body = {"data": {"type": "attestation",
                         "attributes": self.attestation_attributes(att, with_evidence=False),
                         "links": {"self": location}},
                "links": {"self": req.path}, "jsonapi": {"version": "1.1"}}
        return json_response(201, body, content_type=JSON_UTF8, headers={"Location": location})

    def attestation_attributes(self, att, with_evidence):
        out = {"stage": att.stage}
        if with_evidence:
            out["evidence"] = attest.echo_evidence(att)
        else:
            out["evidence_requested"] = att.requested
        out["system_info"] = {"boot_time": att.boot_time.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")}
        out["capabilities_received_at"] = isotime(att.capabilities_received_at)
        if att.challenges_expire_at is not None:
            out["challenges_expire_at"] = isotime(att.challenges_expire_at)
        if with_evidence:
            out["evidence_received_at"] = isotime(att.evidence_received_at)
        return out

    # -- evidence submission (section 6) -----------------------------------
    def submit(self, req, prefix, agent_id, which):
        enr, dtype, attrs = self.attestation_prologue(req, agent_id)
        if not enr.attestations:
            return api_error(404, "not_found", "No attestation exists for agent '%s'" % agent_id,
                             req.path)
        latest = enr.attestations[-1]
        if which == "latest":
            att = latest
        elif which.isdigit() and int(which) < len(enr.attestations):
            att = enr.attestations[int(which)]
        else:
            return api_error(404, "not_found", "Attestation '%s' of agent '%s' not found"
                             % (which, agent_id), req.path)
        if att is not latest:
            return api_error(403, "old_attestation", "Attestation %d is not the latest "
                             "attestation of agent '%s'." % (att.index, agent_id), req.path)
        if dtype != "attestation":
            return api_error(400, "invalid_request", "Request body must include attestation "
                             "evidence data.", req.path)
        if att.evidence_received_at is not None:
            return api_error(403, "evidence_immutable", "Evidence for attestation %d of agent "
                             "'%s' has already been received." % (att.index, agent_id), req.path)
        now = utcnow()
        if att.challenges_expire_at is None or now > att.challenges_expire_at:
            return api_error(403, "challenges_expired", "Challenges for attestation %d of agent "
                             "'%s' expired at %s." % (att.index, agent_id,
                                                     isotime(att.challenges_expire_at)), req.path)
        errors = []
        collected = attest.check_collected(att, attrs.get("evidence_collected"), errors)
        if errors:
            self.log("submit %s/%d: 422 %s" % (agent_id, att.index, [e["detail"] for e in errors]))
            return api_errors(422, errors, req.path)
        att.collected = collected
        att.evidence_received_at = now
        att.stage = "evaluating_evidence"
        enr.last_evidence_at = now
        qi = self.cfg["quote_interval"]
        wait = max(0, round((now + datetime.timedelta(seconds=qi) - utcnow()).total_seconds()))
        link = "/3/agents/%s/attestations/%d" % (agent_id, att.index)
        body = {"data": {"type": "attestation",
                         "attributes": self.attestation_attributes(att, with_evidence=True),
                         "links": {"self": link}},
                "meta": {"seconds_to_next_attestation": wait},
                "links": {"self": req.path}, "jsonapi": {"version": "1.1"}}
        # Keylime verifies in the background after the 202; verifying before
        # it is sent gives the same answer and makes the verdict visible the
        # moment the agent has its reply, so tests need not poll or race.
        # With verify_delay > 0 the verdict comes that many seconds after the
        # 202, as from a slow Keylime (kl-verdict's waiting and timeout).
        delay = self.cfg["verify_delay"]
        if delay > 0:
            att.decision_at = now + datetime.timedelta(seconds=delay)
            timer = threading.Timer(delay, self.verify, (enr, att))
            timer.daemon = True
            timer.start()
        else:
            self.verify(enr, att)
        return json_response(202, body, content_type=JSON_UTF8, headers={"Location": link})

    # -- verification (section 6.6) ----------------------------------------
    def verify(self, enr, att):
        with self.lock:
            if self.agents.get(enr.agent_id) is not enr:
                return              # re-enrolled or deleted meanwhile
            failures = []
            try:
                attest.verify_evidence(enr, att, failures)
            except kltpm.TpmError as e:
                failures.append((attest.BROKEN, str(e)))
            now = time.time()
            att.verified_at = utcnow()
            att.stage = "verification_complete"
            enr.last_received_quote = now
            if failures:
                att.evaluation = "fail"
                broken = any(r == attest.BROKEN for r, _ in failures)
                att.failure_reason = attest.BROKEN if broken else attest.POLICY
                att.failures = [d for _, d in failures]
                enr.consecutive_failures += 1
                self.log("verify %s/%d: FAIL %s: %s" % (enr.agent_id, att.index,
                                                      att.failure_reason, att.failures))
                return
            att.evaluation = "pass"
            enr.passes += 1
            enr.last_successful = now
            enr.last_pass = att
            if self.cfg["auto_recover"]:
                enr.consecutive_failures = 0
            expiry = att.verified_at + datetime.timedelta(seconds=self.cfg["session_lifetime"])
            for sess in self.tokens.values():
                if sess.agent_id == enr.agent_id and sess.active:
                    sess.token_expires_at = expiry   # extend_token_on_attestation (4.5)
            self.log("verify %s/%d: pass" % (enr.agent_id, att.index))

    # -- control ------------------------------------------------------------
    def ctl_enroll(self, req):
        try:
            enr = attest.Enrollment(parse_json(req.body))
        except (BadJson, ValueError, re.error, kltpm.TpmError) as e:
            return json_response(400, {"error": "bad enrollment: %s" % (e or "bad JSON")})
        with self.lock:
            self.agents[enr.agent_id] = enr
        self.log("enrolled %s: pcrs %s ima %s mb %s" % (enr.agent_id, enr.required_pcrs(),
                                                       enr.ima_policy is not None, enr.mb_policy))
        return json_response(200, {"agent_id": enr.agent_id, "required_pcrs": enr.required_pcrs()})

    def ctl_agent(self, req, agent_id):
        with self.lock:
            enr = self.agents.get(agent_id)
            if enr is None:
                return json_response(404, {"error": "agent %s not enrolled" % agent_id})
            tokens = [s for s in self.tokens.values() if s.agent_id == agent_id and s.active]
            out = {"agent_id": agent_id, "status": self.status(enr),
                   "attestation_count": enr.passes,
                   "consecutive_failures": enr.consecutive_failures,
                   "last_received_quote": enr.last_received_quote,
                   "last_successful_attestation": enr.last_successful,
                   "token_expires_at": isotime(tokens[-1].token_expires_at) if tokens else None,
                   "enrollment": enr.spec,
                   "attestations": [a.verdict() for a in enr.attestations]}
            return json_response(200, out)

    def ctl_statuses(self, req):
        """Every agent's status and passed attestations, in one call (scripts/fleet)."""
        with self.lock:
            return json_response(200, {aid: {"status": self.status(enr),
                                             "attestation_count": enr.passes}
                                       for aid, enr in self.agents.items()})

    def ctl_config(self, req):
        try:
            cfg = parse_json(req.body)
        except BadJson:
            return json_response(400, {"error": "bad JSON"})
        if not isinstance(cfg, dict) or set(cfg) - set(self.cfg):
            return json_response(400, {"error": "known keys: %s" % sorted(self.cfg)})
        with self.lock:
            self.cfg.update(cfg)
        return json_response(200, self.cfg)

    def ctl_expire_token(self, req, agent_id):
        past = utcnow() - datetime.timedelta(seconds=1)
        with self.lock:
            hit = [s for s in self.tokens.values() if s.agent_id == agent_id and s.active]
            for s in hit:
                s.token_expires_at = past
        return json_response(200 if hit else 404, {"expired": len(hit)})

    def ctl_expire_challenge(self, req, agent_id):
        past = utcnow() - datetime.timedelta(seconds=1)
        n = 0
        with self.lock:
            for s in self.pending_sessions.values():
                if s.agent_id == agent_id:
                    s.challenges_expire_at = past
                    n += 1
            enr = self.agents.get(agent_id)
            if enr and enr.attestations and enr.attestations[-1].challenges_expire_at:
                enr.attestations[-1].challenges_expire_at = past
                n += 1
        return json_response(200 if n else 404, {"expired": n})

    def ctl_timeout(self, req, agent_id):
        with self.lock:
            enr = self.agents.get(agent_id)
            if enr is None or enr.last_received_quote is None:
                return json_response(404, {"error": "no verified attestation for %s" % agent_id})
            enr.last_received_quote -= 5 * self.cfg["quote_interval"] + 1
            return json_response(200, {"status": self.status(enr)})

    def ctl_rate_reset(self, req, agent_id):
        """Forget the agent's last evidence time (the quote_interval spacing, 429
        premature_attestation) and its session rate window, so a test can start
        the next cycle at once instead of sleeping the interval out."""
        with self.lock:
            enr = self.agents.get(agent_id)
            if enr is None:
                return json_response(404, {"error": "no agent %s" % agent_id})
            enr.last_evidence_at = None
            self.rate_agent.pop(agent_id, None)
            return json_response(200, {"reset": agent_id})

    def ctl_seed_ima(self, req, agent_id):
        """As if an attestation had passed that certified the IMA log up to
        line starting_offset with PCR 10 at pcr10 in the boot boot_time: the
        next negotiation asks for the lines from starting_offset on, and their
        replay starts from pcr10. Lets a test use a long log whose lines were
        never extended into the TPM."""
        try:
            spec = parse_json(req.body)
            offset = spec["starting_offset"]
            bank = kltpm.HASH_IDS[spec.get("bank", "sha256")]
            value = bytes.fromhex(spec["pcr10"])
            boot = attest.parse_boot_time(spec["boot_time"])
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0 \
                    or len(value) != kltpm.digest_size(bank) or boot is None:
                raise ValueError()
        except (BadJson, KeyError, TypeError, ValueError):
            return json_response(400, {"error": "want {starting_offset: int >= 0, pcr10: hex "
                                       "of the bank's size, bank, boot_time}"})
        with self.lock:
            enr = self.agents.get(agent_id)
            if enr is None:
                return json_response(404, {"error": "agent %s not enrolled" % agent_id})
            att = attest.Attestation(-1, boot)
            att.stage, att.evaluation = "verification_complete", "pass"
            att.starting_offset, att.certified_entry_count = offset, 0
            att.pcr10 = (bank, value)
            enr.last_pass = att
        return json_response(200, {"starting_offset": offset})


def main():
    ap = common.base_args("strict Keylime push-mode verifier (API v3.0) for tests")
    ap.add_argument("--quote-interval", type=float, default=2)
    ap.add_argument("--challenge-lifetime", type=float, default=1800)
    ap.add_argument("--nonce-lifetime", type=float, default=60)
    ap.add_argument("--session-lifetime", type=float, default=180)
    ap.add_argument("--session-rate-per-agent", type=int, default=15)
    ap.add_argument("--session-rate-per-ip", type=int, default=0,
                    help="Keylime: 50; 0 (default) turns it off: every test client is 127.0.0.1")
    ap.add_argument("--session-rate-window", type=float, default=60)
    ap.add_argument("--auto-recover", action="store_true")
    args = ap.parse_args()
    if not args.tls_cert or not args.tls_key:
        ap.error("the verifier is HTTPS only: --tls-cert and --tls-key are required")
    cfg = {"quote_interval": args.quote_interval, "challenge_lifetime": args.challenge_lifetime,
           "nonce_lifetime": args.nonce_lifetime, "session_lifetime": args.session_lifetime,
           "session_rate_per_agent": args.session_rate_per_agent,
           "session_rate_per_ip": args.session_rate_per_ip,
           "session_rate_window": args.session_rate_window, "auto_recover": args.auto_recover,
           "verify_delay": 0, "date_skew": 0}
    peer = Verifier(args.state, cfg, args.ports)
    peer.listen("https", "https", tls_context=common.tls_context(
        args.tls_cert, args.tls_key, args.tls_max_version))
    peer.listen("control", "http", control=True)
    peer.write_ports()
    peer.run_forever()


if __name__ == "__main__":
    sys.exit(main())
