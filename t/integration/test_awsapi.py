"""The AWS JSON 1.1 API on /events besides PutEvents (DESIGN 3): every
conformance case through TestEventPattern over HTTP, the read-only
List/Describe operations on a real configuration, AWS's error shapes
(status, x-amzn-ErrorType, {"__type", "message"}), refusals of mutating
operations, and PutEvents' edge cases as AWS reports them
(eventbridge-semantics 1)."""

import http.client
import json
import os
import time

import pytest

from harness import assert_aws_error, assert_put_ok, destination, entry, rule, UUID_RE

CONFORMANCE_DIR = os.environ.get("AD_CONFORMANCE_DIR", "")
AMZ = "application/x-amz-json-1.1"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
SECRETS = {"password": "pw-s3cr3t-awsapi", "token": "tok-s3cr3t-awsapi",
           "apikey": "key-s3cr3t-awsapi"}
DELIVER = 10.0
SETTLE = 1.5


def aws(server, op, body=None, path="/events", raw=None):
    """POST an AWS JSON 1.1 call; returns (status, headers, parsed body)."""
    data = raw if raw is not None else json.dumps(body if body is not None else {})
    return server.put_events(body=data, content_type="amz", target="AWSEvents." + op,
                             path=path)


def assert_ok(status, hdrs, resp):
    assert status == 200, "expected 200, got %s: %r" % (status, resp)
    assert hdrs.get("content-type") == AMZ, hdrs
    assert "x-amzn-errortype" not in hdrs, hdrs
    assert isinstance(resp, dict), resp
    return resp


def assert_error(status, hdrs, resp, code, message=None, prefix=None, http=400):
    assert_aws_error(status, hdrs, resp, http, code)
    assert hdrs.get("content-type") == AMZ, hdrs
    if message is not None:
        assert resp["message"] == message, resp["message"]
    if prefix is not None:
        assert resp["message"].startswith(prefix), resp["message"]
    return resp


# ---- configuration -------------------------------------------------------------

def _conn(name, body):
    return "\n<ApiDestConnection %s>\n%s\n</ApiDestConnection>\n" % (name, body)


def api_conf(server, sink):
    """Connections (one secret from a file, one from the environment), two
    destinations, rules on two buses with targets using every option."""
    secret_file = os.path.join(server.root, "token.secret")
    with open(secret_file, "w") as f:
        f.write(SECRETS["token"] + "\n")
    os.chmod(secret_file, 0o644)
    key_file = os.path.join(server.root, "key.secret")
    with open(key_file, "w") as f:
        f.write(SECRETS["apikey"] + "\n")
    os.chmod(key_file, 0o644)
    # Left set: `httpd -k stop` parses the configuration again.
    os.environ["APIDEST_AWSAPI_PW"] = SECRETS["password"]
    return ("ApiDestAccount %s\nApiDestRegion %s\nApiDestRetryBackoff 1 2\n" % (ACCOUNT, REGION)
            + _conn("c-basic", "AuthorizationType BASIC\nBasic alice env:APIDEST_AWSAPI_PW\n"
                    "InvocationParameter header X-Tenant acme\n"
                    "InvocationParameter header X-Token file:%s\n"
                    "InvocationParameter query tenant acme\n"
                    "AllowInsecureHttp on" % secret_file)
            + _conn("c-key", "AuthorizationType API_KEY\nApiKey X-Api-Key file:%s\n"
                    "AllowInsecureHttp on" % key_file)
            + destination("d-billing", sink.url("/billing/*/invoices"),
                          extra="    Connection c-basic\n    InvocationRateLimit 50\n")
            + destination("d-audit", sink.url("/audit"), method="PUT")
            + """
<ApiDestRule r-orders>
    EventPattern '{"source":["com.acme.orders"]}'
    <ApiDestTarget t1>
        Destination d-billing
        PathParameter $.detail.tenant
        Header X-Invoice $.detail.id
        QueryParameter source $.source
        InputTransformer '{"id": <id>}'
        InputPathsMap id $.detail.id
        RetryAttempts 10
        MaximumEventAge 3600
    </ApiDestTarget>
    <ApiDestTarget t2>
        Destination d-audit
        InputPath $.detail
    </ApiDestTarget>
</ApiDestRule>
<ApiDestRule r-nightly>
    ScheduleExpression "rate(1 day)"
    <ApiDestTarget audit>
        Destination d-audit
        Input '{"fixed":true}'
    </ApiDestTarget>
</ApiDestRule>
"""
            + rule("r-billing", {"source": ["com.acme.billing"]}, [], state="DISABLED",
                   bus="billing", extra="    <ApiDestTarget t1>\n        Destination d-billing\n"
                   "        PathParameter acme\n    </ApiDestTarget>\n")
            + "".join(rule("page-%d" % i, {"source": ["p%d" % i]}, [("t1", "d-audit")])
                      for i in range(1, 6)))


