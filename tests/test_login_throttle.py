"""The one log-in limiter behind every door: what counts as a failure, what it locks, where the
client address comes from, and where the counters live."""

from __future__ import annotations

import ipaddress

import pytest
import redis
from django.contrib.auth import authenticate
from django.test import RequestFactory

from hypersdk.lib import login_throttle
from hypersdk.lib.client_address import client_address
from tests.factories import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_login_counters")]

PASSWORD = "correct horse battery"
DOORS = ["/ui/login/", "/admin/login/", "/api-auth/login/"]


@pytest.fixture
def alice(db):
    return make_user("alice", "operator", password=PASSWORD)


@pytest.fixture
def victor(db):
    return make_user("victor", "viewer", password=PASSWORD)


def post(client, url: str, username: str, password: str = "wrong", **extra) -> int:
    return client.post(url, {"username": username, "password": password}, **extra).status_code


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_api_auth_login_is_limited(client, alice):
    assert [post(client, "/api-auth/login/", "alice") for _ in range(5)] == [200] * 5
    response = client.post("/api-auth/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429 and "Too many failed log-ins" in response.content.decode()
    assert not logged_in(client)


def test_every_login_door_shares_one_count(client, alice):
    for url in [*DOORS, "/ui/login/", "/admin/login/"]:
        assert post(client, url, "alice") == 200
    for url in DOORS:
        assert post(client, url, "alice", PASSWORD) == 429, url
    assert not logged_in(client)


def test_a_door_without_the_429_page_is_refused_by_the_backend_too(rf, alice):
    request = RequestFactory().post("/elsewhere/", REMOTE_ADDR="192.0.2.7")
    for _ in range(5):
        assert authenticate(request, username="alice", password="wrong") is None
    assert authenticate(request, username="alice", password=PASSWORD) is None  # locked: unchecked
    other = RequestFactory().post("/elsewhere/", REMOTE_ADDR="192.0.2.8")
    assert authenticate(other, username="alice", password=PASSWORD) == alice


def test_a_right_password_of_a_non_staff_account_on_the_admin_is_not_a_failure(client, victor):
    for _ in range(8):
        assert post(client, "/admin/login/", "victor", PASSWORD) == 200  # not staff: the form again
    assert post(client, "/ui/login/", "victor", PASSWORD) == 302  # the dashboard lets victor in


def test_twenty_failures_from_one_address_do_not_lock_out_the_other_users_there(client, alice):
    for n in range(20):
        assert post(client, "/ui/login/", f"guess{n}") == 200
    assert post(client, "/ui/login/", "alice", PASSWORD) == 302
    assert logged_in(client)


def test_a_noisy_address_gets_no_further_try_for_the_names_that_failed_from_it(client, alice):
    post(client, "/ui/login/", "alice")
    for n in range(19):
        post(client, "/ui/login/", f"guess{n}")
    assert post(client, "/ui/login/", "alice", PASSWORD) == 429
    assert post(client, "/ui/login/", "guess0") == 429


def test_failures_for_one_account_from_many_addresses_lock_the_account(client, alice):
    for n in range(20):
        assert post(client, "/ui/login/", "alice", REMOTE_ADDR=f"198.51.100.{n + 1}") == 200
    assert post(client, "/ui/login/", "alice", PASSWORD, REMOTE_ADDR="198.51.100.200") == 429


def test_the_client_behind_a_trusted_proxy_is_counted_not_the_proxy(client, alice, settings):
    settings.HYPERSDK_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.1")]
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for _ in range(5):
        post(client, "/ui/login/", "alice", HTTP_X_FORWARDED_FOR="203.0.113.5", **proxy)
    assert post(client, "/ui/login/", "alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5", **proxy) == 429
    # alice on another machine behind the same proxy is not locked out.
    assert post(client, "/ui/login/", "alice", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.6", **proxy) == 302


def test_the_proxy_header_of_an_untrusted_peer_is_ignored(client, alice, settings):
    settings.HYPERSDK_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.1")]
    for n in range(5):  # a new made-up address every time: still counted under REMOTE_ADDR
        post(client, "/ui/login/", "alice", REMOTE_ADDR="192.0.2.9", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    assert post(client, "/ui/login/", "alice", PASSWORD, REMOTE_ADDR="192.0.2.9") == 429


def test_the_client_address_is_the_first_untrusted_hop_from_the_right(rf, settings):
    settings.HYPERSDK_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    settings.HYPERSDK_CLIENT_ADDRESS_HEADER = "X-Real-Chain"
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_REAL_CHAIN="6.6.6.6, 203.0.113.5, 10.1.2.3")
    assert client_address(request) == "203.0.113.5"  # 6.6.6.6 was written by the client itself
    assert client_address(rf.get("/", REMOTE_ADDR="10.0.0.1")) == "10.0.0.1"
    settings.HYPERSDK_TRUSTED_PROXIES = []
    assert client_address(rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_REAL_CHAIN="203.0.113.5")) == "10.0.0.1"


@pytest.mark.backend
def test_the_counters_live_in_redis_when_redis_url_is_set(client, alice, redis_url, settings):
    settings.CACHES = {
        **settings.CACHES,
        "login": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url},
    }
    login_throttle.forget_all()
    for _ in range(5):
        post(client, "/ui/login/", "alice")
    # Another process (another API node) sees them: read Redis directly.
    keys = list(redis.Redis.from_url(redis_url).scan_iter(match=f"*{login_throttle.KEY_PREFIX}:*"))
    assert len(keys) == 3  # the (name, address), name and address counters
    assert post(client, "/ui/login/", "alice", PASSWORD) == 429
    login_throttle.forget_all()
    assert not list(redis.Redis.from_url(redis_url).scan_iter(match=f"*{login_throttle.KEY_PREFIX}:*"))


def test_an_unreachable_shared_cache_still_limits_with_local_counters(client, alice, settings, caplog):
    settings.CACHES = {
        **settings.CACHES,
        "login": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        },
    }
    assert [post(client, "/ui/login/", "alice") for _ in range(5)] == [200] * 5
    assert post(client, "/ui/login/", "alice", PASSWORD) == 429
    assert "shared cache unavailable" in caplog.text
