"""(h) Bad configurations fail `httpd -t`, naming the config file and the line
of the offending directive (or, for a section missing a required directive,
the section's opening or closing line), with the reason."""

from harness import assert_config_error, destination, find_line, rule

DEST = destination("hooks", "http://127.0.0.1:9/hooks")


def _section(path, opening, start=1):
    """(first, last) lines of the section whose opening line contains `opening`."""
    first = find_line(path, opening, start)
    tag = opening.strip().split()[0].lstrip("<")
    last = find_line(path, "</%s>" % tag, first)
    return first, last


def test_valid_config_passes(server):
    """Baseline: the preamble plus a valid rule is Syntax OK (so the failures
    below are about the bad part only)."""
    rc, out, path = server.configtest(DEST + rule("ok", {"source": ["x"]}, [("t1", "hooks")]))
    assert rc == 0, out
    assert "Syntax OK" in out, out


def test_invalid_pattern_json(server):
    body = DEST + """
<ApiDestRule bad-json>
    EventBus default
    EventPattern '{"source": ["x"'
    <ApiDestTarget t1>
        Destination hooks
    </ApiDestTarget>
</ApiDestRule>
"""
    rc, out, path = server.configtest(body)
    line = find_line(path, "EventPattern", find_line(path, "<ApiDestRule bad-json>"))
    assert_config_error(rc, out, path, line, "EventPattern")


def test_target_unknown_destination(server):
    body = DEST + rule("r-unknown", {"source": ["x"]}, [("t1", "no-such-destination")])
    rc, out, path = server.configtest(body)
    first, last = _section(path, "<ApiDestTarget t1>")
    line = find_line(path, "Destination no-such-destination")
    assert_config_error(rc, out, path, {first, line}, "no-such-destination")


def test_destination_missing_endpoint(server):
    body = """
<ApiDestDestination no-endpoint>
    HttpMethod POST
    AllowPrivateEndpoint on
</ApiDestDestination>
""" + rule("r1", {"source": ["x"]}, [("t1", "no-endpoint")])
    rc, out, path = server.configtest(body)
    first, last = _section(path, "<ApiDestDestination no-endpoint>")
    assert_config_error(rc, out, path, {first, last}, "Endpoint", "no-endpoint")


def test_unknown_directive_in_rule(server):
    body = DEST + """
<ApiDestRule r-bogus>
    EventBus default
    EventPattern '{"source": ["x"]}'
    BogusDirective yes
    <ApiDestTarget t1>
        Destination hooks
    </ApiDestTarget>
</ApiDestRule>
"""
    rc, out, path = server.configtest(body)
    line = find_line(path, "BogusDirective")
    assert_config_error(rc, out, path, line, "BogusDirective")


def test_non_array_leaf_pattern(server):
    body = DEST + rule("r-leaf", '{"source":"x"}', [("t1", "hooks")])
    rc, out, path = server.configtest(body)
    line = find_line(path, "EventPattern", find_line(path, "<ApiDestRule r-leaf>"))
    assert_config_error(rc, out, path, line, '"source" must be an object or an array')


def test_bad_config_on_start_fails_and_leaves_nothing_running(server):
    """httpd -k start with a bad pattern does not start a server or a daemon."""
    server.write_conf(DEST + rule("r-leaf", '{"source":"x"}', [("t1", "hooks")]))
    p = server._httpd("-k", "start")
    out = p.stdout + p.stderr
    server.started = True  # so that teardown stops whatever did start
    server.master_pid = server.read_pid(server.pid_file)
    assert p.returncode != 0, out
    assert '"source" must be an object or an array' in out, out
    assert not server._can_connect()
    assert server.live_daemon_pid() is None


def test_bad_target_retry_backoff_names_its_line(server):
    for value, text in (("5 1", "the cap must not be below the base"),
                        ("", "takes a base and an optional cap"),
                        ("0", "must be an integer from 1 to 86400")):
        body = DEST + """
<ApiDestRule r-backoff>
    EventPattern '{"source": ["x"]}'
    <ApiDestTarget t1>
        Destination hooks
        RetryBackoff %s
    </ApiDestTarget>
</ApiDestRule>
""" % value
        rc, out, path = server.configtest(body)
        assert_config_error(rc, out, path, find_line(path, "RetryBackoff"), text)


def test_invalid_values_name_their_line(server):
    """Other bad values: rule State, HttpMethod outside EventBridge's set,
    a non-http(s) Endpoint. Each names its own line."""
    cases = [
        ("State MAYBE", DEST + rule("r-state", {"source": ["x"]}, [("t1", "hooks")],
                                    state="MAYBE")),
        ("HttpMethod TRACE", destination("d-trace", "http://127.0.0.1:9/x", method="TRACE") +
         rule("r1", {"source": ["x"]}, [("t1", "d-trace")])),
        ("Endpoint ftp://", destination("d-ftp", "ftp://127.0.0.1/x") +
         rule("r1", {"source": ["x"]}, [("t1", "d-ftp")])),
    ]
    for needle, body in cases:
        rc, out, path = server.configtest(body)
        line = find_line(path, needle)
        assert_config_error(rc, out, path, line)
