"""Huawei Cloud FunctionGraph workflows (REST API v2) through the official
`huaweicloudsdkfunctiongraph` FunctionGraphClient."""

import datetime
import re
import time

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkfunctiongraph.v2 import model as hm

from sdk_support import AK, AK2, PROJECT, REGION, SK, SK2, hw_workflow, poll, uid

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def hw_name(prefix="wf"):
    return uid(prefix).replace("_", "-")


def urn_of(name):
    return "urn:fss:%s:%s:workflow:default:%s:latest" % (REGION, PROJECT, name)


def create(hw, name=None, **kw):
    name = name or hw_name()
    resp = hw.create_workflow(hm.CreateWorkflowRequest(body=hw_workflow(name, **kw)))
    assert resp.status_code == 201
    return resp


def start(hw, workflow_id, input=None):
    resp = hw.start_workflow_execution(hm.StartWorkflowExecutionRequest(
        workflow_id=workflow_id, x_create_time=str(int(time.time() * 1000)),
        x_workflow_run_id=uid("run"),
        body=hm.FlowExecuteBody(input=input or {"who": "sdk"}, headers={"tenantId": "t1"})))
    assert resp.status_code == 200 and resp.execution_id
    return resp.execution_id


def show(hw, workflow_id, execution_id):
    return hw.show_workflow_execution(hm.ShowWorkflowExecutionRequest(
        workflow_id=workflow_id, execution_id=execution_id,
        x_get_workflow_full_history_data=True))


def until_done(hw, workflow_id, execution_id, timeout=15):
    return poll(lambda: show(hw, workflow_id, execution_id),
                lambda r: r.status != "running", timeout=timeout,
                what="execution %s to finish" % execution_id)


def fails(fn, *args):
    with pytest.raises(ClientRequestException) as info:
        fn(*args)
    return info.value


# ---------------------------------------------------------------------------------------------
# Workflows

def test_create_show_update_workflow(hw):
    name = hw_name()
    created = create(hw, name)
    assert created.name == name
    assert created.workflow_urn == urn_of(name)
    assert re.fullmatch(r"[0-9a-f-]{36}", created.id)
    assert TIME.match(created.created_time) and TIME.match(created.updated_time)
    assert created.description == "sdk-conformance"
    assert created.created_by

    shown = hw.show_work_flow(hm.ShowWorkFlowRequest(workflow_id=created.id))
    assert shown.status_code == 200
    assert (shown.id, shown.workflow_urn) == (created.id, created.workflow_urn)
    d = shown.definition
    assert isinstance(d, hm.WorkflowCreateBody)
    assert (d.name, d.start, d.mode, d.description) == (name, "call", "EXPRESS", "sdk-conformance")
    assert [s.id for s in d.states] == ["call", "done"]
    assert d.states[0].actions[0].function_ref.ref_name == "fixed"
    assert d.functions[0].operation.endswith(":function:default:fixed:latest")

    body = hw_workflow(name, description="changed")
    updated = hw.update_work_flow(hm.UpdateWorkFlowRequest(workflow_id=created.id, body=body))
    assert updated.status_code == 200
    assert (updated.id, updated.description) == (created.id, "changed")
    shown = hw.show_work_flow(hm.ShowWorkFlowRequest(workflow_id=created.id))
    assert shown.definition.description == "changed"
    assert shown.created_time == created.created_time


def test_list_workflow_filters_and_pages(hw):
    prefix = hw_name("lst")
    ids = {create(hw, "%s-%d" % (prefix, i)).id for i in range(3)}
    create(hw, prefix + "-normal", mode="NORMAL")
    page1 = hw.list_workflow(hm.ListWorkflowRequest(workflow_name=prefix, mode="EXPRESS",
                                                    limit=2, offset=0))
    assert page1.status_code == 200
    assert (page1.total, page1.size, len(page1.workflows)) == (3, 2, 2)
    page2 = hw.list_workflow(hm.ListWorkflowRequest(workflow_name=prefix, mode="EXPRESS",
                                                    limit=2, offset=2))
    assert (page2.total, page2.size) == (3, 1)
    assert {w.id for w in page1.workflows + page2.workflows} == ids
    w = page2.workflows[0]
    assert w.workflow_urn.startswith(
        "urn:fss:%s:%s:workflow:default:%s" % (REGION, PROJECT, prefix))
    every = hw.list_workflow(hm.ListWorkflowRequest(workflow_name=prefix))
    assert every.total == 4


