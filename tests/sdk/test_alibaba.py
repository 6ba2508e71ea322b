"""Alibaba Cloud fnf (RPC API 2019-03-15) through the official SDKs: the Tea client
(`alibabacloud_fnf20190315`, RPC signature v1), the legacy `aliyun-python-sdk-fnf` AcsClient
(RPC signature v1) and the generic `alibabacloud_tea_openapi` `call_api` (ACS3-HMAC-SHA256).
The `ali` fixture runs each test once per flavour unless the test narrows it."""

import json
import re
import time

import pytest

from sdk_support import (
    AK, CF_CALLBACK, CF_GREETING, FDL_BOOM, FDL_CALLBACK, FDL_DELAYED, FDL_FIXED, FDL_FIXED_V2,
    FDL_PASS, REQUEST_ID, SK, all_events, create_flow, poll, task_token, uid,
)

UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

only = {
    "tea": pytest.mark.parametrize("ali", ["tea"], indirect=True),
    "not_legacy": pytest.mark.parametrize("ali", ["tea", "acs3"], indirect=True),
}


def finished(ali, flow, execution, wait=10):
    """DescribeExecution with a long poll; the execution must be finished by its answer."""
    started = time.monotonic()
    body = ali.call("DescribeExecution", FlowName=flow, ExecutionName=execution,
                    WaitTimeSeconds=wait)
    assert body["Status"] != "Running", "long poll returned a running execution after %.1f s" % (
        time.monotonic() - started)
    return body


def assert_error(err, code, status):
    assert (err.code, err.status) == (code, status), err
    assert err.request_id and err.request_id != "None" and REQUEST_ID.match(err.request_id), err


# ---------------------------------------------------------------------------------------------
# Flows

def test_flow_crud_with_old_fdl(ali):
    name = uid("crud")
    created = ali.call("CreateFlow", Name=name, Definition=FDL_PASS, Description="first",
                       Type="FDL")
    assert created["Name"] == name
    assert created["Definition"] == FDL_PASS
    assert created["Description"] == "first"
    assert created["Type"] == "FDL"
    assert re.fullmatch(UUID, created["Id"])
    assert RFC3339_MS.match(created["CreatedTime"])
    assert RFC3339_MS.match(created["LastModifiedTime"])
    assert REQUEST_ID.match(created["RequestId"])

    described = ali.call("DescribeFlow", Name=name)
    assert described["Definition"] == FDL_PASS  # byte for byte, newlines included
    assert described["Id"] == created["Id"]
    assert described["ExecutionMode"] == "Standard"

    updated = ali.call("UpdateFlow", Name=name, Definition=FDL_FIXED, Description="second")
    assert updated["Definition"] == FDL_FIXED and updated["Description"] == "second"
    described = ali.call("DescribeFlow", Name=name)
    assert (described["Definition"], described["Description"]) == (FDL_FIXED, "second")
    assert described["Id"] == created["Id"]
    assert described["LastModifiedTime"] >= created["LastModifiedTime"]

    ali.call("DeleteFlow", Name=name)
    err = ali.fail("DescribeFlow", Name=name)
    assert_error(err, "FlowNotExists", 404)


def test_create_flow_with_cloudflow_definition(ali):
    name = uid("cf")
    definition = CF_GREETING.replace("{name}", name)
    ali.call("CreateFlow", Name=name, Definition=definition, Description="cloudflow",
             Type="FDL")
    assert ali.call("DescribeFlow", Name=name)["Definition"] == definition
    ali.call("StartExecution", FlowName=name, ExecutionName="e1", Input='{"who": "sdk"}')
    body = finished(ali, name, "e1")
    assert body["Status"] == "Succeeded", body
    assert json.loads(body["Output"]) == {"greeting": "hello", "who": "sdk"}
    assert body["FlowDefinition"] == definition


def test_list_flows_pages_with_next_token(ali):
    names = sorted(uid("list") for _ in range(3))
    for n in names:
        create_flow(ali, FDL_PASS, name=n)
    seen, token, pages = [], None, 0
    while True:
        body = ali.call("ListFlows", Limit=2, NextToken=token)
        assert len(body["Flows"]) <= 2
        seen += [f["Name"] for f in body["Flows"]]
        pages += 1
        token = body.get("NextToken")
        if not token:
            break
        assert len(body["Flows"]) == 2
        assert pages < 500
    assert len(seen) == len(set(seen)), "a flow was listed twice"
    assert set(names) <= set(seen)
    assert pages >= 2
    for n in names:
        ali.call("DeleteFlow", Name=n)
    body = ali.call("ListFlows", Limit=999)
    assert not set(names) & {f["Name"] for f in body["Flows"]}


