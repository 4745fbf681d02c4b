"""(h) Bad configurations fail `httpd -t`, naming the config file and the line
of the offending directive (or, for a section missing a required directive,
the section's opening or closing line), with the reason."""

import json
import os
import time

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


def _conn(name, body):
    return "\n<ApiDestConnection %s>\n%s\n</ApiDestConnection>\n" % (name, body)


def _with_conn(conn_body):
    return (_conn("c1", conn_body) + destination("d1", "http://127.0.0.1:9/x",
                                                 extra="    Connection c1\n")
            + rule("r1", {"source": ["x"]}, [("t1", "d1")]))


def test_a_password_in_an_endpoint_is_never_printed(server):
    """A URL that does not parse was printed whole, user:password@ included."""
    for body in (destination("d1", "https://bob:InlineS3cret@api.example.com:99x/*/x")
                 + rule("r1", {"source": ["x"]}, [("t1", "d1")]),
                 destination("d1", "https://bob:InlineS3cret@/x")
                 + rule("r1", {"source": ["x"]}, [("t1", "d1")]),
                 destination("d1", "https://bob:S3cret#x/?@api.example.com/x")
                 + rule("r1", {"source": ["x"]}, [("t1", "d1")]),
                 _with_conn("AuthorizationType OAUTH_CLIENT_CREDENTIALS\n"
                            "OAuthEndpoint https://cid:OauthS3cret@auth.example.com:x/t\n"
                            "OAuthClient cid secret")):
        rc, out, path = server.configtest(body)
        line = find_line(path, "S3cret")
        assert_config_error(rc, out, path, line, "withheld")
        assert "S3cret" not in out, out


def _pattern_file_rule(path):
    return DEST + """
<ApiDestRule r1>
    EventPatternFile %s
    <ApiDestTarget t1>
        Destination hooks
    </ApiDestTarget>
</ApiDestRule>
""" % path


def test_a_pattern_or_template_file_with_a_nul_byte_fails_configtest(server, tmp_path):
    """The text ended at the NUL: the rest of the pattern (or template) was
    never seen, and what came before it was compiled as all there was."""
    pattern = tmp_path / "pattern.json"
    pattern.write_bytes(b'{"source": ["x"]}\x00, "detail-type": ["y"]}')
    template = tmp_path / "template.txt"
    template.write_bytes(b'{"a": 1}\x00garbage')
    for needle, body in (
            ("EventPatternFile", _pattern_file_rule(pattern)),
            ("InputTransformerFile", DEST + """
<ApiDestRule r1>
    EventPattern '{"source": ["x"]}'
    <ApiDestTarget t1>
        Destination hooks
        InputTransformerFile %s
    </ApiDestTarget>
</ApiDestRule>
""" % template)):
        rc, out, path = server.configtest(body)
        assert_config_error(rc, out, path, find_line(path, needle), "holds a NUL byte")


def test_a_secret_or_pattern_file_must_be_a_regular_file(server, tmp_path):
    """open() of a FIFO waits for a writer: configtest hung."""
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    cases = [
        ("Basic user1 file:", _with_conn("AuthorizationType BASIC\nBasic user1 file:" + fifo)),
        ("EventPatternFile", _pattern_file_rule(fifo)),
        ("Basic user1 file:", _with_conn("AuthorizationType BASIC\nBasic user1 file:"
                                         + str(tmp_path))),
    ]
    for needle, body in cases:
        t0 = time.time()
        rc, out, path = server.configtest(body)
        assert time.time() - t0 < 10, "configtest hung"
        assert_config_error(rc, out, path, find_line(path, needle), "not a regular file")


def test_a_runtime_dir_too_long_for_the_socket_fails_configtest(server):
    """The socket's path was checked only in post_config: configtest said
    Syntax OK, and a graceful restart with it took the whole server down."""
    long_dir = os.path.join(server.root, "r" * 90)
    os.makedirs(long_dir)
    rc, out, path = server.configtest("DefaultRuntimeDir %s\n" % long_dir + DEST)
    assert rc != 0 and "Syntax OK" not in out, out
    assert "shorten DefaultRuntimeDir" in out, out