def test_batch_delete_workflows(hw):
    a, b = create(hw), create(hw)
    missing = urn_of(hw_name("gone"))
    resp = hw.batch_delete_workflows(hm.BatchDeleteWorkflowsRequest(
        body=hm.WorkflowDeleteBody(workflow_urns=[a.workflow_urn, missing])))
    assert resp.status_code == 200
    assert resp.success == [a.workflow_urn]
    assert [f.workflow_urn for f in resp.fail] == [missing]
    assert resp.fail[0].error_detail
    e = fails(hw.show_work_flow, hm.ShowWorkFlowRequest(workflow_id=a.id))
    assert (e.status_code, e.error_code) == (404, "FGS.5002")
    assert hw.show_work_flow(hm.ShowWorkFlowRequest(workflow_id=b.id)).id == b.id


# ---------------------------------------------------------------------------------------------
# Executions

def test_start_sync_execution_success(hw):
    wf = create(hw)
    resp = hw.start_sync_workflow_execution(hm.StartSyncWorkflowExecutionRequest(
        workflow_id=wf.id, body=hm.FlowExecuteBody(input={"who": "sync"}, headers={"X-A": "b"})))
    assert resp.status_code == 200
    assert resp.status == "success"
    assert resp.output == {"greeting": "hello", "n": 1}
    assert not resp.errors
    assert resp.execution_id
    assert TIME.match(resp.begin_time) and TIME.match(resp.end_time)


def test_start_sync_execution_failure_is_status_fail(hw):
    wf = create(hw, function="boom")
    resp = hw.start_sync_workflow_execution(hm.StartSyncWorkflowExecutionRequest(
        workflow_id=wf.id, body=hm.FlowExecuteBody(input={"who": "x"})))
    assert resp.status_code == 200
    assert resp.status == "fail"
    assert len(resp.errors) == 1
    err = resp.errors[0]
    assert err.node_id == "call"
    assert "it broke" in err.error_message
    assert TIME.match(err.begin_time) and TIME.match(err.end_time)


def test_sync_execution_of_a_normal_workflow_is_rejected(hw):
    wf = create(hw, mode="NORMAL")
    e = fails(hw.start_sync_workflow_execution, hm.StartSyncWorkflowExecutionRequest(
        workflow_id=wf.id, body=hm.FlowExecuteBody(input={})))
    assert (e.status_code, e.error_code) == (400, "FGS.3002")
    assert e.request_id and e.error_msg


def test_async_execution_until_done_with_node_details(hw):
    wf = create(hw, mode="NORMAL")
    ex = start(hw, wf.id, {"who": "async"})
    done = until_done(hw, wf.id, ex)
    assert done.status == "success"
    assert (done.workflow_id, done.execution_id, done.workflow_urn) == (wf.id, ex, wf.workflow_urn)
    assert done.input == {"who": "async"}
    assert done.headers == {"tenantId": "t1"}
    assert done.output == {"greeting": "hello", "n": 1}
    assert TIME.match(done.begin_time) and TIME.match(done.end_time)
    nodes = {n.node_id: n for n in done.node_execution_details}
    assert "call" in nodes
    call = nodes["call"]
    assert call.node_name == "call"
    assert len(call.executions) == 1
    attempt = call.executions[0]
    assert attempt.status == "success"
    assert attempt.output == {"greeting": "hello", "n": 1}
    assert isinstance(attempt.begin_time, int) and isinstance(attempt.end_time, int)
    assert attempt.end_time >= attempt.begin_time > 1_600_000_000_000