# ---------------------------------------------------------------------------------------------
# Standard executions

def test_start_execution_and_long_poll_until_succeeded(ali):
    flow = create_flow(ali, FDL_DELAYED)
    started = ali.call("StartExecution", FlowName=flow, ExecutionName="run1",
                       Input='{"hello": "w\\u00f6rld"}')
    assert started["Name"] == "run1" and started["FlowName"] == flow
    assert started["Status"] in ("Starting", "Running")
    body = finished(ali, flow, "run1")
    assert body["Status"] == "Succeeded"
    assert json.loads(body["Output"]) == {"delayed": True}
    assert json.loads(body["Input"]) == {"hello": "w\u00f6rld"}
    assert body["FlowDefinition"] == FDL_DELAYED
    assert RFC3339_MS.match(body["StoppedTime"]) and body["StoppedTime"] >= body["StartedTime"]


def test_same_name_while_running_returns_the_running_execution(ali):
    flow = create_flow(ali, FDL_CALLBACK)
    first = ali.call("StartExecution", FlowName=flow, ExecutionName="dup", Input="{}")
    again = ali.call("StartExecution", FlowName=flow, ExecutionName="dup", Input='{"other": 1}')
    assert again["Name"] == "dup" and again["Status"] == "Running"
    assert again["StartedTime"] == first["StartedTime"]
    assert json.loads(again["Input"]) == {}, "a second execution was started"
    listed = ali.call("ListExecutions", FlowName=flow)["Executions"]
    assert [e["Name"] for e in listed] == ["dup"]
    ali.call("StopExecution", FlowName=flow, ExecutionName="dup")


def test_same_name_after_finishing_is_execution_already_exists(ali):
    flow = create_flow(ali, FDL_FIXED)
    ali.call("StartExecution", FlowName=flow, ExecutionName="once", Input="{}")
    assert finished(ali, flow, "once")["Status"] == "Succeeded"
    err = ali.fail("StartExecution", FlowName=flow, ExecutionName="once", Input="{}")
    assert_error(err, "ExecutionAlreadyExists", 400)
    assert "once" in err.message


def test_get_execution_history_pages(ali):
    flow = create_flow(ali, FDL_FIXED)
    ali.call("StartExecution", FlowName=flow, ExecutionName="h", Input='{"x": 1}')
    assert finished(ali, flow, "h")["Status"] == "Succeeded"
    full = ali.call("GetExecutionHistory", FlowName=flow, ExecutionName="h", Limit=100)
    assert "NextToken" not in full or not full["NextToken"]
    events = full["Events"]
    assert len(events) >= 6
    paged, token, pages = [], None, 0
    while True:
        body = ali.call("GetExecutionHistory", FlowName=flow, ExecutionName="h", Limit=2,
                        NextToken=token)
        assert 1 <= len(body["Events"]) <= 2
        paged += body["Events"]
        pages += 1
        token = body.get("NextToken")
        if not token:
            break
        assert isinstance(token, str)
        assert len(body["Events"]) == 2
    assert paged == events
    assert pages == (len(events) + 1) // 2
    ids = [e["EventId"] for e in events]
    assert all(isinstance(i, int) and not isinstance(i, bool) for i in ids)
    assert ids == sorted(set(ids)) and ids[0] == 1
    assert all(isinstance(e["ScheduleEventId"], int) for e in events)
    assert events[0]["Type"] == "ExecutionStarted" and events[0]["StepName"] == ""
    assert events[-1]["Type"] == "ExecutionSucceeded"
    types = [e["Type"] for e in events]
    for t in ("StepEntered", "StepStarted", "TaskScheduled", "TaskSucceeded", "StepSucceeded",
              "StepExited"):
        assert t in types, types
    for e in events:
        assert isinstance(e["EventDetail"], str)
        assert isinstance(json.loads(e["EventDetail"]), dict)
        assert RFC3339_MS.match(e["Time"])
    assert json.loads(events[0]["EventDetail"])["input"] == {"x": 1}
    assert {e["StepName"] for e in events if e["Type"].startswith("Step")} == {"callFixed"}