def _rule_r2(lines):
    """Rule r2 with these lines and one target on "hooks"."""
    return """
<ApiDestRule r2>
    %s
    <ApiDestTarget t1>
        Destination hooks
    </ApiDestTarget>
</ApiDestRule>
""" % lines


def test_values_that_were_accepted_and_ignored_or_wrapped(server):
    """Each of these passed configtest: a forbidden ApiKey header, a target's
    HttpMethod/Timeout/AllowPrivateEndpoint beside its Destination (the
    destination's were used), a line given twice (the last won), words
    after a section's name, credentials of another type (loaded, never used), ports past 65535 or 0, a control
    byte or '<' in a URL, and an ApiDestStoreMinFree that wrapped negative
    (turning the protection off)."""
    target = lambda extra: DEST + """
<ApiDestRule r1>
    EventPattern '{"source":["x"]}'
    <ApiDestTarget t1>
%s
    </ApiDestTarget>
</ApiDestRule>
""" % "\n".join("        " + x for x in extra.split("\n"))
    cases = [
        ("ApiKey Content-Length", _with_conn("AuthorizationType API_KEY\n"
                                             "ApiKey Content-Length 12"), "may not be set"),
        ("Timeout 30", target("Destination hooks\nTimeout 30"), "only a plain Endpoint"),
        ("        Destination hooks", target("HttpMethod GET\nDestination hooks"),
         "only a plain Endpoint"),
        ("        AllowPrivateEndpoint", target("Destination hooks\nAllowPrivateEndpoint on"),
         "only a plain Endpoint"),
        ("AuthorizationType BASIC", _with_conn("AuthorizationType API_KEY\n"
                                               "AuthorizationType BASIC\nBasic u p"),
         "given twice"),
        ("Endpoint http://127.0.0.1:9/b", destination("d2", "http://127.0.0.1:9/a",
                                                      extra="    Endpoint http://127.0.0.1:9/b\n")
         + rule("r2", {"source": ["x"]}, [("t1", "d2")]), "given twice"),
        ("<ApiDestRule r2 extra>", DEST + rule("r2 extra", {"source": ["x"]}, [("t1", "hooks")]),
         "takes one name"),
        ("<ApiDestConnection c1>", _with_conn("AuthorizationType BASIC\nBasic u p\n"
                                            "ApiKey X-Key k"), "does not go with"),
        ("Endpoint http://127.0.0.1:70000", destination("d2", "http://127.0.0.1:70000/x")
         + rule("r2", {"source": ["x"]}, [("t1", "d2")]), "port"),
        ("Endpoint http://127.0.0.1:0/", destination("d2", "http://127.0.0.1:0/x")
         + rule("r2", {"source": ["x"]}, [("t1", "d2")]), "port"),
        ("Endpoint http://127.0.0.1/a\x01", destination("d2", "http://127.0.0.1/a\x01b")
         + rule("r2", {"source": ["x"]}, [("t1", "d2")]), "control"),
        ("Endpoint http://a<b", destination("d2", "http://a<b/x")
         + rule("r2", {"source": ["x"]}, [("t1", "d2")]), "host"),
        ("ApiDestStoreMinFree", "ApiDestStoreMinFree 99999999999999G\n" + DEST, "at most"),
        # apidestd found it only when it started, gave up, and every
        # PutEvents was answered 503
        ("ApiDestStore dbm:gdbm:/etc", "ApiDestStore dbm:gdbm:/etc/passwd/store\n" + DEST,
         "/etc/passwd is not a directory"),
        ("InputTransformerFile", target("Destination hooks\nInputTransformer '{\"a\": 1}'\n"
                                        "InputTransformerFile /dev/null"), "one InputTransformer"),
        ("<ApiDestConnection c1>", _with_conn("AuthorizationType BASIC\nBasic u p\n"
                                            "OAuthParameter body scope x"), "does not go with"),
        ("EventPatternFile", DEST + _rule_r2("""EventPattern '{"source":["x"]}'
    EventPatternFile /dev/null"""), "one EventPattern or EventPatternFile"),
    ]
    for needle, body, why in cases:
        rc, out, path = server.configtest(body)
        assert_config_error(rc, out, path, find_line(path, needle), why)
        # a line inside a target is named once, not also as the target's line
        assert out.count("(at ") <= 1, out