def test_list_workflow_executions_and_history_page(hw):
    wf = create(hw, mode="NORMAL")
    ids = [start(hw, wf.id, {"who": str(i)}) for i in range(3)]
    for ex in ids:
        assert until_done(hw, wf.id, ex).status == "success"
    listed = hw.list_workflow_executions(hm.ListWorkflowExecutionsRequest(
        workflow_id=wf.id, limit=10, offset=0))
    assert listed.status_code == 200
    assert {e.execution_id for e in listed.executions} == set(ids)
    assert all(e.status == "success" and e.workflow_id == wf.id for e in listed.executions)
    assert all(TIME.match(e.begin_time) for e in listed.executions)
    only_failed = hw.list_workflow_executions(hm.ListWorkflowExecutionsRequest(
        workflow_id=wf.id, status="fail"))
    assert only_failed.executions == []

    page = hw.show_workflow_execution_for_page(hm.ShowWorkflowExecutionForPageRequest(
        workflow_id=wf.id, offset=0, limit=2))
    assert page.status_code == 200
    assert (page.total, page.size, len(page.executions)) == (3, 2, 2)
    rest = hw.show_workflow_execution_for_page(hm.ShowWorkflowExecutionForPageRequest(
        workflow_id=wf.id, offset=2, limit=2))
    assert (rest.total, rest.size) == (3, 1)
    assert {e.execution_id for e in page.executions + rest.executions} == set(ids)
    first = page.executions[0]
    # the SDK parses these into datetimes when python-dateutil is installed, else keeps the text
    assert isinstance(first.begin_time, datetime.datetime) or TIME.match(first.begin_time)
    assert first.status == "success"


def test_stop_work_flow_cancels_a_running_execution(hw):
    wf = create(hw, function="slow", mode="NORMAL")
    ex = start(hw, wf.id)
    running = poll(lambda: show(hw, wf.id, ex),
                   lambda r: any(n.node_id == "call" for n in r.node_execution_details or []),
                   what="the slow node to start")
    assert running.status == "running"
    started = time.monotonic()
    resp = hw.stop_work_flow(hm.StopWorkFlowRequest(workflow_id=wf.id, execution_id=ex))
    assert resp.status_code == 200
    assert time.monotonic() - started < 10
    stopped = show(hw, wf.id, ex)
    assert stopped.status == "cancel"
    assert stopped.end_time


def test_retry_work_flow_of_a_failed_normal_execution(hw):
    wf = create(hw, function="flaky", mode="NORMAL")
    ex = start(hw, wf.id)
    failed = until_done(hw, wf.id, ex)
    assert failed.status == "fail"
    resp = hw.retry_work_flow(hm.RetryWorkFlowRequest(workflow_id=wf.id, execution_id=ex))
    assert resp.status_code == 200
    done = until_done(hw, wf.id, ex)
    assert done.status == "success"
    assert done.output["recovered"] is True and done.output["calls"] == 2
    attempts = {n.node_id: n for n in done.node_execution_details}["call"].executions
    assert [a.status for a in attempts] == ["fail", "success"]
    assert attempts[0].error_message


def test_metrics_count_executions(hw):
    wf = create(hw, mode="NORMAL")
    for ex in [start(hw, wf.id) for _ in range(2)]:
        until_done(hw, wf.id, ex)
    boom = create(hw, function="boom", mode="NORMAL")
    until_done(hw, boom.id, start(hw, boom.id))
    now = int(time.time() * 1000)
    window = dict(period="5", start_time=str(now - 3_600_000), end_time=str(now + 60_000))

    one = hw.show_work_flow_metric(hm.ShowWorkFlowMetricRequest(
        workflow_urn=wf.workflow_urn, **window))
    assert one.status_code == 200
    assert sum(p.value for p in one.count) == 2
    assert sum(p.value for p in one.fail_count) == 0
    assert all(isinstance(p.timestamp, int) for p in one.count)

    failed = hw.show_work_flow_metric(hm.ShowWorkFlowMetricRequest(
        workflow_urn=boom.workflow_urn, **window))
    assert sum(p.value for p in failed.count) == 1
    assert sum(p.value for p in failed.fail_count) == 1

    tenant = hw.show_tenant_metric(hm.ShowTenantMetricRequest(**window))
    assert tenant.status_code == 200
    assert sum(p.value for p in tenant.count) >= 3
    assert sum(p.value for p in tenant.fail_count) >= 1
    assert sum(p.value for p in tenant.running_count) >= 0
    counts_only = hw.show_tenant_metric(hm.ShowTenantMetricRequest(metric_type="totalCount",
                                                                   **window))
    assert sum(p.value for p in counts_only.count) == sum(p.value for p in tenant.count)
    assert not counts_only.fail_count and not counts_only.duration