@pytest.fixture
def api(server, sink):
    server.start(api_conf(server, sink))
    return server


def assert_no_secret(*texts):
    for t in texts:
        t = t if isinstance(t, str) else json.dumps(t)
        for s in SECRETS.values():
            assert s not in t, "secret %r in %s" % (s, t[:500])


# ---- TestEventPattern: the conformance data over HTTP ----------------------------

REQUIRED = ["id", "account", "source", "time", "region", "detail-type"]
FILLER = "apidest.conformance.filler"
MINIMAL_EVENT = {"id": "1", "account": ACCOUNT, "source": FILLER,
                 "time": "2022-07-13T13:48:01Z", "region": "us-east-1",
                 "detail-type": FILLER, "resources": []}


def _only_exact(pattern, key):
    """The pattern names top-level `key` not at all or only with exact
    values, so giving the event key=FILLER cannot change the outcome."""
    for k, v in pattern.items():
        if k == "$or" and isinstance(v, list):
            if not all(isinstance(p, dict) and _only_exact(p, key) for p in v):
                return False
        elif k == key or k.startswith(key + "."):
            if not (isinstance(v, list) and v and all(
                    isinstance(x, (str, int, float)) and not isinstance(x, bool)
                    and x != FILLER for x in v)):
                return False
    return True


def tep_event(case):
    """The Event to send. Cases recorded by event-ruler (not TestEventPattern)
    may lack envelope fields TestEventPattern requires: they get a filler
    value, only where that provably changes nothing."""
    text = case["event_json"]
    if text is None:
        return json.dumps(MINIMAL_EVENT)    # the case is about the pattern alone
    if not isinstance(case["expect"], bool):
        return text
    try:
        ev = json.loads(text)
    except ValueError:
        return text
    if not isinstance(ev, dict) or all(k in ev for k in REQUIRED):
        return text
    pattern = json.loads(case["pattern_json"])
    for k in REQUIRED:
        if k not in ev:
            assert _only_exact(pattern, k), "%s: cannot complete %r safely" % (case["name"], k)
            ev[k] = FILLER
    return json.dumps(ev)


def load_cases():
    if not CONFORMANCE_DIR:
        pytest.fail("AD_CONFORMANCE_DIR is not set (it names ../shared/conformance; "
                    "make check sets it)")
    path = os.path.join(CONFORMANCE_DIR, "patterns.jsonl")
    with open(path, encoding="utf-8") as f:
        cases = [json.loads(l) for l in f if l.strip()]
    assert cases, "%s has no cases" % path
    return cases


def check_case(server, case):
    """None when the case passes, else what went wrong."""
    expect = case["expect"]
    status, hdrs, resp = aws(server, "TestEventPattern", {
        "EventPattern": case["pattern_json"], "Event": tep_event(case)})
    if isinstance(expect, bool):
        if status != 200 or resp != {"Result": expect}:
            return "want Result %s, got %s %r" % (expect, status, resp)
        return None
    err = case.get("error") or {}
    code = err.get("code") or ("InvalidEventPatternException" if expect == "invalid"
                               else "ValidationException")
    if status != 400 or not isinstance(resp, dict) or resp.get("__type") != code \
            or hdrs.get("x-amzn-errortype") != code:
        return "want 400 %s, got %s %s %r" % (code, status, hdrs.get("x-amzn-errortype"), resp)
    if err.get("message") and resp.get("message") != err["message"]:
        return "message\n    got:  %r\n    want: %r" % (resp.get("message"), err["message"])
    return None


