"""Sign-in throttling (django-axes, accounts/throttle.py): by account and by client address, with a calm page, a
delay that grows, every attempt recorded and logged, and X-Forwarded-For trusted only behind configured proxies.

The probe that found the gap: 30 wrong passwords in 7.5 s all got 200, and the right one then signed in.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client, RequestFactory
from django.utils import timezone

from accounts import throttle
from tests.factories import DEFAULT_PASSWORD, StudentFactory

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def attempt(username: str, password: str, *, ip: str = "10.0.0.1", **meta: str):
    return Client(REMOTE_ADDR=ip, **meta).post(LOGIN, {"username": username, "password": password})


def test_thirty_wrong_passwords_lock_the_account_and_then_the_right_one_is_refused_too(caplog):
    StudentFactory(username="alice")
    caplog.set_level(logging.WARNING, logger="axes")
    statuses = [attempt("alice", f"guess-{i}").status_code for i in range(30)]
    assert statuses[:4] == [200] * 4  # the form again, with its error
    assert set(statuses[5:]) == {429}  # locked from the fifth failure on
    locked = attempt("alice", DEFAULT_PASSWORD)
    assert locked.status_code == 429
    assert "_auth_user_id" not in locked.wsgi_request.session
    page = locked.content.decode()
    assert "Please wait before signing in again" in page and "minute" in page and "alice" in page
    # Every attempt is recorded and logged.
    assert AccessAttempt.objects.get(username="alice").failures_since_start >= 5
    assert "alice" in caplog.text


def test_an_account_is_locked_even_when_the_guesses_come_from_many_addresses():
    StudentFactory(username="alice")
    for i in range(5):
        attempt("alice", "wrong", ip=f"10.0.1.{i}")
    assert attempt("alice", DEFAULT_PASSWORD, ip="10.0.2.1").status_code == 429


def test_one_address_guessing_many_accounts_is_locked_and_other_addresses_are_not():
    StudentFactory(username="alice")
    for i in range(5):
        attempt(f"nobody{i}", "wrong", ip="10.0.3.3")
    assert attempt("alice", DEFAULT_PASSWORD, ip="10.0.3.3").status_code == 429
    assert attempt("alice", DEFAULT_PASSWORD, ip="10.0.3.4").status_code == 302


def test_the_pause_grows_with_each_failure_during_it_and_is_capped(settings):
    StudentFactory(username="alice")
    factory = RequestFactory()

    def pause() -> timedelta:
        request = factory.post(LOGIN, {"username": "alice"}, REMOTE_ADDR="10.0.4.4")
        return throttle.cool_off(request)

    for _ in range(5):
        attempt("alice", "wrong", ip="10.0.4.4")
    assert pause() == timedelta(minutes=1)
    attempt("alice", "wrong", ip="10.0.4.4")
    attempt("alice", "wrong", ip="10.0.4.4")
    assert pause() == timedelta(minutes=4)
    AccessAttempt.objects.filter(username="alice").update(failures_since_start=40)
    assert pause() == timedelta(minutes=settings.LOGIN_COOLOFF_MAX_MINUTES)


def test_after_the_pause_the_right_password_signs_in():
    StudentFactory(username="alice")
    for _ in range(5):
        attempt("alice", "wrong")
    assert attempt("alice", DEFAULT_PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=3))
    assert attempt("alice", DEFAULT_PASSWORD).status_code == 302


def test_a_spoofed_forwarded_for_header_is_ignored_unless_a_proxy_is_configured(settings):
    StudentFactory(username="alice")
    # No proxy configured: rotating X-Forwarded-For does not make five addresses out of one.
    for i in range(5):
        attempt(f"nobody{i}", "wrong", ip="10.0.5.5", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    assert attempt("alice", DEFAULT_PASSWORD, ip="10.0.5.5", HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429


def test_behind_one_trusted_proxy_the_client_is_the_address_it_appended(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    factory = RequestFactory()
    request = factory.get("/", REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7")
    assert throttle.client_ip(request) == "198.51.100.7"  # what the client wrote itself (6.6.6.6) is not trusted
    assert throttle.client_ip(factory.get("/", REMOTE_ADDR="10.9.9.9")) == "10.9.9.9"
    settings.TRUSTED_PROXY_COUNT = 0
    assert throttle.client_ip(request) == "10.9.9.9"
    # Behind the proxy, each student's own address is throttled on its own.
    settings.TRUSTED_PROXY_COUNT = 1
    StudentFactory(username="alice")
    for i in range(5):
        attempt(f"nobody{i}", "wrong", ip="10.9.9.9", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert attempt("alice", DEFAULT_PASSWORD, ip="10.9.9.9", HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 302
