"""A Schema Registry for the tests: the subset of Confluent's REST API that
confluent-kafka's client and flumen call, with real storage, ids, GUIDs,
versions and references, and compatibility NONE.

This is a test fixture, not part of flumen: no registry server can be
installed on the test machines (docs/testing.md). It logs every request it
answers, one line each ("GET /schemas/ids/1 200"), so that tests can count
what flumen asked for. With --store, its schemas survive a restart, as a
real registry's do (they live in Kafka there).

    python3 registry.py --port 8081 --log requests.log --store schemas.json \
        [--tls-cert server.pem --tls-key server.key] [--basic user:password]

With --tls-cert it serves HTTPS; with --basic it answers 401 to a request
without those credentials, as a registry with authentication does.
"""

import argparse
import base64
import json
import os
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

LOCK = threading.Lock()
STATE = {"schemas": [], "subjects": {}}
ARGS = None


def save():
    if ARGS.store:
        tmp = ARGS.store + ".tmp"
        with open(tmp, "w") as f:
            json.dump(STATE, f)
        os.replace(tmp, ARGS.store)


def full(subject, version, s):
    out = {"subject": subject, "version": version, "id": s["id"], "guid": s["guid"],
           "schema": s["schema"], "references": s["references"]}
    if s["schemaType"] != "AVRO":
        out["schemaType"] = s["schemaType"]
    return out


def by_id(schema_id):
    return next((s for s in STATE["schemas"] if s["id"] == schema_id), None)


def register(subject, body):
    schema_type = body.get("schemaType", "AVRO")
    refs = body.get("references") or []
    for r in refs:
        versions = STATE["subjects"].get(r["subject"], [])
        if not any(v["version"] == r["version"] for v in versions):
            return 422, {"error_code": 42201, "message": f"reference {r} not found"}
    same = next((s for s in STATE["schemas"] if s["schema"] == body["schema"]
                 and s["schemaType"] == schema_type and s["references"] == refs), None)
    if same is None:
        same = {"id": len(STATE["schemas"]) + 1, "guid": str(uuid.uuid4()),
                "schema": body["schema"], "schemaType": schema_type, "references": refs}
        STATE["schemas"].append(same)
    versions = STATE["subjects"].setdefault(subject, [])
    mine = next((v for v in versions if v["id"] == same["id"]), None)
    if mine is None:
        mine = {"version": len(versions) + 1, "id": same["id"]}
        versions.append(mine)
    save()
    return 200, full(subject, mine["version"], same)


def subject_version(subject, version):
    versions = STATE["subjects"].get(subject)
    if not versions:
        return 404, {"error_code": 40401, "message": f"Subject '{subject}' not found."}
    v = versions[-1] if version == "latest" else next(
        (v for v in versions if str(v["version"]) == version), None)
    if v is None:
        return 404, {"error_code": 40402, "message": f"Version {version} not found."}
    return 200, full(subject, v["version"], by_id(v["id"]))


def route(method, path, body):
    parts = [unquote(p) for p in path.strip("/").split("/")]
    if method == "GET" and parts[:2] == ["schemas", "ids"] and len(parts) == 3:
        s = by_id(int(parts[2])) if parts[2].isdigit() else None
        if s is None:
            return 404, {"error_code": 40403, "message": f"Schema {parts[2]} not found"}
        return 200, {k: v for k, v in full(None, None, s).items() if k not in ("subject", "version")}
    if method == "GET" and parts[:2] == ["schemas", "ids"] and parts[3:] == ["versions"]:
        sid = int(parts[2])
        return 200, [{"subject": sub, "version": v["version"]}
                     for sub, vs in STATE["subjects"].items() for v in vs if v["id"] == sid]
    if method == "GET" and parts[:2] == ["schemas", "guids"] and len(parts) == 3:
        s = next((s for s in STATE["schemas"] if s["guid"] == parts[2].lower()), None)
        if s is None:
            return 404, {"error_code": 40403, "message": f"Schema {parts[2]} not found"}
        return 200, {k: v for k, v in full(None, None, s).items() if k not in ("subject", "version")}
    if method == "GET" and parts == ["subjects"]:
        return 200, sorted(STATE["subjects"])
    if parts[:1] == ["subjects"] and len(parts) == 3 and parts[2] == "versions":
        if method == "POST":
            return register(parts[1], body)
        return 200, [v["version"] for v in STATE["subjects"].get(parts[1], [])]
    if method == "GET" and parts[:1] == ["subjects"] and len(parts) == 4 and parts[2] == "versions":
        return subject_version(parts[1], parts[3])
    if method == "POST" and parts[:1] == ["subjects"] and len(parts) == 2:
        for v in STATE["subjects"].get(parts[1], []):
            s = by_id(v["id"])
            if s["schema"] == body["schema"]:
                return 200, full(parts[1], v["version"], s)
        return 404, {"error_code": 40403, "message": "Schema not found"}
    if parts[:1] == ["config"]:
        return 200, {"compatibilityLevel": "NONE", "compatibility": "NONE"}
    return 404, {"error_code": 404, "message": f"{method} {path}: not served by this test registry"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        if ARGS.basic:
            want = "Basic " + base64.b64encode(ARGS.basic.encode()).decode()
            if self.headers.get("Authorization") != want:
                self.rfile.read(length)
                with open(ARGS.log, "a") as log:
                    log.write(f"{method} {urlsplit(self.path).path} 401\n")
                data = json.dumps({"error_code": 401, "message": "Unauthorized"}).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
        body = json.loads(self.rfile.read(length) or b"null") if length else None
        path = urlsplit(self.path).path
        with LOCK:
            status, out = route(method, path, body)
            with open(ARGS.log, "a") as log:
                log.write(f"{method} {path} {status}\n")
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer("GET")

    def do_POST(self):
        self.answer("POST")

    def do_PUT(self):
        self.answer("PUT")

    def log_message(self, *args):
        pass


def main():
    global ARGS, STATE
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--store")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--basic")
    ARGS = p.parse_args()
    if ARGS.store and os.path.exists(ARGS.store):
        with open(ARGS.store) as f:
            STATE = json.load(f)
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    if ARGS.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"registry listening on 127.0.0.1:{ARGS.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