def test_conformance_cases_via_test_event_pattern(server, sink):
    server.start(destination("d", sink.url("/x")))
    cases = load_cases()
    failures = []
    for case in cases:
        why = check_case(server, case)
        if why:
            failures.append("%s: %s" % (case["name"], why))
    kinds = {k: sum(1 for c in cases if json.dumps(c["expect"]) == k)
             for k in ("true", "false", '"invalid"', '"invalid_event"')}
    print("TestEventPattern over HTTP: %d cases %r, %d failed" % (len(cases), kinds,
                                                                 len(failures)))
    assert not failures, "%d of %d cases failed:\n%s" % (len(failures), len(cases),
                                                        "\n".join(failures))


def test_test_event_pattern_details(server, sink):
    server.start(destination("d", sink.url("/x")))
    ev = dict(MINIMAL_EVENT, source="com.acme", detail={"n": 5})
    # CLI file:// input keeps a trailing newline (aws-clients.md 1)
    resp = assert_ok(*aws(server, "TestEventPattern", {
        "EventPattern": '{"detail":{"n":[{"numeric":[">=",5]}]}}\n',
        "Event": json.dumps(ev) + "\n"}))
    assert resp == {"Result": True}
    assert_error(*aws(server, "TestEventPattern", {"EventPattern": '{"source":"x"}',
                                                   "Event": json.dumps(ev)}),
                 "InvalidEventPatternException",
                 'Event pattern is not valid. Reason: "source" must be an object or an array')
    assert_error(*aws(server, "TestEventPattern", {"EventPattern": '{}', "Event": '{"id":"1"}'}),
                 "ValidationException", "Parameter Event is not valid.")
    assert_error(*aws(server, "TestEventPattern", {}), "ValidationException",
                 "2 validation errors detected: Value null at 'eventPattern' failed to satisfy "
                 "constraint: Member must not be null; Value null at 'event' failed to satisfy "
                 "constraint: Member must not be null")
    assert_error(*aws(server, "TestEventPattern", {"EventPattern": {"source": ["x"]},
                                                   "Event": json.dumps(ev)}),
                 "SerializationException", "Start of structure or map found where not expected.")
    long = '{"source":["%s"]}' % ("x" * 4100)
    assert_error(*aws(server, "TestEventPattern", {"EventPattern": long, "Event": json.dumps(ev)}),
                 "ValidationException", prefix="1 validation error detected: Value '")


# ---- read-only operations ----------------------------------------------------------

def test_list_event_buses_and_describe(api):
    resp = assert_ok(*aws(api, "ListEventBuses"))
    assert resp == {"EventBuses": [
        {"Name": "billing", "Arn": "arn:aws:events:%s:%s:event-bus/billing" % (REGION, ACCOUNT)},
        {"Name": "default", "Arn": "arn:aws:events:%s:%s:event-bus/default" % (REGION, ACCOUNT)}]}
    resp = assert_ok(*aws(api, "DescribeEventBus", {"Name": "billing"}))
    assert resp["Name"] == "billing"
    assert_error(*aws(api, "DescribeEventBus", {"Name": "nope"}), "ResourceNotFoundException",
                 "Event bus nope does not exist.")


