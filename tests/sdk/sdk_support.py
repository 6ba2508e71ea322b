"""Shared helpers of the SDK conformance suite: the gateway handle, one client wrapper per
Alibaba SDK flavour, Huawei client construction, bounded polling and flow definitions.

The wrappers only choose which official SDK entry point to call; requests are built and sent,
responses parsed and errors raised by the SDKs themselves.
"""

import importlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

AK = "testAccessKeyId"
SK = "testAccessKeySecret"
AK2 = "secondAccessKeyId"
SK2 = "secondAccessKeySecret"
PROJECT = "0123456789abcdef0123456789abcdef"
REGION = "cn-north-4"
ALIBABA_REGION = "cn-hangzhou"

# Alibaba actions the SDKs send with GET (vectors README §2.1); every other one is a POST.
GET_ACTIONS = {
    "DescribeExecution", "DescribeFlow", "DescribeFlowAlias", "DescribeMapRun",
    "DescribeSchedule", "GetExecutionHistory", "ListExecutions", "ListFlowAliases",
    "ListFlowVersions", "ListFlows", "ListSchedules", "UpdateMapRun",
}
# POST actions whose parameters the SDKs put in the query rather than the form body.
QUERY_PARAMS = {"ReportTaskSucceeded": {"TaskToken"}, "ReportTaskFailed": {"TaskToken"}}

REQUEST_ID = re.compile(r"^[0-9A-Za-z-]{8,}$")


def uid(prefix="t"):
    """A unique Alibaba/Huawei-safe name."""
    return "%s_%s" % (prefix, uuid.uuid4().hex[:12])


def poll(fn, done, timeout=15.0, interval=0.05, what="condition"):
    """Calls fn() until done(result) holds; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s; last: %r"
                                 % (timeout, what, result))
        time.sleep(interval)


def snake(name):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass
class AliError:
    """What an SDK user sees of an error answer."""
    code: str
    status: int
    request_id: str
    message: str


# --------------------------------------------------------------------------------------------
@dataclass
class Gateway:
    host: str
    port: int
    log_path: Path

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def alibaba(self, flavour, ak=AK, sk=SK):
        return AliClient.make(flavour, self, ak, sk)

    def huawei_client(self, ak=AK, sk=SK, project=PROJECT):
        from huaweicloudsdkcore.auth.credentials import BasicCredentials
        from huaweicloudsdkcore.http.http_config import HttpConfig
        from huaweicloudsdkfunctiongraph.v2 import FunctionGraphClient

        cfg = HttpConfig.get_default_config()
        cfg.timeout = (5, 60)
        return (FunctionGraphClient.new_builder()
                .with_http_config(cfg)
                .with_credentials(BasicCredentials(ak, sk, project))
                .with_endpoints([self.url])
                .build())


class AliClient:
    """One Alibaba SDK flavour. `call` returns the response body as a dict; `fail` expects the
    SDK to raise and returns what it exposes (code, HTTP status, request id, message)."""

    flavour = None

    @staticmethod
    def make(flavour, gw, ak=AK, sk=SK):
        return {"tea": AliTea, "legacy": AliLegacy, "acs3": AliAcs3}[flavour](gw, ak, sk)

    def __repr__(self):
        return "<%s>" % self.flavour

    def call(self, action, **params):
        raise NotImplementedError

    def fail(self, action, **params):
        raise NotImplementedError


class AliTea(AliClient):
    """`alibabacloud_fnf20190315` 2.0.1 (RPC signature v1, HMAC-SHA1)."""

    flavour = "tea"

    def __init__(self, gw, ak, sk):
        from alibabacloud_fnf20190315 import models
        from alibabacloud_fnf20190315.client import Client
        from alibabacloud_tea_openapi import models as open_api_models

        self.models = models
        self.client = Client(open_api_models.Config(
            access_key_id=ak, access_key_secret=sk, region_id=ALIBABA_REGION,
            endpoint="%s:%d" % (gw.host, gw.port), protocol="http",
            read_timeout=30000, connect_timeout=5000))

    def call(self, action, **params):
        request = getattr(self.models, action + "Request")().from_map(params)
        response = getattr(self.client, snake(action))(request)
        assert response.status_code == 200
        return response.body.to_map()

    def fail(self, action, **params):
        from alibabacloud_tea_openapi.exceptions import ClientException

        try:
            self.call(action, **params)
        except ClientException as e:
            assert e.data["statusCode"] == e.status_code
            assert e.data.get("RequestId") == e.request_id
            return AliError(e.code, e.status_code, e.request_id, e.data.get("Message"))
        raise AssertionError("%s did not raise" % action)


class AliAcs3(AliTea):
    """The generic `alibabacloud_tea_openapi` client's `call_api` (ACS3-HMAC-SHA256)."""

    flavour = "acs3"

    def __init__(self, gw, ak, sk):
        from alibabacloud_tea_openapi import models as open_api_models
        from alibabacloud_tea_openapi.client import Client as OpenApiClient

        self.open_api_models = open_api_models
        self.client = OpenApiClient(open_api_models.Config(
            access_key_id=ak, access_key_secret=sk, region_id=ALIBABA_REGION,
            endpoint="%s:%d" % (gw.host, gw.port), protocol="http",
            read_timeout=30000, connect_timeout=5000))

    @staticmethod
    def _text(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (dict, list)):
            return json.dumps(v)
        return str(v)

    def call(self, action, **params):
        from darabonba.runtime import RuntimeOptions

        m = self.open_api_models
        method = "GET" if action in GET_ACTIONS else "POST"
        in_query = QUERY_PARAMS.get(action, set())
        query, body = {}, {}
        for k, v in params.items():
            if v is None:
                continue
            (query if method == "GET" or k in in_query else body)[k] = self._text(v)
        p = m.Params(action=action, version="2019-03-15", protocol="HTTP", pathname="/",
                     method=method, auth_type="AK", style="RPC", req_body_type="formData",
                     body_type="json")
        res = self.client.call_api(p, m.OpenApiRequest(query=query or None, body=body or None),
                                   RuntimeOptions())
        assert res["statusCode"] == 200
        return res["body"]


