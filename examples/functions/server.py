#!/usr/bin/env python3
"""A tiny local function server for flowgate's `http` invoker (stdlib only).

    python3 examples/functions/server.py [PORT]      # default 9000, listens on 127.0.0.1 only

Every function is a POST of the task's event (JSON) to /<function>; the JSON answer is the
task's result. Functions return their event with something added, so flows whose states
replace their data (Huawei) still carry it forward:

  /greet  -> {...event, "greeting": "hello <name>"}
             no `name`: function error `ValidationError` (header convention:
             `x-flowgate-error-type`, status 200, message in `errorMessage`)
  /book   -> {...event, "booking": "BK-<name>-<seat>"}
             `"flaky": true`: the first attempt (x-flowgate-attempt: 0) fails with `Busy`
             (header convention), so a retry on `Busy` recovers;
             `"seat": "none"`: function error `NoSeats` (body convention: status 422 with
             {"errorType", "errorMessage"}), for a catch to handle.

Bind them in flowgate's configuration (examples/flowgate.example.toml):

    [[functions]]
    name = "greet"
    invoker = "http"
    url = "http://127.0.0.1:9000/greet"
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def greet(event, attempt):
    name = event.get("name")
    if not name:
        return 200, {"x-flowgate-error-type": "ValidationError"}, {
            "errorMessage": "name is required"}
    return 200, {}, {**event, "greeting": f"hello {name}"}


def book(event, attempt):
    if event.get("flaky") and attempt == 0:
        return 503, {"x-flowgate-error-type": "Busy"}, {"errorMessage": "busy, try again"}
    seat = event.get("seat", "any")
    if seat == "none":
        return 422, {}, {"errorType": "NoSeats", "errorMessage": "no seats left"}
    return 200, {}, {**event, "booking": f"BK-{event.get('name', 'anon')}-{seat}"}


FUNCTIONS = {"/greet": greet, "/book": book}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        fn = FUNCTIONS.get(self.path.split("?")[0])
        length = int(self.headers.get("content-length") or 0)
        try:
            event = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            event = None
        if fn is None:
            status, headers, body = 404, {}, {"errorMessage": f"no function at {self.path}"}
        elif not isinstance(event, dict):
            status, headers, body = 200, {"x-flowgate-error-type": "ValidationError"}, {
                "errorMessage": "the event must be a JSON object"}
        else:
            attempt = int(self.headers.get("x-flowgate-attempt") or 0)
            status, headers, body = fn(event, attempt)
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in {**headers, "content-type": "application/json"}.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.headers.get("x-flowgate-state", "-"), fmt % args))


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"functions on http://127.0.0.1:{server.server_address[1]}: "
          + ", ".join(sorted(FUNCTIONS)), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