def test_list_rules_and_pages(api):
    resp = assert_ok(*aws(api, "ListRules"))
    assert [r["Name"] for r in resp["Rules"]] == ["page-1", "page-2", "page-3", "page-4",
                                                  "page-5", "r-nightly", "r-orders"]
    assert "NextToken" not in resp
    orders = resp["Rules"][-1]
    assert orders == {"Name": "r-orders",
                      "Arn": "arn:aws:events:%s:%s:rule/r-orders" % (REGION, ACCOUNT),
                      "EventPattern": '{"source":["com.acme.orders"]}',
                      "State": "ENABLED", "EventBusName": "default"}
    nightly = resp["Rules"][-2]
    assert nightly["ScheduleExpression"] == "rate(1 day)" and "EventPattern" not in nightly
    resp = assert_ok(*aws(api, "ListRules", {"EventBusName": "billing"}))
    assert resp["Rules"] == [{
        "Name": "r-billing", "Arn": "arn:aws:events:%s:%s:rule/billing/r-billing" % (REGION, ACCOUNT),
        "EventPattern": '{"source": ["com.acme.billing"]}', "State": "DISABLED",
        "EventBusName": "billing"}]
    names, token, tokens = [], None, []
    while True:
        body = {"NamePrefix": "page-", "Limit": 2}
        if token:
            body["NextToken"] = token
        resp = assert_ok(*aws(api, "ListRules", body))
        names += [r["Name"] for r in resp["Rules"]]
        token = resp.get("NextToken")
        if not token:
            break
        assert token not in tokens
        tokens.append(token)
    assert names == ["page-%d" % i for i in range(1, 6)] and len(tokens) == 2
    assert_error(*aws(api, "ListRules", {"EventBusName": "nope"}), "ResourceNotFoundException",
                 "Event bus nope does not exist.")
    assert_error(*aws(api, "ListRules", {"Limit": 0}), "ValidationException",
                 "1 validation error detected: Value '0' at 'limit' failed to satisfy "
                 "constraint: Member must have value greater than or equal to 1")
    assert_error(*aws(api, "ListRules", {"Limit": "5"}), "SerializationException")


def test_describe_rule(api):
    resp = assert_ok(*aws(api, "DescribeRule", {"Name": "r-orders"}))
    assert resp["CreatedBy"] == ACCOUNT and resp["EventBusName"] == "default"
    resp = assert_ok(*aws(api, "DescribeRule", {"Name": "r-billing", "EventBusName": (
        "arn:aws:events:%s:%s:event-bus/billing" % (REGION, ACCOUNT))}))
    assert resp["State"] == "DISABLED"
    assert_error(*aws(api, "DescribeRule", {"Name": "nope"}), "ResourceNotFoundException",
                 "Rule nope does not exist on EventBus default.")
    assert_error(*aws(api, "DescribeRule", {"Name": "r-billing"}), "ResourceNotFoundException",
                 "Rule r-billing does not exist on EventBus default.")
    assert_error(*aws(api, "DescribeRule", {}), "ValidationException",
                 "1 validation error detected: Value null at 'name' failed to satisfy "
                 "constraint: Member must not be null")


def test_list_targets_by_rule(api):
    resp = assert_ok(*aws(api, "ListTargetsByRule", {"Rule": "r-orders"}))
    t1, t2 = resp["Targets"]
    assert t1 == {
        "Id": "t1", "Arn": "arn:aws:events:%s:%s:api-destination/d-billing" % (REGION, ACCOUNT),
        "InputTransformer": {"InputPathsMap": {"id": "$.detail.id"},
                             "InputTemplate": '{"id": <id>}'},
        "HttpParameters": {"PathParameterValues": ["$.detail.tenant"],
                           "HeaderParameters": {"X-Invoice": "$.detail.id"},
                           "QueryStringParameters": {"source": "$.source"}},
        "RetryPolicy": {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 3600}}
    assert t2 == {"Id": "t2",
                  "Arn": "arn:aws:events:%s:%s:api-destination/d-audit" % (REGION, ACCOUNT),
                  "InputPath": "$.detail",
                  "RetryPolicy": {"MaximumRetryAttempts": 185,
                                  "MaximumEventAgeInSeconds": 86400}}
    resp = assert_ok(*aws(api, "ListTargetsByRule", {"Rule": "r-nightly"}))
    assert resp["Targets"][0]["Input"] == '{"fixed":true}'
    resp = assert_ok(*aws(api, "ListTargetsByRule", {"Rule": "r-orders", "Limit": 1}))
    assert [t["Id"] for t in resp["Targets"]] == ["t1"] and resp["NextToken"]
    assert_error(*aws(api, "ListTargetsByRule", {"Rule": "nope"}), "ResourceNotFoundException",
                 "Rule nope does not exist on EventBus default.")