class AliLegacy(AliClient):
    """`aliyun-python-sdk-fnf` 1.8.3 on `aliyunsdkcore` 2.16.1 (RPC signature v1)."""

    flavour = "legacy"

    def __init__(self, gw, ak, sk):
        from aliyunsdkcore.client import AcsClient

        self.host = gw.host
        self.client = AcsClient(ak, sk, ALIBABA_REGION, port=gw.port, timeout=30)

    def _request(self, action, params):
        mod = importlib.import_module("aliyunsdkfnf.request.v20190315.%sRequest" % action)
        req = getattr(mod, action + "Request")()
        req.set_endpoint(self.host)
        # after the constructor: StartSyncExecutionRequest forces https in its __init__
        req.set_protocol_type("http")
        for k, v in params.items():
            if v is None:
                continue
            if isinstance(v, (dict, list)):
                v = json.dumps(v)
            getattr(req, "set_" + k)(v)
        return req

    def call(self, action, **params):
        raw = self.client.do_action_with_exception(self._request(action, params))
        assert isinstance(raw, bytes)
        return json.loads(raw)

    def fail(self, action, **params):
        from aliyunsdkcore.acs_exception.exceptions import ServerException

        try:
            self.call(action, **params)
        except ServerException as e:
            return AliError(e.get_error_code(), e.get_http_status(), e.get_request_id(),
                            e.get_error_msg())
        raise AssertionError("%s did not raise" % action)


# --------------------------------------------------------------------------------------------
# Alibaba flow definitions. `{name}` is replaced by the flow name (CloudFlow requires it).

FDL_PASS = """\
version: v1
type: flow
steps:
  - type: pass
    name: hello
"""

# Output = the task's result (the flow's local): {"greeting": "hello", "n": 1}.
FDL_FIXED = """\
version: v1
type: flow
steps:
  - type: task
    name: callFixed
    resourceArn: acs:fc:::services/sdk/functions/fixed
"""