def test_stop_execution_of_a_running_execution(ali):
    flow = create_flow(ali, FDL_CALLBACK)
    ali.call("StartExecution", FlowName=flow, ExecutionName="s", Input="{}")
    task_token(ali, flow, "s")  # it is waiting in the callback task
    stopped = ali.call("StopExecution", FlowName=flow, ExecutionName="s", Error="Halt",
                       Cause="stopped by the SDK test")
    assert stopped["Status"] == "Stopped" and stopped["Name"] == "s"
    body = ali.call("DescribeExecution", FlowName=flow, ExecutionName="s")
    assert body["Status"] == "Stopped" and body["StoppedTime"]
    last = all_events(ali, flow, "s")[-1]
    assert last["Type"] == "ExecutionStopped"
    detail = json.loads(last["EventDetail"])
    assert detail.get("error") == "Halt" and detail.get("cause") == "stopped by the SDK test"
    listed = ali.call("ListExecutions", FlowName=flow, Status="Stopped")["Executions"]
    assert [e["Name"] for e in listed] == ["s"]


@pytest.mark.parametrize("definition", [FDL_CALLBACK, CF_CALLBACK], ids=["fdl", "cloudflow"])
def test_report_task_succeeded_completes_the_callback_task(ali, definition):
    flow = create_flow(ali, definition)
    ali.call("StartExecution", FlowName=flow, ExecutionName="cb", Input="{}")
    token = task_token(ali, flow, "cb")
    body = ali.call("ReportTaskSucceeded", TaskToken=token, Output='{"approved": true}')
    assert isinstance(body["EventId"], int) and body["EventId"] > 0
    done = finished(ali, flow, "cb")
    assert done["Status"] == "Succeeded"
    assert json.loads(done["Output"]) == {"approved": True}
    err = ali.fail("ReportTaskSucceeded", TaskToken=token, Output="{}")
    assert_error(err, "TaskAlreadyCompleted", 400)


@pytest.mark.parametrize("definition", [FDL_CALLBACK, CF_CALLBACK], ids=["fdl", "cloudflow"])
def test_report_task_failed_fails_the_callback_task(ali, definition):
    flow = create_flow(ali, definition)
    ali.call("StartExecution", FlowName=flow, ExecutionName="cb", Input="{}")
    token = task_token(ali, flow, "cb")
    body = ali.call("ReportTaskFailed", TaskToken=token, Error="Rejected",
                    Cause="the reviewer said no")
    assert isinstance(body["EventId"], int) and body["EventId"] > 0
    done = finished(ali, flow, "cb")
    assert done["Status"] == "Failed"
    failed = [e for e in all_events(ali, flow, "cb") if e["Type"] == "ExecutionFailed"]
    assert len(failed) == 1
    detail = json.loads(failed[0]["EventDetail"])
    assert (detail.get("error"), detail.get("cause")) == ("Rejected", "the reviewer said no")
    err = ali.fail("ReportTaskFailed", TaskToken=token, Error="Again", Cause="twice")
    assert_error(err, "TaskAlreadyCompleted", 400)


# ---------------------------------------------------------------------------------------------
# Express executions

def test_start_sync_execution_of_an_express_flow(ali):
    flow = create_flow(ali, FDL_FIXED, mode="Express")
    assert ali.call("DescribeFlow", Name=flow)["ExecutionMode"] == "Express"
    body = ali.call("StartSyncExecution", FlowName=flow, ExecutionName="sync1",
                    Input='{"a": 1}')
    assert re.fullmatch("sync1:" + UUID, body["Name"]), body["Name"]
    assert body["FlowName"] == flow
    assert body["Status"] == "Succeeded"
    assert json.loads(body["Output"]) == {"greeting": "hello", "n": 1}
    assert not body.get("ErrorCode")
    assert RFC3339_MS.match(body["StartedTime"]) and RFC3339_MS.match(body["StoppedTime"])
    again = ali.call("StartSyncExecution", FlowName=flow, ExecutionName="sync1", Input="{}")
    assert again["Status"] == "Succeeded" and again["Name"] != body["Name"]


def test_start_sync_execution_failure_is_reported_in_band(ali):
    flow = create_flow(ali, FDL_BOOM, mode="Express")
    body = ali.call("StartSyncExecution", FlowName=flow, Input="{}")
    assert body["Status"] == "Failed"
    assert body["ErrorCode"] == "BoomError"
    assert body["ErrorMessage"] == "it broke"
    assert not body.get("Output")