def test_list_rule_names_by_target(api):
    arn = "arn:aws:events:%s:%s:api-destination/d-audit" % (REGION, ACCOUNT)
    resp = assert_ok(*aws(api, "ListRuleNamesByTarget", {"TargetArn": arn}))
    assert resp == {"RuleNames": ["page-1", "page-2", "page-3", "page-4", "page-5",
                                  "r-nightly", "r-orders"]}
    resp = assert_ok(*aws(api, "ListRuleNamesByTarget", {"TargetArn": arn, "Limit": 5}))
    assert len(resp["RuleNames"]) == 5 and resp["NextToken"]
    resp = assert_ok(*aws(api, "ListRuleNamesByTarget", {
        "TargetArn": "arn:aws:events:%s:%s:api-destination/d-billing" % (REGION, ACCOUNT),
        "EventBusName": "billing"}))
    assert resp == {"RuleNames": ["r-billing"]}


def test_connections_without_secrets(api):
    status, hdrs, resp = aws(api, "ListConnections")
    assert_ok(status, hdrs, resp)
    assert_no_secret(api.last_raw.decode())
    assert [(c["Name"], c["AuthorizationType"], c["ConnectionState"]) for c in resp["Connections"]] \
        == [("c-basic", "BASIC", "AUTHORIZED"), ("c-key", "API_KEY", "AUTHORIZED")]
    c = resp["Connections"][0]
    assert c["ConnectionArn"] == "arn:aws:events:%s:%s:connection/c-basic" % (REGION, ACCOUNT)
    mtime = int(os.stat(api.conf_path).st_mtime)
    assert c["CreationTime"] == mtime and c["LastModifiedTime"] == mtime
    status, hdrs, resp = aws(api, "DescribeConnection", {"Name": "c-basic"})
    assert_ok(status, hdrs, resp)
    assert_no_secret(api.last_raw.decode())
    assert resp["AuthParameters"] == {
        "BasicAuthParameters": {"Username": "alice"},
        "InvocationHttpParameters": {
            "HeaderParameters": [{"Key": "X-Tenant", "Value": "acme", "IsValueSecret": False},
                                 {"Key": "X-Token", "IsValueSecret": True}],
            "QueryStringParameters": [{"Key": "tenant", "Value": "acme",
                                       "IsValueSecret": False}]}}
    status, hdrs, resp = aws(api, "DescribeConnection", {"Name": "c-key"})
    assert_ok(status, hdrs, resp)
    assert_no_secret(api.last_raw.decode())
    assert resp["AuthParameters"] == {"ApiKeyAuthParameters": {"ApiKeyName": "X-Api-Key"}}
    assert_error(*aws(api, "DescribeConnection", {"Name": "nope"}), "ResourceNotFoundException",
                 "Failed to describe the connection(s). Connection 'nope' does not exist.")
    resp = assert_ok(*aws(api, "ListConnections", {"ConnectionState": "DEAUTHORIZED"}))
    assert resp == {"Connections": []}


def test_api_destinations(api, sink):
    mtime = int(os.stat(api.conf_path).st_mtime)
    resp = assert_ok(*aws(api, "ListApiDestinations"))
    assert [d["Name"] for d in resp["ApiDestinations"]] == ["d-audit", "d-billing"]
    resp = assert_ok(*aws(api, "DescribeApiDestination", {"Name": "d-billing"}))
    assert resp == {
        "ApiDestinationArn": "arn:aws:events:%s:%s:api-destination/d-billing" % (REGION, ACCOUNT),
        "Name": "d-billing", "ApiDestinationState": "ACTIVE",
        "ConnectionArn": "arn:aws:events:%s:%s:connection/c-basic" % (REGION, ACCOUNT),
        "InvocationEndpoint": sink.url("/billing/*/invoices"), "HttpMethod": "POST",
        "InvocationRateLimitPerSecond": 50, "CreationTime": mtime, "LastModifiedTime": mtime}
    resp = assert_ok(*aws(api, "DescribeApiDestination", {"Name": "d-audit"}))
    assert "ConnectionArn" not in resp and resp["HttpMethod"] == "PUT"
    assert resp["InvocationRateLimitPerSecond"] == 300
    resp = assert_ok(*aws(api, "ListApiDestinations", {
        "ConnectionArn": "arn:aws:events:%s:%s:connection/c-basic" % (REGION, ACCOUNT)}))
    assert [d["Name"] for d in resp["ApiDestinations"]] == ["d-billing"]
    assert_error(*aws(api, "DescribeApiDestination", {"Name": "nope"}),
                 "ResourceNotFoundException", "Failed to describe the api-destination(s). "
                 "An api-destination 'nope' does not exist.")


