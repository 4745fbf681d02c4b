"""Optional SigV4 verification (ApiDestSigV4Key) with the real AWS CLI v2:
the right secret is accepted, a wrong secret or an unknown key is refused
with AWS's error, an unsigned request is refused, and a location without
keys keeps accepting unsigned requests."""

import json
import os
import subprocess

from harness import destination, entry, rule

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