# ---------------------------------------------------------------------------------------------
# Schedules (all three clients have them)

def test_schedules_crud(ali):
    flow = create_flow(ali, FDL_PASS)
    a, b = "sa_" + uid("s")[2:], "sb_" + uid("s")[2:]
    created = ali.call("CreateSchedule", FlowName=flow, ScheduleName=a,
                       CronExpression="0 0 0 1 1 *", Description="yearly", Enable=True,
                       Payload='{"k": "v"}')
    assert created["ScheduleName"] == a and created["ScheduleId"]
    assert created["Enable"] is True
    assert created["CronExpression"] == "0 0 0 1 1 *"
    ali.call("CreateSchedule", FlowName=flow, ScheduleName=b, CronExpression="0 0 0 1 1 *",
             Enable=False)
    described = ali.call("DescribeSchedule", FlowName=flow, ScheduleName=a)
    assert (described["ScheduleId"], described["Description"]) == (created["ScheduleId"], "yearly")
    assert json.loads(described["Payload"]) == {"k": "v"}

    updated = ali.call("UpdateSchedule", FlowName=flow, ScheduleName=a, Enable=False,
                       Description="paused")
    assert updated["Enable"] is False and updated["Description"] == "paused"
    assert ali.call("DescribeSchedule", FlowName=flow, ScheduleName=a)["Enable"] is False

    first = ali.call("ListSchedules", FlowName=flow, Limit=1)
    assert len(first["Schedules"]) == 1 and first["NextToken"]
    second = ali.call("ListSchedules", FlowName=flow, Limit=1, NextToken=first["NextToken"])
    assert len(second["Schedules"]) == 1 and not second.get("NextToken")
    assert {first["Schedules"][0]["ScheduleName"], second["Schedules"][0]["ScheduleName"]} == {a, b}

    ali.call("DeleteSchedule", FlowName=flow, ScheduleName=a)
    err = ali.fail("DescribeSchedule", FlowName=flow, ScheduleName=a)
    assert_error(err, "ScheduleNotExists", 404)
    assert [s["ScheduleName"] for s in ali.call("ListSchedules", FlowName=flow)["Schedules"]] == [b]


# ---------------------------------------------------------------------------------------------
# Versions and aliases (Tea client only: the legacy SDK has no such actions)

@only["tea"]
def test_versions_and_aliases(ali):
    flow = create_flow(ali, FDL_FIXED)
    v1 = ali.call("PublishFlowVersion", FlowName=flow, Description="first")
    assert v1["Version"] == "1" and v1["FlowName"] == flow
    ali.call("UpdateFlow", Name=flow, Definition=FDL_FIXED_V2)
    v2 = ali.call("PublishFlowVersion", FlowName=flow, Description="second")
    assert v2["Version"] == "2"
    assert RFC3339_MS.match(v2["CreatedTime"]) and v2["Description"] == "second"
    versions = ali.call("ListFlowVersions", FlowName=flow)["FlowVersions"]
    assert sorted((v["Version"], v["Description"]) for v in versions) == [
        ("1", "first"), ("2", "second")]
    assert ali.call("DescribeFlow", Name=flow, FlowVersion="1")["Definition"] == FDL_FIXED

    alias = ali.call("CreateFlowAlias", FlowName=flow, Name="prod", Description="live",
                     RoutingConfigurations=[{"Version": "1", "Weight": 100}])
    assert alias["Name"] == "prod"
    routes = alias["RoutingConfigurations"]
    assert [(r["Version"], int(r["Weight"])) for r in routes] == [("1", 100)]
    ali.call("StartExecution", FlowName=flow, ExecutionName="via-v1", Qualifier="prod",
             Input="{}")
    done = finished(ali, flow, "via-v1")
    assert done["FlowDefinition"] == FDL_FIXED
    assert json.loads(done["Output"]) == {"greeting": "hello", "n": 1}

    updated = ali.call("UpdateFlowAlias", FlowName=flow, Name="prod",
                       RoutingConfigurations=[{"Version": "2", "Weight": 100}])["Alias"]
    assert updated["Name"] == "prod"
    assert [r["Version"] for r in updated["RoutingConfigurations"]] == ["2"]
    described = ali.call("DescribeFlowAlias", FlowName=flow, Name="prod")["Alias"]
    assert [r["Version"] for r in described["RoutingConfigurations"]] == ["2"]
    assert described["Description"] == "live"
    ali.call("StartExecution", FlowName=flow, ExecutionName="via-v2", Qualifier="prod",
             Input="{}")
    done = finished(ali, flow, "via-v2")
    assert done["FlowDefinition"] == FDL_FIXED_V2
    assert json.loads(done["Output"]) == {"version": "two"}
    assert [a["Name"] for a in ali.call("ListFlowAliases", FlowName=flow)["Aliases"]] == ["prod"]

    ali.call("DeleteFlowAlias", FlowName=flow, Name="prod")
    assert not ali.call("ListFlowAliases", FlowName=flow).get("Aliases")
    ali.call("DeleteFlowVersion", FlowName=flow, FlowVersion="1")
    versions = ali.call("ListFlowVersions", FlowName=flow)["FlowVersions"]
    assert [v["Version"] for v in versions] == ["2"]


