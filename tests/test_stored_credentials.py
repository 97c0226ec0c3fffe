"""A copy of the database or of a browser's cookies holds no live credential: sessions are stored
by digest, and a raw token shown once never travels in a cookie."""

from __future__ import annotations

import re

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from hypersdk.lib.session_store import stored_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("alice", "", "alice-pass")


def logged_in(staff) -> tuple[Client, str]:
    browser = Client()
    response = browser.post(
        "/admin/login/", {"username": "alice", "password": "alice-pass", "next": "/admin/"}
    )
    assert response.status_code == 302, response.content
    return browser, browser.cookies["sessionid"].value


def test_a_session_key_copied_from_the_database_is_no_cookie(staff):
    browser, cookie = logged_in(staff)
    (row,) = Session.objects.all()
    assert row.session_key != cookie and row.session_key == stored_key(cookie)
    assert browser.get("/admin/").status_code == 200  # the real cookie still works
    thief = Client()
    thief.cookies["sessionid"] = row.session_key
    assert thief.get("/admin/").status_code == 302  # to the login page


def test_logging_out_deletes_the_stored_session(staff):
    browser, cookie = logged_in(staff)
    assert browser.post("/admin/logout/").status_code == 200
    assert not Session.objects.exists()
    replay = Client()
    replay.cookies["sessionid"] = cookie
    assert replay.get("/admin/").status_code == 302


def test_the_admins_new_token_message_never_goes_into_a_cookie(staff):
    browser, _ = logged_in(staff)
    added = browser.post("/admin/knox/authtoken/add/", {"user": staff.pk, "expiry": ""})
    assert added.status_code == 302, added.content
    # Django's cookie storage signs its messages (compressed, readable by anyone) but does
    # not encrypt them: no message cookie at all.
    assert "messages" not in added.cookies
    page = browser.get(added["Location"]).content.decode()
    token = re.search(r"TOKEN (\w+)", page).group(1)  # shown once, on the next page
    assert token not in " ".join(morsel.value for morsel in browser.cookies.values())
    assert "TOKEN" not in browser.get(added["Location"]).content.decode()  # and only once
