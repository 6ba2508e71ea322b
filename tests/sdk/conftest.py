"""Harness of the official-SDK conformance suite.

One flowgate process serves the whole session: built if `target/debug/flowgate` is missing,
started on a free loopback port with a config written here (signature verification on with the
default development key pair, `time_scale = 0`, the mock/http function bindings the tests use),
and stopped with SIGTERM at the end (the session fails unless it exits 0).

The vendors' SDKs are the judges: every call goes through them unchanged, pointed at the
gateway the way /work/shared/vectors/README.md §1 describes.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# The Huawei SDK writes ~/.huaweicloud/application_id; keep it out of the real HOME. This must
# happen before any Huawei client is built.
os.environ["HOME"] = tempfile.mkdtemp(prefix="flowgate-sdk-home-")
atexit.register(shutil.rmtree, os.environ["HOME"], True)
for _var in ("HUAWEICLOUD_SDK_IAM_ENDPOINT", "HUAWEICLOUD_SDK_PROJECT_ID", "HUAWEICLOUD_SDK_AK",
             "HUAWEICLOUD_SDK_SK", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(_var, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

from sdk_support import AK, AK2, PROJECT, REGION, SK, SK2, AliClient, Gateway  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("FLOWGATE_BIN", REPO / "target" / "debug" / "flowgate"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------------
# An HTTP function for the `http` invoker: `flaky` fails the first call of every execution
# (function error `FlakyError`) and succeeds on every later call, so a retried execution can
# recover. It counts calls per execution id (header x-flowgate-execution-id).
class _FlakyFunction(BaseHTTPRequestHandler):
    calls = {}
    lock = threading.Lock()

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        event = json.loads(self.rfile.read(length) or b"{}")
        key = self.headers.get("x-flowgate-execution-id", "")
        with self.lock:
            n = self.calls[key] = self.calls.get(key, 0) + 1
        headers = {"content-type": "application/json"}
        if n == 1:
            body = {"errorMessage": "first call of %s fails" % key}
            headers["x-flowgate-error-type"] = "FlakyError"
        else:
            body = {"recovered": True, "calls": n, "event": event}
        data = json.dumps(body).encode()
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def function_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyFunction)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


CONFIG = """\
# Written by tests/sdk/conftest.py for one test session.
[auth]
mode = "verify"

[[credentials]]
access_key_id = "{ak}"
secret = "{sk}"

# A second pair: the IAM project lookup caches per key and region, so each lookup test
# uses its own key.
[[credentials]]
access_key_id = "{ak2}"
secret = "{sk2}"

[engine]
time_scale = 0

[flows]
dir = ""
huawei_project = "{project}"
huawei_region = "{region}"

[log]
level = "warn"

[[functions]]
name = "fixed"
invoker = "mock"
responses = [{{ return = {{ greeting = "hello", n = 1 }} }}]

[[functions]]
name = "delayed"
invoker = "mock"
responses = [{{ return = {{ delayed = true }}, delay_ms = 1500 }}]

[[functions]]
name = "boom"
invoker = "mock"
responses = [{{ throw = {{ error = "BoomError", cause = "it broke" }} }}]

[[functions]]
name = "slow"
invoker = "mock"
responses = [{{ return = {{ slow = true }}, delay_ms = 120000 }}]

[[functions]]
name = "notify"
invoker = "mock"
responses = [{{ return = {{ notified = true }} }}]

[[functions]]
name = "flaky"
invoker = "http"
url = "{functions}/flaky"
timeout_seconds = 10
"""


def _health(url):
    try:
        with urllib.request.urlopen(url + "/_flowgate/health", timeout=1) as r:
            return r.status == 200 and json.loads(r.read()).get("status") == "ok"
    except OSError:
        return False


@pytest.fixture(scope="session")
def gateway(tmp_path_factory, function_server):
    if not BINARY.exists():
        if "FLOWGATE_BIN" in os.environ:
            pytest.fail("FLOWGATE_BIN=%s does not exist" % BINARY)
        subprocess.run(["cargo", "build"], cwd=REPO, check=True)
    work = tmp_path_factory.mktemp("flowgate")
    config = work / "flowgate.toml"
    config.write_text(CONFIG.format(ak=AK, sk=SK, ak2=AK2, sk2=SK2, project=PROJECT,
                                    region=REGION, functions=function_server))
    log_path = work / "flowgate.log"
    log = open(log_path, "wb")
    port = free_port()
    # FLOWGATE_* variables would override the test configuration
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWGATE_")}
    proc = subprocess.Popen([str(BINARY), "serve", "--config", str(config),
                             "--listen", "127.0.0.1:%d" % port],
                            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    gw = Gateway("127.0.0.1", port, log_path)
    deadline = time.monotonic() + 30
    while not _health(gw.url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("flowgate did not become healthy (exit %s):\n%s"
                        % (proc.poll(), log_path.read_text(errors="replace")[-4000:]))
        time.sleep(0.05)
    yield gw
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        log.close()
        pytest.fail("flowgate did not exit within 20 s of SIGTERM:\n%s"
                    % log_path.read_text(errors="replace")[-4000:])
    log.close()
    text = log_path.read_text(errors="replace")
    if code != 0:
        pytest.fail("flowgate exited with %s after SIGTERM:\n%s" % (code, text[-4000:]))
    if "panicked" in text:
        pytest.fail("flowgate panicked during the session:\n%s" % text[-4000:])


# --------------------------------------------------------------------------------------------
# Clients.

ALIBABA_FLAVOURS = ["tea", "legacy", "acs3"]


@pytest.fixture(params=ALIBABA_FLAVOURS)
def ali(request, gateway):
    """An Alibaba client of one flavour (parametrize indirectly to narrow the flavours)."""
    return AliClient.make(request.param, gateway)


@pytest.fixture
def hw(gateway):
    """A Huawei FunctionGraphClient with an explicit project id."""
    return gateway.huawei_client()