@only["not_legacy"]
def test_describe_regions(ali):
    regions = ali.call("DescribeRegions")["Regions"]["Region"]
    assert regions and all(r["RegionId"] for r in regions)
    assert "cn-hangzhou" in {r["RegionId"] for r in regions}


# ---------------------------------------------------------------------------------------------
# Errors as the SDKs surface them

def test_flow_not_exists(ali):
    name = uid("missing")
    err = ali.fail("DescribeFlow", Name=name)
    assert_error(err, "FlowNotExists", 404)
    assert name in err.message
    assert_error(ali.fail("StartExecution", FlowName=name, Input="{}"), "FlowNotExists", 404)


def test_execution_not_exists(ali):
    flow = create_flow(ali, FDL_PASS)
    err = ali.fail("DescribeExecution", FlowName=flow, ExecutionName="nope")
    assert_error(err, "ExecutionNotExists", 404)
    assert_error(ali.fail("GetExecutionHistory", FlowName=flow, ExecutionName="nope"),
                 "ExecutionNotExists", 404)
    assert_error(ali.fail("StopExecution", FlowName=flow, ExecutionName="nope"),
                 "ExecutionNotExists", 404)


def test_missing_required_params(ali):
    err = ali.fail("DescribeFlow")
    assert_error(err, "MissingRequiredParams", 400)
    assert "Name" in err.message
    err = ali.fail("StartExecution", Input="{}")
    assert_error(err, "MissingRequiredParams", 400)
    assert "FlowName" in err.message


def test_invalid_definition_names_the_field(ali):
    broken = FDL_PASS + "  - type: teleport\n    name: nowhere\n"
    err = ali.fail("CreateFlow", Name=uid("bad"), Definition=broken, Description="x",
                   Type="FDL")
    assert_error(err, "InvalidArgument", 400)
    assert "steps[1].type" in err.message, err.message
    name = uid("badcf")
    broken_cf = CF_GREETING.replace("{name}", name).replace("End: true", "Next: Nowhere")
    err = ali.fail("CreateFlow", Name=name, Definition=broken_cf, Description="x", Type="FDL")
    assert_error(err, "InvalidArgument", 400)
    assert "States[0].Next" in err.message, err.message
    assert_error(ali.fail("DescribeFlow", Name=name), "FlowNotExists", 404)


def test_wrong_secret_is_signature_not_match(gateway, ali):
    bad = gateway.alibaba(ali.flavour, sk=SK + "-wrong")
    err = bad.fail("ListFlows")
    assert_error(err, "SignatureNotMatch", 403)


def test_unknown_access_key_is_invalid_access_key_id(gateway, ali):
    bad = gateway.alibaba(ali.flavour, ak="unknownAccessKeyId")
    err = bad.fail("ListFlows")
    assert_error(err, "InvalidAccessKeyID", 403)
    assert "unknownAccessKeyId" in err.message
    assert AK not in err.message


# ---------------------------------------------------------------------------------------------
# More of the surface the SDKs model