def test_an_empty_port_is_no_port(server):
    """RFC 3986 allows "host:" with an empty port: the scheme's default."""
    rc, out, _ = server.configtest(destination("d1", "http://127.0.0.1:/x")
                                   + rule("r1", {"source": ["x"]}, [("t1", "d1")]))
    assert rc == 0 and "Syntax OK" in out, out


def test_a_journal_that_cannot_open_fails_configtest(server, tmp_path):
    """The master opens ApiDestJournal in post_config, where a failure stops
    httpd, on a graceful restart too: `apachectl -t` passed such a config and
    `apachectl graceful` then took the server down. What configtest can tell
    it now tells."""
    cases = [
        (str(tmp_path / "no" / "such" / "journal.log"), "does not exist"),
        (str(tmp_path), "is a directory"),
        ("|/no/such/program -x", "is not an executable file"),
        ("|" + str(tmp_path), "is not an executable file"),
    ]
    for spec, why in cases:
        rc, out, path = server.configtest(DEST + 'ApiDestJournal "%s"\n' % spec)
        assert_config_error(rc, out, path, find_line(path, "ApiDestJournal"), why)
    # /dev/stdout is a pipe here, as in a container
    for spec in (str(tmp_path / "journal.log"), "/dev/stdout", "|/bin/cat", "|$cat > /dev/null"):
        rc, out, _ = server.configtest(DEST + 'ApiDestJournal "%s"\n' % spec)
        assert rc == 0 and "Syntax OK" in out, (spec, out)


def test_backslashes_in_inline_json_are_the_json_s(server, sink):
    """httpd's word parser turns "\\\\" into "\\" even in quotes: an inline
    EventPattern ['C:\\\\temp'] matched "C:<tab>emp" and never "C:\\temp",
    an escaped wildcard star was refused, and an InputTransformer lost its
    backslashes. Between single quotes those lines now take their JSON as
    written (only \\' is an escape); between double quotes httpd's escapes
    stay, so that JSON's \\" can be written (as \\\\\\")."""
    conf = destination("hooks", sink.url("/bs")) + r"""
<ApiDestRule path>
    EventPattern '{"source": ["s.bs"], "detail": {"p": ["C:\\temp"]}}'
    <ApiDestTarget t>
        Destination hooks
        InputTransformer '{"rule": "path", "dir": "D:\\out\\", "i": <i>}'
        InputPathsMap i $.detail.i
    </ApiDestTarget>
</ApiDestRule>
<ApiDestRule star>
    EventPattern '{"source": ["s.bs"], "detail": {"w": [{"wildcard": "a\\*b*"}]}}'
    <ApiDestTarget t>
        Destination hooks
        Input '{"rule": "star", "q": "it\'s \"x\""}'
    </ApiDestTarget>
</ApiDestRule>
<ApiDestRule dq>
    EventPattern "{\"source\": [\"s.bs\"], \"detail\": {\"d\": [\"q\\\\\", \"\\\"x\\\"\"]}}"
    <ApiDestTarget t>
        Destination hooks
        Input "{\"rule\": \"dq\"}"
    </ApiDestTarget>
</ApiDestRule>
"""
    rc, out, _ = server.configtest(conf)
    assert rc == 0, out
    server.start(conf)
    events = [{"p": "C:\\temp"}, {"p": "C:\temp"}, {"w": "a*bc"}, {"w": "axbc"}, {"d": "q\\"},
              {"d": '"x"'}]
    for i, d in enumerate(events):
        d["i"] = i
        server.put_events([{"Source": "s.bs", "DetailType": "B", "Detail": json.dumps(d)}])
    assert sink.wait_for(4, 10)
    time.sleep(1.0)
    got = sorted((json.loads(r["body"]) for r in sink.snapshot()), key=lambda b: b["rule"])
    assert got == [{"rule": "dq"}, {"rule": "dq"},
                   {"rule": "path", "dir": "D:\\out\\", "i": 0},
                   {"rule": "star", "q": "it's \"x\""}], [r["body"] for r in sink.snapshot()]


