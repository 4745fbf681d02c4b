"""Optional SigV4 verification (ApiDestSigV4Key) with the real AWS CLI v2:
the right secret is accepted, a wrong secret or an unknown key is refused
with AWS's error, an unsigned request is refused, and a location without
keys keeps accepting unsigned requests. Then what the CLI cannot send: an
absolute-form request target, a refusal before the body arrives, and keys
placed where they would never apply."""

import hashlib
import hmac
import json
import os
import socket
import subprocess
import time

from harness import (assert_config_error, destination, entry, find_line, rule)

AWS = "/usr/bin/aws"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def _cli(server, akid, secret, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": secret,
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1",
                "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                "AWS_PAGER": ""})
    assert os.path.exists(AWS), "the AWS CLI v2 is required (apt-get install awscli)"
    return subprocess.run([AWS, "events", "--endpoint-url",
                           "http://127.0.0.1:%d/signed" % server.port, "--cli-read-timeout", "20"]
                          + list(args), env=env, capture_output=True, text=True, timeout=120)


def _conf(sink, secret_ref):
    return (destination("d", sink.url("/s")) + rule("r", {"source": ["s.sig"]}, [("t", "d")])
            + """
<Location /signed>
    SetHandler apidest-events
    ApiDestSigV4Key AKIDEXAMPLE %s
</Location>
""" % secret_ref)


def test_sigv4_with_the_real_cli(server, sink):
    secret_file = os.path.join(server.root, "sigv4.secret")
    with open(secret_file, "w") as f:
        f.write(SECRET + "\n")
    server.start(_conf(sink, "file:" + secret_file))
    entries = json.dumps([{"Source": "s.sig", "DetailType": "D", "Detail": "{\"ok\":1}"}])
    ok = _cli(server, "AKIDEXAMPLE", SECRET, "put-events", "--entries", entries)
    assert ok.returncode == 0, ok.stderr
    eid = json.loads(ok.stdout)["Entries"][0]["EventId"]
    assert sink.wait_for(1, 10)
    assert json.loads(sink.snapshot()[0]["body"])["id"] == eid
    bad = _cli(server, "AKIDEXAMPLE", SECRET + "x", "put-events", "--entries", entries)
    assert bad.returncode != 0 and "InvalidSignatureException" in bad.stderr, bad.stderr
    unknown = _cli(server, "AKIDOTHER", SECRET, "put-events", "--entries", entries)
    assert unknown.returncode != 0 and "UnrecognizedClientException" in unknown.stderr
    listed = _cli(server, "AKIDEXAMPLE", SECRET, "list-rules")
    assert listed.returncode == 0 and json.loads(listed.stdout)["Rules"][0]["Name"] == "r"
    assert sink.count() == 1
    # unsigned: refused on /signed, accepted on /events (no keys there)
    status, hdrs, resp = server.put_events([entry("s.sig", "D", {})], path="/signed")
    assert status == 400 and hdrs["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    status, _, resp = server.put_events([entry("s.sig", "D", {})])
    assert status == 200 and resp["FailedEntryCount"] == 0
    assert SECRET not in server.log_text()


def _sign(port, path, body, akid="AKIDEXAMPLE", secret=SECRET):
    """Headers for a PutEvents to path, signed as the AWS clients sign one
    (stdlib SigV4: sorted lowercase names, values trimmed)."""
    amz = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    headers = {"host": "127.0.0.1:%d" % port, "content-type": "application/x-amz-json-1.1",
               "x-amz-target": "AWSEvents.PutEvents", "x-amz-date": amz}
    names = sorted(headers)
    sha = lambda b: hashlib.sha256(b).hexdigest()
    creq = "\n".join(["POST", path, "", "".join("%s:%s\n" % (n, headers[n]) for n in names),
                      ";".join(names), sha(body)])
    scope = "%s/us-east-1/events/aws4_request" % amz[:8]
    key = ("AWS4" + secret).encode()
    for part in (amz[:8], "us-east-1", "events", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, sha(creq.encode())])
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                                "Signature=%s" % (akid, scope, ";".join(names), sig))
    return headers