FDL_FIXED_V2 = """\
version: v1
type: flow
steps:
  - type: task
    name: callFixed
    resourceArn: acs:fc:::services/sdk/functions/fixed
    outputMappings:
      - target: version
        source: two
"""

# Answers after 1.5 s: long polls must hold.
FDL_DELAYED = """\
version: v1
type: flow
steps:
  - type: task
    name: callDelayed
    resourceArn: acs:fc:cn-hangzhou:123:services/sdk.LATEST/functions/delayed
"""

FDL_BOOM = """\
version: v1
type: flow
steps:
  - type: task
    name: callBoom
    resourceArn: acs:fc:::services/sdk/functions/boom
"""

FDL_CALLBACK = """\
version: v1
type: flow
steps:
  - type: task
    name: approve
    resourceArn: acs:fc:::services/sdk/functions/notify
    pattern: waitForCallback
    inputMappings:
      - target: token
        source: $context.task.token
"""

CF_GREETING = """\
Type: StateMachine
SpecVersion: v1
Name: {name}
StartAt: Invoke
States:
  - Type: Task
    Name: Invoke
    Action: FC:InvokeFunction
    TaskMode: RequestComplete
    Parameters:
      resourceArn: acs:fc:cn-hangzhou:123456789:functions/fixed/LATEST
      invocationType: Sync
      body:
        who.$: $Input.who
    OutputConstructor:
      greeting.$: $Output.Body.greeting
      who.$: $Input.who
    End: true
"""

CF_CALLBACK = """\
Type: StateMachine
SpecVersion: v1
Name: {name}
StartAt: Approve
States:
  - Type: Task
    Name: Approve
    Action: FC:InvokeFunction
    TaskMode: WaitForCustomCallback
    Parameters:
      resourceArn: acs:fc:cn-hangzhou:123456789:functions/notify/LATEST
      invocationType: Async
      body:
        token.$: $Context.Current.TaskToken
    End: true
"""


def create_flow(ali, definition, mode=None, name=None,
                description="sdk conformance: caf\u00e9 \u2603 a+b=c&d"):
    """Creates a flow through `ali` and returns its name."""
    name = name or uid("flow")
    params = dict(Name=name, Definition=definition.replace("{name}", name),
                  Description=description, Type="FDL")
    if mode:
        params["ExecutionMode"] = mode
    body = ali.call("CreateFlow", **params)
    assert body["Name"] == name
    return name


def all_events(ali, flow, execution, limit=100):
    events, token = [], None
    while True:
        body = ali.call("GetExecutionHistory", FlowName=flow, ExecutionName=execution,
                        Limit=limit, NextToken=token)
        events += body.get("Events") or []
        token = body.get("NextToken")
        if not token:
            return events


def task_token(ali, flow, execution):
    """The task token of the callback task an execution waits in (from its history)."""
    def find():
        for e in all_events(ali, flow, execution):
            if e["Type"] in ("TaskScheduled", "TaskSubmitted"):
                token = json.loads(e["EventDetail"]).get("task_token")
                if token:
                    return token
        return None
    return poll(find, lambda t: t is not None, what="a task token in the history")


# --------------------------------------------------------------------------------------------
# Huawei workflow definitions (WorkflowCreateBody models).

def fn_urn(function):
    return "urn:fss:%s:%s:function:default:%s:latest" % (REGION, PROJECT, function)


def hw_workflow(name, function="fixed", mode="EXPRESS", description="sdk-conformance"):
    """Operation `call` (one action calling `function`) then End `done`."""
    from huaweicloudsdkfunctiongraph.v2 import model as hm

    return hm.WorkflowCreateBody(
        name=name, description=description, start="call", mode=mode,
        functions=[hm.Function(name=function, operation=fn_urn(function))],
        constants={}, retries=[],
        states=[
            hm.OperationState(id="call", name="call", type="Operation", action_mode="sequential",
                              end=False, transition="done",
                              actions=[hm.Action(function_ref=hm.FunctionRef(
                                  ref_name=function, invoke_mode="synchronize",
                                  arguments={"who": "$.who"}))]),
            hm.OperationState(id="done", name="done", type="End", end=True, transition="",
                              actions=[]),
        ])