# ---------------------------------------------------------------------------------------------
# Project id from IAM, errors

@pytest.mark.parametrize("how", ["with_iam_endpoint", "env"])
def test_project_id_from_iam_lookup(gateway, hw, how, monkeypatch):
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.region.region import Region
    from huaweicloudsdkfunctiongraph.v2 import FunctionGraphClient

    name = hw_name("iam")
    created = create(hw, name)
    # the SDK caches looked-up project ids per key and region: one key per variant
    if how == "env":
        monkeypatch.setenv("HUAWEICLOUD_SDK_IAM_ENDPOINT", gateway.url)
        creds = BasicCredentials(AK2, SK2)
    else:
        creds = BasicCredentials(AK, SK).with_iam_endpoint(gateway.url)
    client = (FunctionGraphClient.new_builder()
              .with_credentials(creds)
              .with_region(Region(REGION, gateway.url))
              .build())
    assert creds.project_id == PROJECT
    listed = client.list_workflow(hm.ListWorkflowRequest(workflow_name=name))
    assert [w.id for w in listed.workflows] == [created.id]


def test_unknown_workflow_is_fgs_5002_with_request_id(hw):
    e = fails(hw.show_work_flow, hm.ShowWorkFlowRequest(workflow_id="no-such-workflow"))
    assert (e.status_code, e.error_code) == (404, "FGS.5002")
    assert e.request_id and re.fullmatch(r"[0-9a-zA-Z-]{16,}", e.request_id)
    assert e.error_msg
    e = fails(hw.start_workflow_execution, hm.StartWorkflowExecutionRequest(
        workflow_id="no-such-workflow", body=hm.FlowExecuteBody(input={})))
    assert (e.status_code, e.error_code) == (404, "FGS.5002") and e.request_id
    wf = create(hw, mode="NORMAL")
    e = fails(hw.show_workflow_execution, hm.ShowWorkflowExecutionRequest(
        workflow_id=wf.id, execution_id="no-such-execution"))
    assert (e.status_code, e.error_code) == (404, "FGS.5002") and e.request_id


def test_bad_signature_is_apigw_0301(gateway):
    bad = gateway.huawei_client(sk=SK + "-wrong")
    e = fails(bad.list_workflow, hm.ListWorkflowRequest())
    assert (e.status_code, e.error_code) == (401, "APIGW.0301")
    assert e.request_id
    assert "verify aksk signature fail" in e.error_msg
    unknown = gateway.huawei_client(ak="unknownAccessKeyId")
    e = fails(unknown.list_workflow, hm.ListWorkflowRequest())
    assert (e.status_code, e.error_code) == (401, "APIGW.0301")


def test_create_with_a_duplicate_name_is_a_conflict(hw):
    wf = create(hw)
    e = fails(hw.create_workflow, hm.CreateWorkflowRequest(body=hw_workflow(wf.name)))
    assert (e.status_code, e.error_code) == (409, "FSS.0409") and e.request_id


def test_invalid_definition_names_the_field(hw):
    body = hw_workflow(hw_name("bad"))
    body.states[0].transition = "nowhere"
    e = fails(hw.create_workflow, hm.CreateWorkflowRequest(body=body))
    assert (e.status_code, e.error_code) == (400, "FGS.3002")
    assert "states[0].transition" in e.error_msg, e.error_msg


def test_unicode_names_descriptions_and_inputs(hw):
    name = "\u6d41\u7a0b-" + uid("u")[2:]
    wf = create(hw, name, description="\u6f14\u793a\u6d41\u7a0b")
    listed = hw.list_workflow(hm.ListWorkflowRequest(workflow_name=name))
    assert [w.id for w in listed.workflows] == [wf.id]
    assert listed.workflows[0].description == "\u6f14\u793a\u6d41\u7a0b"
    resp = hw.start_sync_workflow_execution(hm.StartSyncWorkflowExecutionRequest(
        workflow_id=wf.id, body=hm.FlowExecuteBody(input={"who": "h\u00e9llo \u2603 a+b/c"})))
    assert resp.status == "success"