def test_description_and_environment_round_trip(ali):
    description = "d\u00e9j\u00e0 vu \u2603 + 100% & more=yes"
    name = uid("env")
    params = dict(Name=name, Definition=FDL_FIXED, Description=description, Type="FDL")
    env = {"Variables": [{"Name": "stage", "Value": "test", "Description": "where"}]}
    if ali.flavour != "legacy":  # the legacy CreateFlowRequest has no Environment
        params["Environment"] = env
    ali.call("CreateFlow", **params)
    described = ali.call("DescribeFlow", Name=name)
    assert described["Description"] == description
    if ali.flavour != "legacy":
        assert described["Environment"]["Variables"][0]["Name"] == "stage"
        assert described["Environment"]["Variables"][0]["Value"] == "test"
        ali.call("StartExecution", FlowName=name, ExecutionName="e", Input="{}")
        body = finished(ali, name, "e")
        assert body["Environment"]["Variables"][0]["Value"] == "test"


def test_create_flow_twice_is_flow_already_exists(ali):
    name = create_flow(ali, FDL_PASS)
    err = ali.fail("CreateFlow", Name=name, Definition=FDL_PASS, Description="again", Type="FDL")
    assert_error(err, "FlowAlreadyExists", 409)
    assert_error(ali.fail("UpdateFlow", Name=uid("missing"), Definition=FDL_PASS),
                 "FlowNotExists", 404)


def test_start_execution_without_a_name_generates_one(ali):
    flow = create_flow(ali, FDL_FIXED)
    started = ali.call("StartExecution", FlowName=flow, Input='{"k": [1, 2]}')
    assert started["Name"]
    body = finished(ali, flow, started["Name"])
    assert body["Status"] == "Succeeded" and json.loads(body["Input"]) == {"k": [1, 2]}


def test_long_poll_returns_running_when_the_wait_is_up(ali):
    flow = create_flow(ali, FDL_CALLBACK)
    ali.call("StartExecution", FlowName=flow, ExecutionName="w", Input="{}")
    began = time.monotonic()
    body = ali.call("DescribeExecution", FlowName=flow, ExecutionName="w", WaitTimeSeconds=1)
    waited = time.monotonic() - began
    assert body["Status"] == "Running" and "StoppedTime" not in body
    assert 0.9 <= waited < 5, waited
    err = ali.fail("DescribeExecution", FlowName=flow, ExecutionName="w", WaitTimeSeconds=61)
    assert_error(err, "InvalidArgument", 400)
    ali.call("StopExecution", FlowName=flow, ExecutionName="w")


def test_list_executions_filters_and_pages(ali):
    flow = create_flow(ali, FDL_FIXED)
    names = ["job-a", "job-b", "other-c"]
    for n in names:
        ali.call("StartExecution", FlowName=flow, ExecutionName=n, Input='{"n": "%s"}' % n)
        finished(ali, flow, n)
    seen, token, pages = [], None, 0
    while True:
        body = ali.call("ListExecutions", FlowName=flow, Limit=2, NextToken=token)
        assert len(body["Executions"]) <= 2
        seen += [e["Name"] for e in body["Executions"]]
        pages += 1
        token = body.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(names) and pages == 2
    body = ali.call("ListExecutions", FlowName=flow, ExecutionNamePrefix="job-")
    assert sorted(e["Name"] for e in body["Executions"]) == ["job-a", "job-b"]
    assert all(e["Status"] == "Succeeded" and "Output" in e for e in body["Executions"])
    assert ali.call("ListExecutions", FlowName=flow, Status="Running")["Executions"] == []
    future = "2999-01-01T00:00:00Z"
    assert ali.call("ListExecutions", FlowName=flow, StartedTimeBegin=future)["Executions"] == []
    if ali.flavour != "legacy":  # MetadataOnly is not in the legacy request
        lean = ali.call("ListExecutions", FlowName=flow, MetadataOnly=True)["Executions"]
        assert len(lean) == 3
        assert all("Input" not in e and "FlowDefinition" not in e and "Output" not in e
                   for e in lean)


def test_start_sync_execution_of_a_standard_flow_fails_in_band(ali):
    flow = create_flow(ali, FDL_FIXED)
    body = ali.call("StartSyncExecution", FlowName=flow, ExecutionName="s", Input="{}")
    assert body["Status"] == "Failed"
    assert body["ErrorCode"] == "ActionNotSupported"
    assert re.fullmatch("s:" + UUID, body["Name"])


