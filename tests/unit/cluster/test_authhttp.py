"""nginx's auth_http requests, read without a server: escaping, methods, who may ask."""

from __future__ import annotations

from mra.cluster.authhttp import AuthQuery, parse_query, proxy_allowed


def headers(**extra: str) -> dict[str, str]:
    base = {
        "auth-method": "plain",
        "auth-user": "alice@example.test",
        "auth-pass": "secret",
        "auth-protocol": "imap",
        "auth-login-attempt": "1",
        "client-ip": "192.0.2.42",
    }
    base.update({k.replace("_", "-"): v for k, v in extra.items()})
    return base


def test_a_plain_request() -> None:
    assert parse_query(headers()) == AuthQuery(
        "alice@example.test", "secret", "imap", 1, "192.0.2.42"
    )


def test_escapes_are_undone_as_nginx_made_them() -> None:
    # ngx_escape_uri(NGX_ESCAPE_MAIL_AUTH) escapes space, %, and control characters.
    q = parse_query(headers(auth_user="al%20ice", auth_pass="50%25%20off%0D%0A%C3%A9"))
    assert isinstance(q, AuthQuery)
    assert q.login == "al ice"
    assert q.password == "50% off\r\né"


def test_unsupported_methods_and_protocols_are_said_so() -> None:
    for method in ("apop", "cram-md5", "external", "none"):
        assert isinstance(parse_query(headers(auth_method=method)), str)
    assert isinstance(parse_query(headers(auth_protocol="smtp")), str)


def test_a_client_ip_that_is_not_an_address_is_not_counted_as_one() -> None:
    q = parse_query(headers(client_ip="unix:"))
    assert isinstance(q, AuthQuery) and q.client_ip is None
    q = parse_query(headers(auth_login_attempt="many"))
    assert isinstance(q, AuthQuery) and q.attempt == 1


def test_proxy_addresses() -> None:
    proxies = ("127.0.0.1", "2001:db8::1")
    assert proxy_allowed("127.0.0.1", proxies)
    assert proxy_allowed("::ffff:127.0.0.1", proxies)  # a dual-stack socket's view of it
    assert proxy_allowed("2001:db8:0::1", proxies)
    assert not proxy_allowed("127.0.0.2", proxies)
    assert not proxy_allowed("", proxies)
    assert not proxy_allowed("unix", proxies)
