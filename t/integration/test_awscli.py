"""Real clients against /events, unchanged except for the endpoint: Debian's
AWS CLI v2 (/usr/bin/aws, package awscli) and the AWS SDK for JavaScript v3
(@aws-sdk/client-eventbridge 3.967.0, pinned in t/js, run with node).
What they send and accept is in aws-clients.md. The tools are required: a
missing one fails the test (CI installs awscli, nodejs and npm)."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from harness import UUID_RE, destination, entry, rule
from test_awsapi import ACCOUNT, REGION, SECRETS, api_conf

AWS = "/usr/bin/aws"
HERE = os.path.dirname(os.path.abspath(__file__))
JS_DIR = os.path.join(os.path.dirname(HERE), "js")
SDK_VERSION = "3.967.0"
DELIVER = 10.0
SETTLE = 1.5


# ---- the AWS CLI --------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_home():
    if not os.access(AWS, os.X_OK):
        pytest.fail("%s is missing: apt-get install -y --no-install-recommends awscli" % AWS)
    home = tempfile.mkdtemp(prefix="apidest-awscli-")
    yield home
    shutil.rmtree(home, ignore_errors=True)


def cli(server, home, *args, path="/events"):
    """Run `aws events ARGS` against the server; (rc, stdout, stderr)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "LANG": "C.UTF-8",
           "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
           "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1",
           "AWS_RETRY_MODE": "standard", "AWS_PAGER": "",
           "AWS_CONFIG_FILE": os.path.join(home, "none"),
           "AWS_SHARED_CREDENTIALS_FILE": os.path.join(home, "none")}
    cmd = [AWS, "events"] + list(args) + [
        "--endpoint-url", "http://127.0.0.1:%d%s" % (server.port, path),
        "--cli-read-timeout", "20", "--cli-connect-timeout", "5", "--output", "json"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def cli_ok(server, home, *args, **kw):
    rc, out, err = cli(server, home, *args, **kw)
    assert rc == 0, "aws %s: rc %d\n%s%s" % (" ".join(args), rc, out, err)
    return json.loads(out) if out.strip() else None


def cli_error(server, home, code, operation, *args):
    """The CLI failed with a service error (v2: rc 254) and printed AWS's code."""
    rc, out, err = cli(server, home, *args)
    assert rc == 254, "aws %s: rc %d\n%s%s" % (" ".join(args), rc, out, err)
    # v2 adds " (reached max retries: N)" when it gives up (AWS_MAX_ATTEMPTS=1: 0)
    m = re.search(r"An error occurred \((\w+)\) when calling the (\w+) operation"
                  r"(?: \(reached max retries: \d+\))?: (.*)", err)
    assert m and m.group(1) == code and m.group(2) == operation, err
    return m.group(3).strip()


def write_json(server, name, value):
    path = os.path.join(server.root, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f)
        f.write("\n")            # as an editor leaves it: sent verbatim by file://
    return "file://" + path


def orders_conf(sink):
    return destination("hooks", sink.url("/in")) + rule(
        "r-orders", {"source": ["com.acme.orders"]}, [("t1", "hooks")])


def test_cli_put_events_1_and_10(server, sink, cli_home):
    server.start(orders_conf(sink))
    one = [entry("com.acme.orders", "OrderCreated", {"id": 1, "name": "Zo\u00eb \U0001F680"})]
    out = cli_ok(server, cli_home, "put-events", "--entries", write_json(server, "1.json", one))
    assert out["FailedEntryCount"] == 0 and len(out["Entries"]) == 1, out
    ids = [out["Entries"][0]["EventId"]]
    ten = [entry("com.acme.orders", "OrderCreated", {"id": i}, Time=1714979289)
           for i in range(10)]
    out = cli_ok(server, cli_home, "put-events", "--entries", write_json(server, "10.json", ten))
    assert out["FailedEntryCount"] == 0 and len(out["Entries"]) == 10, out
    ids += [e["EventId"] for e in out["Entries"]]
    assert all(UUID_RE.match(i) for i in ids) and len(set(ids)) == 11
    assert sink.wait_for(11, DELIVER), "%d of 11 delivered" % sink.count()
    assert sorted(sink.event_ids()) == sorted(ids)
    bodies = {b["id"]: b for b in sink.json_bodies()}
    assert bodies[ids[0]]["detail"] == {"id": 1, "name": "Zo\u00eb \U0001F680"}
    assert bodies[ids[1]]["time"] == "2024-05-06T07:08:09Z"


def test_cli_put_events_errors(server, sink, cli_home):
    server.start(orders_conf(sink))
    eleven = [entry("com.acme.orders", "E", {"i": i}) for i in range(11)]
    text = cli_error(server, cli_home, "ValidationException", "PutEvents", "put-events",
                     "--entries", write_json(server, "11.json", eleven))
    assert text.startswith("1 validation error detected: Value '["), text
    assert "Member must have length less than or equal to 10" in text
    bad = [entry("com.acme.orders", "E", {"ok": 1}),
           dict(entry("com.acme.orders", "E"), Detail="[]"),
           {"Source": "com.acme.orders", "Detail": "{}"}]
    out = cli_ok(server, cli_home, "put-events", "--entries", write_json(server, "bad.json", bad))
    assert out["FailedEntryCount"] == 2, out
    assert UUID_RE.match(out["Entries"][0]["EventId"])
    assert out["Entries"][1] == {"ErrorCode": "MalformedDetail",
                                 "ErrorMessage": "Detail is malformed."}
    assert out["Entries"][2] == {
        "ErrorCode": "InvalidArgument",
        "ErrorMessage": "Parameter DetailType is not valid. Reason: DetailType is a required "
                        "argument."}
    assert sink.wait_for(1, DELIVER)
    time.sleep(SETTLE)
    assert sink.event_ids() == [out["Entries"][0]["EventId"]]


def test_cli_test_event_pattern(server, sink, cli_home):
    server.start(orders_conf(sink))
    event = {"id": "1", "account": ACCOUNT, "source": "com.acme.orders", "time":
             "2024-05-06T07:08:09Z", "region": REGION, "detail-type": "OrderCreated",
             "resources": [], "detail": {"total": 120}}
    pattern = {"source": ["com.acme.orders"], "detail": {"total": [{"numeric": [">", 100]}]}}
    out = cli_ok(server, cli_home, "test-event-pattern", "--event", json.dumps(event),
                 "--event-pattern", json.dumps(pattern))
    assert out == {"Result": True}
    out = cli_ok(server, cli_home, "test-event-pattern",
                 "--event", write_json(server, "ev.json", dict(event, detail={"total": 5})),
                 "--event-pattern", write_json(server, "pat.json", pattern))
    assert out == {"Result": False}
    text = cli_error(server, cli_home, "InvalidEventPatternException", "TestEventPattern",
                     "test-event-pattern", "--event", json.dumps(event),
                     "--event-pattern", '{"source": "com.acme.orders"}')
    assert text == 'Event pattern is not valid. Reason: "source" must be an object or an array'
    text = cli_error(server, cli_home, "ValidationException", "TestEventPattern",
                     "test-event-pattern", "--event", '{"source": "x"}',
                     "--event-pattern", json.dumps(pattern))
    assert text == "Parameter Event is not valid."


@pytest.fixture
def api(server, sink):
    server.start(api_conf(server, sink))
    return server


def test_cli_read_only_operations(api, sink, cli_home):
    out = cli_ok(api, cli_home, "list-rules")
    assert [r["Name"] for r in out["Rules"]] == ["page-1", "page-2", "page-3", "page-4",
                                                 "page-5", "r-nightly", "r-orders"]
    # --page-size makes the CLI follow NextToken page by page and merge the pages
    out = cli_ok(api, cli_home, "list-rules", "--page-size", "2")
    assert [r["Name"] for r in out["Rules"]][-2:] == ["r-nightly", "r-orders"]
    assert len(out["Rules"]) == 7 and "NextToken" not in out
    out = cli_ok(api, cli_home, "list-rules", "--event-bus-name", "billing")
    assert [(r["Name"], r["State"]) for r in out["Rules"]] == [("r-billing", "DISABLED")]
    out = cli_ok(api, cli_home, "describe-rule", "--name", "r-orders")
    assert out["Arn"] == "arn:aws:events:%s:%s:rule/r-orders" % (REGION, ACCOUNT)
    out = cli_ok(api, cli_home, "list-targets-by-rule", "--rule", "r-orders")
    assert [t["Id"] for t in out["Targets"]] == ["t1", "t2"]
    assert out["Targets"][0]["RetryPolicy"] == {"MaximumRetryAttempts": 10,
                                                "MaximumEventAgeInSeconds": 3600}
    out = cli_ok(api, cli_home, "list-event-buses")
    assert [b["Name"] for b in out["EventBuses"]] == ["billing", "default"]

    rc, out, err = cli(api, cli_home, "describe-api-destination", "--name", "d-billing")
    assert rc == 0, err
    for s in SECRETS.values():
        assert s not in out and s not in err
    d = json.loads(out)
    assert d["Name"] == "d-billing" and d["ApiDestinationState"] == "ACTIVE"
    assert d["InvocationEndpoint"] == sink.url("/billing/*/invoices")
    assert d["ConnectionArn"] == "arn:aws:events:%s:%s:connection/c-basic" % (REGION, ACCOUNT)
    # v2 prints epoch-second timestamps as ISO 8601 (aws-clients.md 2)
    assert d["CreationTime"].endswith("+00:00") and d["CreationTime"][:2] == "20", d
    rc, out, err = cli(api, cli_home, "describe-connection", "--name", "c-basic")
    assert rc == 0, err
    for s in SECRETS.values():
        assert s not in out and s not in err
    c = json.loads(out)
    assert c["AuthParameters"]["BasicAuthParameters"] == {"Username": "alice"}
    out = cli_ok(api, cli_home, "list-connections")
    assert [c["Name"] for c in out["Connections"]] == ["c-basic", "c-key"]
    out = cli_ok(api, cli_home, "list-api-destinations")
    assert [d["Name"] for d in out["ApiDestinations"]] == ["d-audit", "d-billing"]
    text = cli_error(api, cli_home, "ResourceNotFoundException", "DescribeApiDestination",
                     "describe-api-destination", "--name", "nope")
    assert text == ("Failed to describe the api-destination(s). An api-destination 'nope' "
                    "does not exist.")
    text = cli_error(api, cli_home, "ResourceNotFoundException", "DescribeRule",
                     "describe-rule", "--name", "nope")
    assert text == "Rule nope does not exist on EventBus default."


def test_cli_mutating_refused(api, cli_home):
    text = cli_error(api, cli_home, "UnsupportedOperation", "PutRule", "put-rule",
                     "--name", "x", "--event-pattern", '{"source":["a"]}')
    assert "httpd.conf" in text
    cli_error(api, cli_home, "UnsupportedOperation", "DeleteRule", "delete-rule",
              "--name", "r-orders")
    out = cli_ok(api, cli_home, "describe-rule", "--name", "r-orders")
    assert out["State"] == "ENABLED"


# ---- the JavaScript SDK -----------------------------------------------------------------

@pytest.fixture(scope="module")
def node():
    exe = shutil.which("node") or shutil.which("nodejs")
    npm = shutil.which("npm")
    if not exe or not npm:
        pytest.fail("node and npm are required (apt-get install -y nodejs npm)")
    pkg = os.path.join(JS_DIR, "node_modules", "@aws-sdk", "client-eventbridge", "package.json")
    if not os.path.exists(pkg):
        lock = os.path.exists(os.path.join(JS_DIR, "package-lock.json"))
        p = subprocess.run([npm, "ci" if lock else "install", "--no-audit", "--no-fund"],
                           cwd=JS_DIR, capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, "npm install in %s failed:\n%s%s" % (JS_DIR, p.stdout,
                                                                        p.stderr)
    with open(pkg) as f:
        assert json.load(f)["version"] == SDK_VERSION
    return exe


def js(server, node, operation, payload=None):
    """Run t/js/putevents.mjs; (ok output or None, error or None)."""
    p = subprocess.run([node, os.path.join(JS_DIR, "putevents.mjs"),
                        "http://127.0.0.1:%d/events" % server.port, operation,
                        json.dumps(payload if payload is not None else {})],
                       cwd=JS_DIR, capture_output=True, text=True, timeout=120,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": JS_DIR,
                            "AWS_REGION": "us-east-1"})
    assert p.stdout.strip(), "no output from node (rc %d): %s" % (p.returncode, p.stderr)
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert (p.returncode == 0) == ("ok" in res), (p.returncode, res, p.stderr)
    return res.get("ok"), res.get("error")


def js_ok(server, node, operation, payload=None):
    out, err = js(server, node, operation, payload)
    assert err is None, "%s failed: %r" % (operation, err)
    return out


def js_error(server, node, name, operation, payload=None):
    out, err = js(server, node, operation, payload)
    assert err is not None, "%s succeeded: %r" % (operation, out)
    assert err["name"] == name and err["status"] == 400 and err["fault"] == "client", err
    return err["message"]


def test_js_put_events(server, sink, node):
    server.start(orders_conf(sink))
    out = js_ok(server, node, "PutEvents", {"Entries": [
        dict(entry("com.acme.orders", "OrderCreated", {"n": "\u6771\u4eac"}),
             Time="2024-05-06T07:08:09.123Z")]})
    assert out["FailedEntryCount"] == 0 and len(out["Entries"]) == 1
    ids = [out["Entries"][0]["EventId"]]
    out = js_ok(server, node, "PutEvents", {"Entries": [
        entry("com.acme.orders", "OrderCreated", {"i": i}) for i in range(10)]})
    assert out["FailedEntryCount"] == 0
    ids += [e["EventId"] for e in out["Entries"]]
    assert len(set(ids)) == 11 and all(UUID_RE.match(i) for i in ids)
    assert sink.wait_for(11, DELIVER), "%d of 11 delivered" % sink.count()
    assert sorted(sink.event_ids()) == sorted(ids)
    first = [b for b in sink.json_bodies() if b["id"] == ids[0]][0]
    assert first["time"] == "2024-05-06T07:08:09Z" and first["detail"] == {"n": "\u6771\u4eac"}

    msg = js_error(server, node, "ValidationException", "PutEvents", {"Entries": [
        entry("com.acme.orders", "E", {"i": i}) for i in range(11)]})
    assert msg.startswith("1 validation error detected: Value '["), msg
    # the SDK sends an empty list as is (aws-clients.md 1)
    js_error(server, node, "ValidationException", "PutEvents", {"Entries": []})
    out = js_ok(server, node, "PutEvents", {"Entries": [
        dict(entry("com.acme.orders", "E"), Detail="NotJSON"), {}]})
    assert out["FailedEntryCount"] == 2
    assert out["Entries"][0] == {"ErrorCode": "MalformedDetail",
                                 "ErrorMessage": "Detail is malformed."}
    assert out["Entries"][1]["ErrorCode"] == "InvalidArgument"


def test_js_other_operations(api, node):
    event = {"id": "1", "account": ACCOUNT, "source": "com.acme.orders", "time":
             "2024-05-06T07:08:09Z", "region": REGION, "detail-type": "D", "detail": {}}
    out = js_ok(api, node, "TestEventPattern", {
        "Event": json.dumps(event), "EventPattern": '{"source":["com.acme.orders"]}'})
    assert out == {"Result": True}
    msg = js_error(api, node, "InvalidEventPatternException", "TestEventPattern", {
        "Event": json.dumps(event), "EventPattern": '{"source":[]}'})
    assert msg == "Event pattern is not valid. Reason: Empty arrays are not allowed"
    out = js_ok(api, node, "DescribeApiDestination", {"Name": "d-billing"})
    # the SDK parsed the epoch-seconds timestamps into Dates
    assert set(out["CreationTime"]) == {"$date"} and set(out["LastModifiedTime"]) == {"$date"}
    assert out["InvocationRateLimitPerSecond"] == 50
    assert not any(s in json.dumps(out) for s in SECRETS.values())
    out = js_ok(api, node, "DescribeConnection", {"Name": "c-key"})
    assert out["AuthParameters"] == {"ApiKeyAuthParameters": {"ApiKeyName": "X-Api-Key"}}
    assert not any(s in json.dumps(out) for s in SECRETS.values())
    out = js_ok(api, node, "ListRules", {"NamePrefix": "page-", "Limit": 3})
    assert [r["Name"] for r in out["Rules"]] == ["page-1", "page-2", "page-3"]
    out = js_ok(api, node, "ListRules", {"NamePrefix": "page-", "Limit": 3,
                                         "NextToken": out["NextToken"]})
    assert [r["Name"] for r in out["Rules"]] == ["page-4", "page-5"] and "NextToken" not in out
    out = js_ok(api, node, "ListTargetsByRule", {"Rule": "r-orders"})
    assert out["Targets"][0]["HttpParameters"]["PathParameterValues"] == ["$.detail.tenant"]
    msg = js_error(api, node, "ResourceNotFoundException", "DescribeRule", {"Name": "nope"})
    assert msg == "Rule nope does not exist on EventBus default."
    js_error(api, node, "UnsupportedOperation", "PutRule", {"Name": "x"})
    js_error(api, node, "ValidationException", "ListRules", {"Limit": 0})
