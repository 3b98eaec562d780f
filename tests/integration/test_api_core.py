"""test_api_core - the REST API's core, over a real `herald serve`, driven
with the curl command line (and raw sockets for what curl cannot do):

  - GET /api/v1/openapi.json without a key: 200, JSON, the text of
    src/api/openapi.json;
  - every /api/v1/lists route: create (with tags), get (with counts),
    list, patch, delete; 409 on a duplicate name; 400 with field for a
    bad optin, an empty name, tags that are not strings; 415 for another
    content type; 400 bad_json with the line and column;
  - keys: 401 without one, with a wrong one, with a revoked one; 403 for a
    read-only key on POST and for an account key on /accounts; an
    operator key without Herald-Account -> 400 account_required, with it
    -> that account's lists;
  - the wall between accounts: another account's key on every
    /lists/{id} route -> 404, and nothing changed;
  - 404 JSON for an unknown path, 405 with Allow for a wrong method;
  - HTTP: keep-alive (one curl, two URLs, one connection), a JSON body
    over http.max_body -> 413, http.max_connections (a 5th idle socket is
    closed; after closing one, requests work again), a half request
    dropped after http.timeout;
  - real responses (a List, a collection, Errors) validated against the
    schemas of openapi.json (python3-jsonschema), and every status seen
    is one the operation documents.
"""
import copy
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

import jsonschema  # noqa: E402  (python3-jsonschema, scripts/install-deps)

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
OPENAPI_PATH = os.path.join(SRC, "src", "api", "openapi.json")
TMP = tempfile.mkdtemp(prefix="herald-api-core-")

# ---- the API over curl ----


class Resp:
    def __init__(self, status, headers, body, stderr=""):
        self.status, self.headers, self.body, self.stderr = status, headers, body, stderr

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "%d %r %r" % (self.status, self.headers, self.body[:400])


