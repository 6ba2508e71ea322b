#!/usr/bin/env python3
"""Starts every example flow through the vendors' official SDKs and prints the outcome.

    target/sdk-venv/bin/python examples/run_flows.py [--endpoint 127.0.0.1:8080] [NAME [SEAT]]

Needs a running `flowgate serve --config examples/flowgate.example.toml` and the function
server (examples/README.md). The SDKs are those of tests/sdk/requirements.txt
(alibabacloud_fnf20190315, huaweicloudsdkfunctiongraph); `target/sdk-venv` has them once the
SDK suite has been set up. SEAT "none" makes /book fail with NoSeats, which the flows catch.
"""
import argparse
import json
import os
import tempfile
import uuid

# The Huawei SDK writes ~/.huaweicloud/application_id: keep it out of the real HOME.
os.environ["HOME"] = tempfile.mkdtemp(prefix="flowgate-example-")
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

from alibabacloud_fnf20190315 import models as fnf  # noqa: E402
from alibabacloud_fnf20190315.client import Client  # noqa: E402
from alibabacloud_tea_openapi import models as open_api_models  # noqa: E402
from huaweicloudsdkcore.auth.credentials import BasicCredentials  # noqa: E402
from huaweicloudsdkcore.http.http_config import HttpConfig  # noqa: E402
from huaweicloudsdkfunctiongraph.v2 import (  # noqa: E402
    FlowExecuteBody, FunctionGraphClient, ListWorkflowRequest,
    StartSyncWorkflowExecutionRequest)

AK, SK = "testAccessKeyId", "testAccessKeySecret"
PROJECT = "0123456789abcdef0123456789abcdef"


def alibaba(endpoint, flow, data):
    client = Client(open_api_models.Config(
        access_key_id=AK, access_key_secret=SK, region_id="cn-hangzhou",
        endpoint=endpoint, protocol="http", read_timeout=70000))
    name = "example-" + uuid.uuid4().hex[:8]
    client.start_execution(fnf.StartExecutionRequest(
        flow_name=flow, execution_name=name, input=json.dumps(data)))
    r = client.describe_execution(fnf.DescribeExecutionRequest(
        flow_name=flow, execution_name=name, wait_time_seconds=30)).body
    print(f"alibaba {flow} {name}: {r.status} {r.output or ''}")
    return r.status


def huawei(endpoint, flow, data):
    cfg = HttpConfig.get_default_config()
    cfg.timeout = (10, 330)
    client = (FunctionGraphClient.new_builder()
              .with_http_config(cfg)
              .with_credentials(BasicCredentials(AK, SK, PROJECT))
              .with_endpoints([f"http://{endpoint}"])
              .build())
    wf = client.list_workflow(ListWorkflowRequest(workflow_name=flow)).workflows[0]
    r = client.start_sync_workflow_execution(StartSyncWorkflowExecutionRequest(
        workflow_id=wf.id, body=FlowExecuteBody(input=data)))
    print(f"huawei {flow} {r.execution_id}: {r.status} {json.dumps(r.output)} {r.errors or ''}")
    return r.status


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", default="127.0.0.1:8080")
    p.add_argument("name", nargs="?", default="ann")
    p.add_argument("seat", nargs="?", default="12A")
    a = p.parse_args()
    data = {"name": a.name, "seat": a.seat, "flaky": True}
    results = [
        alibaba(a.endpoint, "greet_fdl", data) == "Succeeded",
        alibaba(a.endpoint, "greet_cloudflow", data) == "Succeeded",
        huawei(a.endpoint, "greet", data) == "success",
    ]
    raise SystemExit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
