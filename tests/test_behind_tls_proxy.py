"""Logging in through a TLS reverse proxy (X-Forwarded-Proto: https, the public Host and Origin),
with the settings HYPERSDK_PUBLIC_URL derives, and their strict parsing."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from hypersdk.lib import login_throttle, public_url
from hypersdk.lib.env import ConfigError
from tests.factories import make_user

pytestmark = pytest.mark.django_db

PUBLIC = "https://hypersdk.example.com"
PASSWORD = "correct horse battery"
# What nginx/Caddy in front of the daemon send: the public Host, and that TLS was used.
THROUGH_PROXY = {"HTTP_HOST": "hypersdk.example.com", "HTTP_X_FORWARDED_PROTO": "https"}


@pytest.fixture
def behind_proxy(monkeypatch, settings):
    """The settings as hypervisord computes them with HYPERSDK_PUBLIC_URL set."""
    monkeypatch.setenv("HYPERSDK_PUBLIC_URL", PUBLIC)
    for name, value in public_url.from_environment(["localhost", "127.0.0.1"]).items():
        setattr(settings, name, value)
    login_throttle.forget_all()
    return settings


@pytest.fixture
def alice(db):
    return make_user("alice", "operator", password=PASSWORD)


def test_https_public_url_makes_cookies_secure_and_trusts_the_proxy_header(behind_proxy):
    assert behind_proxy.CSRF_TRUSTED_ORIGINS == [PUBLIC]
    assert behind_proxy.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    assert behind_proxy.SESSION_COOKIE_SECURE and behind_proxy.CSRF_COOKIE_SECURE
    assert "hypersdk.example.com" in behind_proxy.ALLOWED_HOSTS


def test_logging_in_through_a_tls_proxy_works_with_csrf_checks(behind_proxy, alice):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/ui/login/", **THROUGH_PROXY)
    assert page.status_code == 200
    assert browser.cookies["csrftoken"]["secure"]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = browser.post(
        "/ui/login/",
        {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token},
        HTTP_ORIGIN=PUBLIC,
        HTTP_REFERER=f"{PUBLIC}/ui/login/",
        **THROUGH_PROXY,
    )
    assert response.status_code == 302, response.content[:300]
    assert browser.cookies["sessionid"]["secure"]
    assert browser.get("/ui/jobs/", **THROUGH_PROXY).status_code == 200


def test_a_foreign_origin_through_the_proxy_is_still_refused(behind_proxy, alice):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/ui/login/", **THROUGH_PROXY)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = browser.post(
        "/ui/login/",
        {"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token},
        HTTP_ORIGIN="https://evil.example",
        **THROUGH_PROXY,
    )
    assert response.status_code == 403


def test_without_a_public_url_nothing_is_trusted_from_a_proxy(monkeypatch):
    monkeypatch.delenv("HYPERSDK_PUBLIC_URL", raising=False)
    derived = public_url.from_environment(["localhost"])
    assert derived["SECURE_PROXY_SSL_HEADER"] is None and derived["CSRF_TRUSTED_ORIGINS"] == []
    assert not derived["SESSION_COOKIE_SECURE"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HYPERSDK_PUBLIC_URL", "hypersdk.example.com"),
        ("HYPERSDK_PUBLIC_URL", "ftp://hypersdk.example.com"),
        ("HYPERSDK_PUBLIC_URL", "https://hypersdk.example.com/hypersdk"),
        ("HYPERSDK_PUBLIC_URL", "https://user:pw@hypersdk.example.com"),
        ("HYPERSDK_PUBLIC_URL", "https://hypersdk.example.com:99999"),
        ("HYPERSDK_SECURE_COOKIES", "maybe"),
        ("HYPERSDK_PROXY_SSL_HEADER", "X-Forwarded-Proto: https"),
    ],
)
def test_a_bad_proxy_setting_stops_start_up_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv("HYPERSDK_PUBLIC_URL", PUBLIC)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        public_url.from_environment([])