def test_retry_of_an_express_execution_is_rejected(hw):
    wf = create(hw, function="boom")
    ex = start(hw, wf.id)
    assert until_done(hw, wf.id, ex).status == "fail"
    e = fails(hw.retry_work_flow, hm.RetryWorkFlowRequest(workflow_id=wf.id, execution_id=ex))
    assert (e.status_code, e.error_code) == (400, "FGS.3002") and e.request_id


def test_execution_time_filters(hw):
    wf = create(hw, mode="NORMAL")
    ex = start(hw, wf.id)
    until_done(hw, wf.id, ex)
    now = datetime.datetime.now(datetime.timezone.utc)
    hour_ago, later = now - datetime.timedelta(hours=1), now + datetime.timedelta(minutes=5)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    listed = hw.list_workflow_executions(hm.ListWorkflowExecutionsRequest(
        workflow_id=wf.id, start_time=hour_ago.strftime(iso), end_time=later.strftime(iso)))
    assert [e.execution_id for e in listed.executions] == [ex]
    before = hw.list_workflow_executions(hm.ListWorkflowExecutionsRequest(
        workflow_id=wf.id, end_time=hour_ago.strftime(iso)))
    assert before.executions == []
    spaced = "%Y-%m-%d %H:%M:%S"  # the executions-history format (a space in the query)
    page = hw.show_workflow_execution_for_page(hm.ShowWorkflowExecutionForPageRequest(
        workflow_id=wf.id, offset=0, limit=10, start_time=hour_ago.strftime(spaced),
        end_time=later.strftime(spaced)))
    assert [e.execution_id for e in page.executions] == [ex]
    page = hw.show_workflow_execution_for_page(hm.ShowWorkflowExecutionForPageRequest(
        workflow_id=wf.id, offset=0, limit=10, start_time=later.strftime(spaced)))
    assert page.total == 0 and page.executions == []


def test_no_project_id_and_no_region_means_the_default_project(gateway, hw):
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkfunctiongraph.v2 import FunctionGraphClient

    name = hw_name("noproj")
    created = create(hw, name)
    client = (FunctionGraphClient.new_builder()
              .with_credentials(BasicCredentials(AK, SK))
              .with_endpoints([gateway.url])
              .build())
    listed = client.list_workflow(hm.ListWorkflowRequest(workflow_name=name))
    assert [w.id for w in listed.workflows] == [created.id]


def test_workflows_belong_to_their_project(gateway, hw):
    wf = create(hw)
    other = gateway.huawei_client(project="fedcba9876543210fedcba9876543210")
    e = fails(other.show_work_flow, hm.ShowWorkFlowRequest(workflow_id=wf.id))
    assert (e.status_code, e.error_code) == (404, "FGS.5002")
    assert other.list_workflow(hm.ListWorkflowRequest(workflow_name=wf.name)).total == 0
    assert hw.list_workflow(hm.ListWorkflowRequest(workflow_name=wf.name)).total == 1


def test_input_must_be_an_object(hw):
    wf = create(hw, mode="NORMAL")
    e = fails(hw.start_workflow_execution, hm.StartWorkflowExecutionRequest(
        workflow_id=wf.id, body=hm.FlowExecuteBody(input=[1, 2])))
    assert (e.status_code, e.error_code) == (400, "FGS.3002") and e.request_id
    assert hw.list_workflow_executions(hm.ListWorkflowExecutionsRequest(
        workflow_id=wf.id)).executions == []


def test_oversized_input_is_rejected(hw):
    wf = create(hw)
    e = fails(hw.start_sync_workflow_execution, hm.StartSyncWorkflowExecutionRequest(
        workflow_id=wf.id, body=hm.FlowExecuteBody(input={"blob": "x" * 300_000})))
    assert (e.status_code, e.error_code) == (413, "FSS.0413") and e.request_id
