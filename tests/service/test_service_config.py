import pytest

from service.config import (
    DEFAULT_PEER_TIMEOUT_SECONDS,
    ConfigError,
    Peer,
    load_settings,
)


def test_defaults_when_only_the_name_is_set():
    settings = load_settings({"SERVICE_NAME": "client"})
    assert settings.service_name == "client"
    assert settings.port == 8080
    assert settings.peers == ()
    assert settings.peer_timeout_seconds == DEFAULT_PEER_TIMEOUT_SECONDS
    assert settings.health_check_path == "/healthz"


def test_peer_urls_take_plain_and_named_entries():
    settings = load_settings({
        "SERVICE_NAME": "client",
        "PEER_URLS": "http://server.my.demo:8080/, billing=http://10.0.0.7:9000",
    })
    assert settings.peers == (
        Peer("server", "http://server.my.demo:8080"),
        Peer("billing", "http://10.0.0.7:9000"),
    )


def test_an_ip_peer_is_named_by_its_whole_address():
    settings = load_settings({"PEER_URLS": "http://127.0.0.1:9000"})
    assert settings.peers[0].name == "127.0.0.1"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "0"),
        ("PORT", "70000"),
        ("PEER_URLS", "server.my.demo:8080"),
        ("PEER_URLS", "ftp://server.my.demo"),
        ("PEER_URLS", "http://a.my.demo:8080,,http://b.my.demo:8080"),
        ("PEER_URLS", "http://a.my.demo:8080,http://a.other:8080"),
        ("PEER_URLS", "http://server.my.demo:notaport"),
        ("PEER_URLS", "http://user:pw@server.my.demo:8080"),
        ("PEER_TIMEOUT_SECONDS", "soon"),
        ("PEER_TIMEOUT_SECONDS", "0"),
        ("PEER_TIMEOUT_SECONDS", "-1"),
        ("PEER_TIMEOUT_SECONDS", "nan"),
        ("PEER_TIMEOUT_SECONDS", "20"),
        ("HEALTH_CHECK_PATH", "healthz"),
        ("HEALTH_CHECK_PATH", "/peers"),
        ("SERVICE_NAME", "has spaces"),
    ],
)
def test_a_bad_value_names_its_variable(variable, value):
    with pytest.raises(ConfigError) as raised:
        load_settings({"SERVICE_NAME": "client", variable: value})
    assert raised.value.variable == variable
    assert str(raised.value).startswith(f"{variable}: ")
    assert "\n" not in str(raised.value)