def test_deleted_flow_takes_its_executions_along(ali):
    name = create_flow(ali, FDL_FIXED)
    ali.call("StartExecution", FlowName=name, ExecutionName="old", Input="{}")
    finished(ali, name, "old")
    ali.call("DeleteFlow", Name=name)
    assert_error(ali.fail("DescribeExecution", FlowName=name, ExecutionName="old"),
                 "FlowNotExists", 404)
    create_flow(ali, FDL_FIXED, name=name)
    assert ali.call("ListExecutions", FlowName=name)["Executions"] == []
    assert_error(ali.fail("DescribeExecution", FlowName=name, ExecutionName="old"),
                 "ExecutionNotExists", 404)


def test_report_with_bad_arguments(ali):
    flow = create_flow(ali, FDL_CALLBACK)
    ali.call("StartExecution", FlowName=flow, ExecutionName="cb", Input="{}")
    token = task_token(ali, flow, "cb")
    err = ali.fail("ReportTaskSucceeded", TaskToken=token, Output="not json")
    assert_error(err, "InvalidArgument", 400)
    assert_error(ali.fail("ReportTaskSucceeded", Output="{}"), "MissingRequiredParams", 400)
    # the bad reports did not complete the task
    ali.call("ReportTaskSucceeded", TaskToken=token, Output='{"late": "but fine"}')
    assert json.loads(finished(ali, flow, "cb")["Output"]) == {"late": "but fine"}


def test_update_flow_with_a_broken_definition_keeps_the_old_one(ali):
    name = create_flow(ali, FDL_PASS)
    broken = "version: v1\ntype: flow\nsteps:\n  - type: pass\n    name: [unclosed\n"
    err = ali.fail("UpdateFlow", Name=name, Definition=broken)
    assert_error(err, "InvalidArgument", 400)
    assert ali.call("DescribeFlow", Name=name)["Definition"] == FDL_PASS


@only["tea"]
def test_an_enabled_schedule_starts_executions_with_its_payload(ali):
    flow = create_flow(ali, FDL_PASS)
    sched = uid("tick")
    ali.call("CreateSchedule", FlowName=flow, ScheduleName=sched, CronExpression="* * * * * *",
             Enable=True, Payload='{"from": "schedule"}')
    try:
        execs = poll(lambda: ali.call("ListExecutions", FlowName=flow)["Executions"],
                     lambda e: len(e) >= 1, timeout=10, what="a scheduled execution")
    finally:
        ali.call("UpdateSchedule", FlowName=flow, ScheduleName=sched, Enable=False)
    assert json.loads(execs[0]["Input"]) == {"from": "schedule"}


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_callback_fnf_task_token_reports_the_child_result_to_the_parent(ali, outcome):
    """StartExecution's CallbackFnFTaskToken (spec §4.2): when the child execution ends, its
    result completes the parent's waiting task (nested flows with waitForCallback)."""
    parent = create_flow(ali, FDL_CALLBACK)
    child = create_flow(ali, FDL_FIXED if outcome == "succeeded" else FDL_BOOM)
    ali.call("StartExecution", FlowName=parent, ExecutionName="parent", Input="{}")
    token = task_token(ali, parent, "parent")
    ali.call("StartExecution", FlowName=child, ExecutionName="child", Input="{}",
             CallbackFnFTaskToken=token)
    done = finished(ali, parent, "parent")
    if outcome == "succeeded":
        assert done["Status"] == "Succeeded", done
        assert json.loads(done["Output"]) == {"greeting": "hello", "n": 1}
    else:
        assert done["Status"] == "Failed", done
        failed = [e for e in all_events(ali, parent, "parent") if e["Type"] == "ExecutionFailed"]
        assert json.loads(failed[0]["EventDetail"]).get("error") == "BoomError"
    err = ali.fail("ReportTaskSucceeded", TaskToken=token, Output="{}")
    assert_error(err, "TaskAlreadyCompleted", 400)


def test_input_must_be_a_json_object(ali):
    flow = create_flow(ali, FDL_PASS)
    for bad in ("[1, 2]", "{not json"):
        err = ali.fail("StartExecution", FlowName=flow, Input=bad)
        assert_error(err, "InvalidArgument", 400)
        assert "Input" in err.message
    assert ali.call("ListExecutions", FlowName=flow)["Executions"] == []


def test_oversized_input_is_entity_too_large(ali):
    flow = create_flow(ali, FDL_PASS)
    big = json.dumps({"blob": "x" * 300_000})  # over the 256 KiB payload limit
    err = ali.fail("StartExecution", FlowName=flow, Input=big)
    assert_error(err, "EntityTooLarge", 400)