def test_values_that_failed_only_when_used(server, tmp_path):
    """Each of these passed configtest and then failed every event or every
    request: a static PathParameter that is or holds '..' (every event
    dead-lettered), a store path that is a directory (apidestd could not
    start: every PutEvents 503), a query parameter without a name (sent as
    "?=v"), a CA file that is not PEM (every HTTPS attempt failed). An
    empty quoted last word was dropped ("takes 2 arguments"). A line given
    twice names the first one too."""
    star = destination("star", "http://127.0.0.1:9/t/*/x")
    target = lambda lines: star + """
<ApiDestRule r1>
    EventPattern '{"source":["x"]}'
    <ApiDestTarget t1>
        Destination star
%s
    </ApiDestTarget>
</ApiDestRule>
""" % "\n".join("        " + x for x in lines)
    not_pem = tmp_path / "not-a-cert.pem"
    not_pem.write_text("not a certificate\n")
    cases = [
        ("PathParameter ..", target(["PathParameter .."]), "'..' segment"),
        ("PathParameter a/..", target(["PathParameter a/.."]), "'..' segment"),
        ("ApiDestStore dbm:gdbm:%s" % tmp_path, "ApiDestStore dbm:gdbm:%s\n" % tmp_path + DEST,
         "is a directory"),
        ('QueryParameter ""', target(["PathParameter p", 'QueryParameter "" v']),
         "needs a name"),
        ("ApiDestCAFile %s" % not_pem, "ApiDestCAFile %s\n" % not_pem + DEST,
         "no PEM certificate"),
        # a last "" was dropped: "Header takes 2 arguments"
        ('Header X-Empty ""', target(["PathParameter p", 'Header X-Empty ""']), "is empty"),
        ("EventPattern ''", DEST + _rule_r2("EventPattern ''"), "EventPattern"),
    ]
    for needle, body, why in cases:
        rc, out, path = server.configtest(body)
        assert_config_error(rc, out, path, find_line(path, needle), why)
        assert "takes" not in out, out
    rc, out, path = server.configtest(
        target(["PathParameter p", "RetryAttempts 3", "RetryAttempts 4"]))
    first = find_line(path, "RetryAttempts 3")
    assert_config_error(rc, out, path, first + 1, "given twice", "first at %s:%d" % (path, first))
    # entries near a 1 MiB entry size cannot arrive in a 1 MiB body: said, not refused
    rc, out, path = server.configtest("ApiDestMaxEntrySize 1048576\n" + DEST)
    assert rc == 0 and "AD10058" in out and "raise ApiDestMaxRequestSize" in out, out
    rc, out, path = server.configtest("ApiDestMaxEntrySize 1048000\n" + DEST)
    assert rc == 0 and "AD10058" in out, out
    rc, out, path = server.configtest("ApiDestMaxEntrySize 1048576\n"
                                      "ApiDestMaxRequestSize 2097152\n" + DEST)
    assert rc == 0 and "AD10058" not in out, out
    # an empty body parameter is a value (AWS allows it); a header's is not
    rc, out, path = server.configtest(_with_conn(
        "AuthorizationType API_KEY\nApiKey X-Key k\nAllowInsecureHttp on\n"
        "InvocationParameter body flag \"\""))
    assert rc == 0, out
    # a base alone above the default cap is its own cap, as a target's is
    rc, out, path = server.configtest("ApiDestRetryBackoff 1000\n" + DEST)
    assert rc == 0, out