# ---- protocol ----------------------------------------------------------------------

def test_headers_and_trailing_slash(api):
    """x-amzn-RequestId on every answer; /events/ (what the JS SDK sends for
    an endpoint of /events) works as /events."""
    status, hdrs, resp = aws(api, "ListRules", {"NamePrefix": "r-o"}, path="/events/")
    assert_ok(status, hdrs, resp)
    assert [r["Name"] for r in resp["Rules"]] == ["r-orders"]
    assert UUID_RE.match(hdrs.get("x-amzn-requestid", "")), hdrs
    status, hdrs, resp = aws(api, "DescribeRule", {"Name": "nope"})
    assert UUID_RE.match(hdrs.get("x-amzn-requestid", "")), hdrs
    # an empty body is an empty request
    assert_ok(*aws(api, "ListEventBuses", raw=""))
    assert_error(*aws(api, "ListRules", raw="{not json"), "SerializationException")


def test_mutating_operations_refused(api, sink):
    for op, body in (("PutRule", {"Name": "x", "EventPattern": '{"source":["a"]}'}),
                     ("PutTargets", {"Rule": "r-orders", "Targets": [{"Id": "x", "Arn": "a"}]}),
                     ("DeleteRule", {"Name": "r-orders"}), ("DisableRule", {"Name": "r-orders"}),
                     ("CreateConnection", {"Name": "c"}), ("DeleteApiDestination", {"Name": "d"}),
                     ("CreateApiDestination", {"Name": "d"}), ("RemoveTargets", {})):
        resp = assert_error(*aws(api, op, body), "UnsupportedOperation")
        assert resp["message"].startswith(op + " is not supported") and "httpd.conf" in resp["message"]
    # nothing changed
    resp = assert_ok(*aws(api, "DescribeRule", {"Name": "r-orders"}))
    assert resp["State"] == "ENABLED"


def test_unknown_operations(api):
    resp = assert_error(*aws(api, "Frobnicate"), "UnknownOperationException")
    assert "AWSEvents.Frobnicate" in resp["message"]
    status, hdrs, resp = api.put_events(body="{}", target="Other_20200101.ListRules")
    assert_error(status, hdrs, resp, "UnknownOperationException")


# ---- PutEvents as AWS reports it ------------------------------------------------------

def test_put_events_eleven_entries(api, sink):
    entries = [entry("com.acme.orders", "E", {"i": i, "id": i, "tenant": "t"}) for i in range(11)]
    assert_error(*api.put_events(entries), "ValidationException",
                 prefix="1 validation error detected: Value '[")
    assert "at 'entries' failed to satisfy constraint: Member must have length less than or " \
           "equal to 10" in api.last_raw.decode()
    assert_error(*api.put_events([]), "ValidationException",
                 prefix="1 validation error detected: ")
    time.sleep(SETTLE)
    assert sink.count() == 0
    assert_put_ok(*api.put_events(entries[:10]), 10)