class Api:
    def __init__(self, h, port):
        self.h, self.port = h, port
        self.base = "http://127.0.0.1:%d" % port
        self.seen = []          # (method, path, status) of every request

    def call(self, method, path, key=None, body=None, ctype="application/json",
             headers=(), raw=None, extra=()):
        """One curl run; body is JSON-encoded unless it is str/bytes;
        raw: bytes of a body file.  Returns a Resp."""
        hfile = os.path.join(TMP, "h")
        bfile = os.path.join(TMP, "b")
        args = ["curl", "-sS", "--max-time", "20", "-X", method, "-D", hfile,
                "-o", bfile, "-H", "Expect:"]
        if key is not None:
            args += ["-H", "Authorization: Bearer " + key]
        for hd in headers:
            args += ["-H", hd]
        if body is not None or raw is not None:
            data = raw if raw is not None else (
                body.encode() if isinstance(body, str) else
                body if isinstance(body, bytes) else json.dumps(body).encode())
            dfile = os.path.join(TMP, "d")
            with open(dfile, "wb") as f:
                f.write(data)
            args += ["--data-binary", "@" + dfile]
            if ctype is not None:
                args += ["-H", "Content-Type: " + ctype]
        args += list(extra)
        args.append(self.base + path)
        p = subprocess.run(args, capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise AssertionError("curl %s %s: exit %d: %s" % (method, path, p.returncode, p.stderr))
        head = open(hfile, "rb").read().decode("latin-1")
        blocks = [b for b in re.split(r"\r?\n\r?\n", head) if b.strip()]
        lines = blocks[-1].splitlines()
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        resp = Resp(status, hdrs, open(bfile, "rb").read(), p.stderr)
        self.seen.append((method, path.split("?")[0], status))
        return resp

    def get(self, path, key, **kw):
        return self.call("GET", path, key, **kw)

    def post(self, path, key, body, **kw):
        return self.call("POST", path, key, body=body, **kw)

    def patch(self, path, key, body, **kw):
        return self.call("PATCH", path, key, body=body, **kw)

    def delete(self, path, key, **kw):
        return self.call("DELETE", path, key, **kw)


def error_of(r):
    """The error object of an error reply (checks the shape)."""
    check(r.header("content-type") is not None and
          r.header("content-type").startswith("application/json"),
          "%d reply is JSON" % r.status, r)
    doc = r.json()
    check(isinstance(doc.get("error"), dict) and isinstance(doc["error"].get("code"), str)
          and isinstance(doc["error"].get("message"), str), "error shape", doc)
    return doc["error"]


def expect_error(r, status, code, what, field=None):
    check_eq(r.status, status, what + ": status")
    e = error_of(r)
    check_eq(e["code"], code, what + ": code")
    if field is not None:
        check_eq(e.get("field"), field, what + ": field")
    SCHEMAS.validate(r.json(), "Error", what)
    return e


# ---- validating against openapi.json ----

def to_jsonschema(v):
    """An OpenAPI 3.0 schema object as a JSON Schema (nullable -> null)."""
    if isinstance(v, list):
        return [to_jsonschema(x) for x in v]
    if not isinstance(v, dict):
        return v
    out = {k: to_jsonschema(x) for k, x in v.items() if k not in ("nullable", "example")}
    if v.get("nullable"):
        if "type" in out and "allOf" not in out and "$ref" not in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = out["enum"] + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


class Schemas:
    def __init__(self, doc):
        self.doc = doc
        self.components = to_jsonschema(copy.deepcopy(doc["components"]))

    def validate(self, value, name, what):
        schema = {"$ref": "#/components/schemas/" + name, "components": self.components}
        try:
            jsonschema.Draft7Validator(schema).validate(value)
        except jsonschema.ValidationError as e:
            raise AssertionError("%s: does not match schema %s: %s at %s" % (
                what, name, e.message, list(e.absolute_path)))
        check(True, "%s matches openapi.json's %s" % (what, name))

    def operation(self, method, path):
        """(pattern, operation) of the document for a concrete path."""
        for pattern, item in self.doc["paths"].items():
            rx = "^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(pattern)) + "$"
            if re.match(rx, path) and method.lower() in item:
                return pattern, item[method.lower()]
        return None, None


SCHEMAS = None


# ---- the server ----

def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def cli_key(h, *args):
    """herald apikey create ARGS: (key, id)."""
    p = subprocess.run([harness.HERALD, "--data", h.data] + h.set_args() +
                       ["apikey", "create"] + list(args),
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("apikey create %s: %s" % (args, p.stderr))
    m = re.search(r"API key (\d+) created", p.stderr)
    return p.stdout.strip(), int(m.group(1)) if m else None


def account_ids(h):
    out = h.cli("account", "list")
    ids = {}
    for line in out.splitlines()[1:]:
        f = line.split()
        if len(f) >= 2 and f[0].isdigit():
            ids[f[1]] = int(f[0])
    return ids


def raw_conn(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def closed_within(sock, seconds):
    """True when the server closes sock within seconds (reading what comes)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not d:
            return True
    return False


def main():
    global SCHEMAS
    port = harness.free_port()
    sets = {"http.listen": "127.0.0.1:%d" % port, "http.max_body": "4k",
            "http.max_connections": "4", "mta.enabled": "no"}
    with harness.Herald(sets=sets, start=False) as h:
        h.cli("account", "create", "other")
        ids = account_ids(h)
        check("acme" in ids and "other" in ids, "accounts acme and other", ids)
        key, key_id = cli_key(h, "--account", "acme")
        ro_key, _ = cli_key(h, "--account", "acme", "--scopes", "read")
        gone_key, gone_id = cli_key(h, "--account", "acme", "--name", "gone")
        other_key, _ = cli_key(h, "--account", "other")
        op_key, _ = cli_key(h, "--operator")
        check(key and ro_key and other_key and op_key and gone_id, "keys made with the CLI")
        h.start()
        check(wait_port(port), "the REST API listens on 127.0.0.1:%d" % port)
        api = Api(h, port)

        # ---- the description, without a key ----
        r = api.get("/api/v1/openapi.json", None)
        check_eq(r.status, 200, "GET openapi.json without a key")
        check(r.header("content-type").startswith("application/json"), "openapi.json is JSON")
        doc = json.loads(r.body)
        check_eq(doc.get("openapi"), "3.0.3", "OpenAPI 3.0.3")
        check_eq(r.body, open(OPENAPI_PATH, "rb").read(), "served text == src/api/openapi.json")
        SCHEMAS = Schemas(doc)

        # ---- keys ----
        expect_error(api.get("/api/v1/lists", None), 401, "unauthorized", "no key")
        r = api.get("/api/v1/lists", None)
        check(r.header("www-authenticate") is not None, "401 says WWW-Authenticate")
        expect_error(api.get("/api/v1/lists", "hk_not_a_key_at_all"), 401, "unauthorized",
                     "a wrong key")
        expect_error(api.get("/api/v1/lists", key[:-2] + ("AA" if key[-2:] != "AA" else "BB")),
                     401, "unauthorized", "a key with its last bytes changed")
        check_eq(api.get("/api/v1/lists", gone_key).status, 200, "the key to revoke works")
        h.cli("apikey", "revoke", "--account", "acme", str(gone_id))
        expect_error(api.get("/api/v1/lists", gone_key), 401, "unauthorized", "a revoked key")
        r = api.call("GET", "/api/v1/lists", headers=["X-API-Key: " + key])
        check_eq(r.status, 200, "X-API-Key: KEY works too")

        # ---- lists: create, get, list, patch ----
        r = api.post("/api/v1/lists", key, {"name": "news", "description": "weekly",
                                            "optin": "double", "tags": ["a", "b"]})
        check_eq(r.status, 201, "POST /lists -> 201")
        news = r.json()
        SCHEMAS.validate(news, "List", "the created List")
        check_eq((news["name"], news["description"], news["optin"], news["tags"]),
                 ("news", "weekly", "double", ["a", "b"]), "the list's members")
        check_eq(news["counts"], {"subscribed": 0, "unconfirmed": 0, "unsubscribed": 0,
                                  "bounced": 0}, "the list's counts")
        check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", news["created_at"]),
              "created_at is ISO 8601 UTC", news["created_at"])
        nid = news["id"]
        r = api.post("/api/v1/lists", key, {"name": "plain"})
        check_eq(r.status, 201, "POST /lists with a name only")
        plain = r.json()
        check_eq((plain["optin"], plain["tags"]), ("single", []), "defaults: single, no tags")
        r = api.get("/api/v1/lists/%d" % nid, key)
        check_eq(r.status, 200, "GET /lists/{id}")
        check_eq(r.json(), news, "GET /lists/{id} == the created list")
        r = api.get("/api/v1/lists", ro_key)
        check_eq(r.status, 200, "GET /lists with a read-only key")
        SCHEMAS.validate(r.json(), "ListCollection", "GET /lists")
        check_eq(sorted(x["name"] for x in r.json()["data"]), ["news", "plain"], "acme's lists")
        r = api.patch("/api/v1/lists/%d" % nid, key, {"name": "news2", "optin": "single",
                                                      "tags": ["c"]})
        check_eq(r.status, 200, "PATCH /lists/{id}")
        p = r.json()
        SCHEMAS.validate(p, "List", "the patched List")
        check_eq((p["id"], p["name"], p["description"], p["optin"], p["tags"]),
                 (nid, "news2", "weekly", "single", ["c"]), "PATCH changed only what it named")
        r = api.patch("/api/v1/lists/%d" % nid, key, {"description": "monthly"})
        check_eq((r.status, r.json()["name"], r.json()["description"]), (200, "news2", "monthly"),
                 "PATCH one member")

        # ---- lists: errors ----
        expect_error(api.post("/api/v1/lists", key, {"name": "plain"}), 409, "conflict",
                     "a duplicate name")
        expect_error(api.patch("/api/v1/lists/%d" % nid, key, {"name": "plain"}), 409,
                     "conflict", "PATCH to a taken name")
        SOFT.run(lambda: expect_error(api.post("/api/v1/lists", key, {"name": "x", "optin": "triple"}),
                                      400, "invalid", "a bad optin", field="optin"))
        SOFT.run(lambda: expect_error(api.post("/api/v1/lists", key, {"name": ""}), 400,
                                      "invalid", "an empty name", field="name"))
        expect_error(api.post("/api/v1/lists", key, {"name": "t", "tags": ["a", 1]}), 400,
                     "invalid", "tags not strings", field="tags")
        expect_error(api.post("/api/v1/lists", key, {"name": "t", "tags": "a"}), 400,
                     "invalid", "tags not an array", field="tags")
        expect_error(api.post("/api/v1/lists", key, {"description": "no name"}), 400,
                     "invalid", "no name", field="name")
        expect_error(api.post("/api/v1/lists", key, {"name": 5}), 400, "invalid",
                     "a name not a string", field="name")
        expect_error(api.post("/api/v1/lists", key, "name=x", ctype="text/plain"), 415,
                     "unsupported_media_type", "a text/plain body")
        expect_error(api.post("/api/v1/lists", key, "name=x",
                              ctype="application/x-www-form-urlencoded"), 415,
                     "unsupported_media_type", "a form body")
        e = expect_error(api.post("/api/v1/lists", key, '{"name": "x",\n  "tags": [1,]}'),
                         400, "bad_json", "broken JSON")
        check(re.search(r"line 2\D+column \d+", e["message"]), "bad_json names the line and column",
              e["message"])
        expect_error(api.post("/api/v1/lists", key, '["name"]'), 400, "bad_json",
                     "a JSON array, not an object")
        r = api.get("/api/v1/lists", key)
        check_eq(sorted(x["name"] for x in r.json()["data"]), ["news2", "plain"],
                 "no list made by the refused requests")

        # ---- scopes ----
        expect_error(api.post("/api/v1/lists", ro_key, {"name": "ro"}), 403, "forbidden",
                     "a read-only key on POST")
        expect_error(api.patch("/api/v1/lists/%d" % nid, ro_key, {"name": "ro"}), 403,
                     "forbidden", "a read-only key on PATCH")
        expect_error(api.delete("/api/v1/lists/%d" % nid, ro_key), 403, "forbidden",
                     "a read-only key on DELETE")
        expect_error(api.get("/api/v1/accounts", key), 403, "forbidden",
                     "an account key on GET /accounts")
        expect_error(api.get("/api/v1/lists", op_key), 400, "account_required",
                     "an operator key without Herald-Account")
        expect_error(api.get("/api/v1/lists", op_key, headers=["Herald-Account: abc"]), 400,
                     "account_required", "Herald-Account not an id")
        expect_error(api.get("/api/v1/lists", op_key, headers=["Herald-Account: 999999"]), 404,
                     "not_found", "Herald-Account of no account")
        r = api.get("/api/v1/lists", op_key, headers=["Herald-Account: %d" % ids["acme"]])
        check_eq((r.status, sorted(x["name"] for x in r.json()["data"])), (200, ["news2", "plain"]),
                 "an operator key with Herald-Account: acme sees acme's lists")
        r = api.get("/api/v1/lists", op_key, headers=["Herald-Account: %d" % ids["other"]])
        check_eq((r.status, r.json()["data"]), (200, []),
                 "an operator key with Herald-Account: other sees other's (none)")
        r = api.get("/api/v1/lists", other_key, headers=["Herald-Account: %d" % ids["acme"]])
        check_eq((r.status, r.json()["data"]), (200, []),
                 "an account key's Herald-Account is ignored")

        # ---- the wall between accounts ----
        before = api.get("/api/v1/lists/%d" % nid, key).json()
        expect_error(api.get("/api/v1/lists/%d" % nid, other_key), 404, "not_found",
                     "other's key: GET acme's list")
        expect_error(api.patch("/api/v1/lists/%d" % nid, other_key, {"name": "taken"}), 404,
                     "not_found", "other's key: PATCH acme's list")
        expect_error(api.delete("/api/v1/lists/%d" % nid, other_key), 404, "not_found",
                     "other's key: DELETE acme's list")
        e1 = api.get("/api/v1/lists/%d" % nid, other_key).json()["error"]
        e2 = api.get("/api/v1/lists/99999", other_key).json()["error"]
        check_eq(e1["code"], e2["code"], "another account's id answers as one that does not exist")
        check_eq(api.get("/api/v1/lists/%d" % nid, key).json(), before,
                 "acme's list unchanged")
        check_eq(api.get("/api/v1/lists", other_key).json()["data"], [], "other still has no list")
        r = api.post("/api/v1/lists", other_key, {"name": "news2"})
        check_eq(r.status, 201, "other may use a name acme has")
        oid = r.json()["id"]
        expect_error(api.get("/api/v1/lists/%d" % oid, key), 404, "not_found",
                     "acme's key: GET other's list")
        expect_error(api.get("/api/v1/lists/abc", key), 404, "not_found", "GET /lists/abc")

        # ---- delete ----
        r = api.delete("/api/v1/lists/%d" % nid, key)
        check_eq((r.status, r.body), (204, b""), "DELETE /lists/{id} -> 204, no body")
        expect_error(api.get("/api/v1/lists/%d" % nid, key), 404, "not_found",
                     "the deleted list is gone")
        expect_error(api.delete("/api/v1/lists/%d" % nid, key), 404, "not_found",
                     "DELETE it again")
        check_eq(api.get("/api/v1/lists/%d" % oid, other_key).status, 200,
                 "other's list of the same name stays")

        # ---- routing ----
        e = expect_error(api.get("/api/v1/nothing", key), 404, "not_found", "an unknown path")
        expect_error(api.get("/nothing/at/all", None), 404, "not_found", "an unknown path, no key")
        r = api.call("PUT", "/api/v1/lists", key, body={"name": "x"})
        expect_error(r, 405, "method_not_allowed", "PUT /lists")
        allow = {m.strip() for m in (r.header("allow") or "").split(",")}
        check({"GET", "POST"} <= allow and "PUT" not in allow, "405 Allow: GET, POST", r.headers)
        r = api.call("POST", "/api/v1/lists/%d" % oid, other_key, body={})
        expect_error(r, 405, "method_not_allowed", "POST /lists/{id}")
        allow = {m.strip() for m in (r.header("allow") or "").split(",")}
        check({"GET", "PATCH", "DELETE"} <= allow, "405 Allow: GET, PATCH, DELETE", r.headers)

        # ---- keep-alive: one curl, two URLs ----
        p = subprocess.run(["curl", "-sS", "-v", "-o", "/dev/null", "-o", "/dev/null",
                            "-H", "Authorization: Bearer " + key,
                            api.base + "/api/v1/lists", api.base + "/api/v1/lists/%d" % plain["id"]],
                           capture_output=True, text=True, timeout=30)
        check_eq(p.returncode, 0, "curl with two URLs")
        check("Re-using existing connection" in p.stderr, "the second request reuses the connection",
              p.stderr[-2000:])
        check_eq(len(re.findall(r"< HTTP/1.1 200", p.stderr)), 2, "both answered 200")

        # ---- body limit (http.max_body=4k) ----
        big = {"name": "big", "description": "x" * 5000}
        expect_error(api.post("/api/v1/lists", key, big), 413, "too_large",
                     "a JSON body over http.max_body")
        r = api.post("/api/v1/lists", key, '{"name": "small"' + " " * 3800 + "}")
        check_eq(r.status, 201, "a JSON body just under http.max_body")
        check(all(x["name"] != "big" for x in api.get("/api/v1/lists", key).json()["data"]),
              "no list from the refused body")

        # ---- http.max_connections=4 ----
        socks = [raw_conn(port) for _ in range(4)]
        time.sleep(0.3)
        fifth = raw_conn(port)
        check(closed_within(fifth, 3), "a 5th connection is closed (http.max_connections=4)")
        fifth.close()
        socks.pop().close()
        ok = harness.wait_until(lambda: raw_get_ok(port, key), 5, 0.1)
        check(ok, "after closing one, a request works again")
        for s in socks:
            s.close()
        time.sleep(0.2)
        check_eq(api.get("/api/v1/lists", key).status, 200, "after closing all, curl works")

        # ---- every status seen is documented by its operation ----
        check_documented(api)
        h.stop()

        # ---- http.timeout=1s: a half request is dropped ----
        h.sets["http.timeout"] = "1s"
        h.start()
        check(wait_port(port), "restarted with http.timeout=1s")
        s = raw_conn(port)
        s.sendall(b"GET /api/v1/lists HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ")
        t0 = time.monotonic()
        closed = closed_within(s, 6)
        took = time.monotonic() - t0
        s.close()
        check(closed, "a half request is disconnected", took)
        check(0.8 <= took <= 4.0, "after about http.timeout (%.2f s)" % took)
        s = raw_conn(port)
        s.sendall(b"POST /api/v1/lists HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
                  key.encode() + b"\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"name\":")
        t0 = time.monotonic()
        closed = closed_within(s, 6)
        took = time.monotonic() - t0
        s.close()
        check(closed and took <= 4.0, "half a body is disconnected too (%.2f s)" % took)
        check_eq(api.get("/api/v1/lists", key).status, 200, "the server still answers")
        h.stop()
    SOFT.end()


def raw_get_ok(port, key):
    try:
        s = raw_conn(port)
        s.sendall(("GET /api/v1/lists HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                   "Connection: close\r\n\r\n" % key).encode())
        data = b""
        s.settimeout(2)
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
        s.close()
        return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def check_documented(api):
    missing = set()
    for method, path, status in api.seen:
        pattern, op = SCHEMAS.operation(method, path)
        if op is None:
            continue            # 404 / 405: not an operation
        if str(status) not in op["responses"]:
            missing.add("%s %s: %d" % (method, pattern, status))
    check(not missing, "every status seen is documented by its operation (%d requests)"
          % len(api.seen), sorted(missing))


class Soft:
    """Checks that do not stop the script: their failures are listed at
    the end (and fail it)."""

    def __init__(self):
        self.failed = []

    def run(self, fn):
        try:
            fn()
        except AssertionError as e:
            print("FAIL -", str(e).replace("\n", " "))
            self.failed.append(str(e))

    def end(self):
        if self.failed:
            raise AssertionError("%d failed check(s):\n  %s" % (
                len(self.failed), "\n  ".join(f.replace("\n", " ") for f in self.failed)))


SOFT = Soft()

if __name__ == "__main__":
    try:
        harness.run(main)
    finally:
        import shutil
        shutil.rmtree(TMP, ignore_errors=True)