def _raw(port, target, headers, body, timeout=30):
    """One request over a plain socket (request target as given); the
    status line and the body of the answer."""
    head = "POST %s HTTP/1.1\r\n" % target + "".join(
        "%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode() + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < int(
                [l.split(b":")[1] for l in data.split(b"\r\n\r\n")[0].split(b"\r\n")
                 if l.lower().startswith(b"content-length:")][0]):
            chunk = s.recv(65536)
            assert chunk, "connection closed early: %r" % data
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), rest


def test_absolute_form_request_target_verifies(server, sink):
    """A request target in absolute form (as sent to a proxy) is signed over
    its path: the scheme and authority are not part of the canonical URI."""
    server.start(_conf(sink, SECRET))
    headers, body = _put_signed(server, "/signed")
    status, resp = _raw(server.port, "http://127.0.0.1:%d/signed" % server.port, headers, body)
    assert status.endswith(" 200 OK") and b'"FailedEntryCount":0' in resp, (status, resp)
    assert sink.wait_for(2, 10)


def test_unsigned_request_is_refused_before_its_body(server, sink):
    """Without a valid key and date the answer comes before the body is
    read: a client that announces 512 KiB and sends none of it gets its 400
    at once, not after httpd's Timeout."""
    server.start(_conf(sink, SECRET))
    headers = {"host": "127.0.0.1:%d" % server.port,
               "content-type": "application/x-amz-json-1.1",
               "x-amz-target": "AWSEvents.PutEvents", "content-length": str(512 << 10)}
    status, resp = _raw(server.port, "/signed", headers, b"")
    assert status.endswith(" 400 Bad Request"), status
    assert json.loads(resp)["__type"] == "MissingAuthenticationTokenException"
    signed = _sign(server.port, "/signed", b"", akid="AKIDNOBODY")
    signed["content-length"] = str(512 << 10)
    status, resp = _raw(server.port, "/signed", signed, b"")
    assert status.endswith(" 400 Bad Request"), status
    assert json.loads(resp)["__type"] == "UnrecognizedClientException"
    assert sink.count() == 0


def _put_signed(server, path):
    """One entry, signed with the test key, stored: (headers, body) sent."""
    body = json.dumps({"Entries": [entry("s.sig", "D", {"n": 1})]}).encode()
    headers = _sign(server.port, path, body)
    headers["content-length"] = str(len(body))
    status, resp = _raw(server.port, path, headers, body)
    assert status.endswith(" 200 OK") and b'"FailedEntryCount":0' in resp, (status, resp)
    return headers, body