def test_put_events_per_entry_errors(api, sink):
    good = entry("com.acme.orders", "OrderCreated", {"id": "i-1", "tenant": "acme"})
    bad = [
        (dict(good, Detail="NotJSON"), "MalformedDetail", "Detail is malformed."),
        (dict(good, Detail="[]"), "MalformedDetail", "Detail is malformed."),
        (dict(good, Detail="{{}"), "MalformedDetail", "Detail is malformed."),
        (dict(good, Detail='"NotJSON"'), "MalformedDetail", "Detail is malformed."),
        ({"DetailType": "X", "Detail": "{}"}, "InvalidArgument",
         "Parameter Source is not valid. Reason: Source is a required argument."),
        ({"Source": "com.acme.orders", "Detail": "{}"}, "InvalidArgument",
         "Parameter DetailType is not valid. Reason: DetailType is a required argument."),
        ({"Source": "com.acme.orders", "DetailType": "", "Detail": "{}"}, "InvalidArgument",
         "Parameter DetailType is not valid. Reason: DetailType is a required argument."),
        ({"Source": "com.acme.orders", "DetailType": "X"}, "InvalidArgument",
         "Parameter Detail is not valid. Reason: Detail is a required argument."),
        # 128 characters at most, counted as the model counts (UTF-16 units)
        (dict(good, DetailType="d" * 129), "InvalidArgument",
         "Parameter DetailType is not valid. Reason: DetailType is longer than 128 characters."),
        (dict(good, DetailType="\U0001F600" * 64 + "d"), "InvalidArgument",
         "Parameter DetailType is not valid. Reason: DetailType is longer than 128 characters."),
        # the last second of year 9999, its fraction dropped, is a valid Time
        # (and one past it is not)
        (dict(good, Time=253402300800), "InvalidArgument",
         "Parameter Time is not valid. Reason: Time must be epoch seconds or an RFC 3339 "
         "timestamp."),
    ]
    for e, code, message in bad:
        status, hdrs, resp = api.put_events([good, e, good])
        assert status == 200, (status, resp)
        assert resp["FailedEntryCount"] == 1, resp
        first, failed, last = resp["Entries"]
        assert UUID_RE.match(first["EventId"]) and UUID_RE.match(last["EventId"])
        assert failed == {"ErrorCode": code, "ErrorMessage": message}, (e, failed)
    status, hdrs, resp = api.put_events([dict(good, DetailType="\u00e9" * 128),
                                         dict(good, Time=253402300799.9)])
    assert status == 200 and resp["FailedEntryCount"] == 0, resp
    status, hdrs, resp = api.put_events([{}, dict(good, Detail="[]")])
    assert status == 200 and resp["FailedEntryCount"] == 2, resp
    assert [x["ErrorCode"] for x in resp["Entries"]] == ["InvalidArgument", "MalformedDetail"]
    # every good entry reached both targets of r-orders, nothing else did
    n = 2 * len(bad) * 2 + 2 * 2
    assert sink.wait_for(n, DELIVER), "%d of %d delivered" % (sink.count(), n)
    time.sleep(SETTLE)
    assert sink.count() == n


def test_admin_test_event_pattern_route(server, sink):
    server.start("")
    cases = [({"Event": {"id": "1", "account": "1", "source": "a", "time": "t",
                         "region": "r", "detail-type": "d"},
               "EventPattern": {"source": ["a"]}}, 200, {"Result": True}),
             ({"Event": json.dumps({"id": "1", "account": "1", "source": "b", "time": "t",
                                    "region": "r", "detail-type": "d"}),
               "EventPattern": json.dumps({"source": ["a"]})}, 200, {"Result": False})]
    for body, want_status, want in cases:
        status, hdrs, data = server.request("POST", "/apidest/test-event-pattern",
                                            body=json.dumps(body))
        assert status == want_status and json.loads(data) == want, data
    status, _, data = server.request("POST", "/apidest/test-event-pattern",
                                     body=json.dumps({"Event": "{}", "EventPattern": "{\"a\": 1}"}))
    assert status == 400, data
    assert server.request("GET", "/apidest/test-event-pattern")[0] == 405
    # Bodies it cannot take get its JSON error, not httpd's HTML page.
    status, _, data = server.request("POST", "/apidest/test-event-pattern",
                                     body=b"x" * (64 * 1024 + 1))
    assert status == 400 and json.loads(data)["error"] == "InvalidRequest", data
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)
    try:
        c.putrequest("POST", "/apidest/test-event-pattern")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        c.send(b"zz\r\n{}\r\n0\r\n\r\n")
        r = c.getresponse()
        status, data = r.status, r.read()
    finally:
        c.close()
    assert status == 400 and json.loads(data)["error"] == "InvalidRequest", data