def test_sigv4_key_in_a_virtual_host(server, sink):
    """A <Location> with keys inside a <VirtualHost> gave that host a
    configuration of its own, empty: ListRules answered no rules and a
    PutEvents crashed the child (no store). The host now has the server's
    rules and store, and its keys apply to its location only."""
    server.start(destination("d", sink.url("/s")) + rule("r", {"source": ["s.sig"]}, [("t", "d")])
                 + """
<VirtualHost 127.0.0.1:%d>
    ServerName vh.example
    <Location /signed>
        SetHandler apidest-events
        ApiDestSigV4Key AKIDEXAMPLE %s
    </Location>
    <Location /vadmin>
        SetHandler apidest-admin
    </Location>
</VirtualHost>
""" % (server.port, SECRET))
    _put_signed(server, "/signed")
    assert sink.wait_for(1, 10)
    status, _, data = server.request("GET", "/vadmin/status")
    assert status == 200 and [r["Name"] for r in json.loads(data)["Rules"]] == ["r"], data
    status, hdrs, resp = server.put_events([entry("s.sig", "D", {})], path="/signed")
    assert status == 400 and hdrs["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    status, _, resp = server.put_events([entry("s.sig", "D", {"n": 2})])
    assert status == 200 and resp["FailedEntryCount"] == 0, resp
    assert sink.wait_for(2, 10)
    assert "Segmentation fault" not in server.log_text()


def test_sigv4_keys_only_in_a_location(server):
    """PutEvents is not mapped to the filesystem, so keys in <Directory> or
    <Files> would never apply and the location would take unsigned
    requests: httpd -t refuses them, naming the line."""
    for section in ("<Directory /tmp>", "<Files events>"):
        end = "</%s>" % section[1:].split()[0]
        rc, out, path = server.configtest("""
%s
    ApiDestSigV4Key AKIDEXAMPLE %s
%s
""" % (section, SECRET, end))
        assert_config_error(rc, out, path, find_line(path, "ApiDestSigV4Key"), "ApiDestSigV4Key")
        assert SECRET not in out


def test_a_sigv4_secret_with_a_line_end_or_space_is_refused_at_configtest(server, monkeypatch):
    """An env: secret ending in a newline (`export K=$(cat file)` keeps
    none, but a systemd EnvironmentFile or a copy-paste may) passed httpd
    -t, and every correctly signed request then failed as a mismatch. A
    secret access key holds no whitespace or control character: refused,
    naming the line, without the value."""
    for bad in (SECRET + "\n", SECRET + " ", " " + SECRET, SECRET[:20] + "\t" + SECRET[20:]):
        monkeypatch.setenv("APIDEST_TEST_SIGV4", bad)
        rc, out, path = server.configtest("""
<Location /signed>
    SetHandler apidest-events
    ApiDestSigV4Key AKIDEXAMPLE env:APIDEST_TEST_SIGV4
</Location>
""")
        assert_config_error(rc, out, path, find_line(path, "ApiDestSigV4Key"),
                            "whitespace or control characters")
        assert SECRET[:20] not in out and SECRET[20:] not in out


def test_a_key_where_no_ingest_handler_verifies_it_refuses(server, sink):
    """ApiDestSigV4Key on the admin location (or above any other handler)
    was accepted and ignored: unsigned requests read the status and
    redrove the whole DLQ. Only apidest-events verifies signatures, so any
    other handler under a key refuses (500, logged), subrequests too (an
    SSI page elsewhere including the status); the ErrorDocument the
    operator configured is still served after an error; the ingest
    location under the same key still takes signed requests."""
    htdocs = os.path.join(server.root, "htdocs")
    with open(os.path.join(htdocs, "page.shtml"), "w") as f:
        f.write('before<!--#include virtual="/apidest/status" -->after\n')
    os.makedirs(os.path.join(htdocs, "apidest"), exist_ok=True)
    with open(os.path.join(htdocs, "apidest", "denied.html"), "w") as f:
        f.write("the operator's error page\n")
    server.start(destination("d", sink.url("/s")) + rule("r", {"source": ["s.sig"]}, [("t", "d")])
                 + """LoadModule include_module /usr/lib/apache2/modules/mod_include.so
<Location /apidest>
    ApiDestSigV4Key AKIDEXAMPLE %s
</Location>
<Location /apidest/signed>
    SetHandler apidest-events
</Location>
<Directory "%s">
    Options +Includes
</Directory>
<Location /page.shtml>
    SetOutputFilter INCLUDES
</Location>
<Location /apidest/denied>
    Require all denied
    ErrorDocument 403 /apidest/denied.html
</Location>
<Location /apidest/denied.html>
    SetHandler None
    Require all granted
</Location>
""" % (SECRET, htdocs))
    for method, path in (("GET", "/apidest/status"), ("POST", "/apidest/dlq/redrive")):
        status, _, data = server.request(method, path)
        assert status == 500, (method, path, status, data)
    assert "AD10057" in server.log_text() and SECRET not in server.log_text()
    status, _, data = server.request("GET", "/page.shtml")
    assert status == 200 and b"before" in data and b"Rules" not in data, data
    status, _, data = server.request("GET", "/apidest/denied")
    assert status == 403 and b"the operator's error page" in data, (status, data)
    status, _, _ = server.request("GET", "/server-status")
    assert status == 200  # no key there
    _put_signed(server, "/apidest/signed")
    assert sink.wait_for(1, 10)
