from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import DEFAULT_PASSWORD, StudentFactory

pytestmark = pytest.mark.django_db


def test_login_page_has_labelled_autofocused_fields_with_autocomplete(client):
    response = client.get("/accounts/login/")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html
    assert 'name="username"' in html and 'name="password"' in html
    assert "autofocus" in html
    assert 'autocomplete="username"' in html
    assert 'autocomplete="current-password"' in html
    assert "Skip to main content" in html  # rendered through base.html


def test_alice_logs_in_and_lands_on_her_dashboard(client):
    alice = StudentFactory(username="alice")

    response = client.post("/accounts/login/", {"username": "alice", "password": DEFAULT_PASSWORD})

    assert response.status_code == 302
    assert response.url == reverse("home")
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_login_follows_next_to_the_page_that_asked(client):
    StudentFactory(username="alice")

    response = client.post(
        "/accounts/login/", {"username": "alice", "password": DEFAULT_PASSWORD, "next": "/accounts/password_change/"}
    )

    assert response.url == "/accounts/password_change/"


def test_a_wrong_password_shows_an_error_linked_to_the_first_field(client):
    StudentFactory(username="alice")

    response = client.post("/accounts/login/", {"username": "alice", "password": "not-it"})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="form-errors" role="alert"' in html
    assert "Please enter a correct username and password" in html
    assert 'aria-describedby="form-errors"' in html
    assert "_auth_user_id" not in client.session


def test_an_empty_username_is_reported_on_the_field(client):
    response = client.post("/accounts/login/", {"username": "", "password": "x"})

    html = response.content.decode()
    assert 'id="id_username_error"' in html
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="id_username_error"' in html


def test_logout_is_a_post_and_ends_the_session(client):
    alice = StudentFactory(username="alice")
    client.force_login(alice)

    assert client.get("/accounts/logout/").status_code == 405  # a link or prefetch cannot log anyone out
    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert response.url == reverse("login")
    assert "_auth_user_id" not in client.session


def test_anonymous_visitors_are_sent_to_login_from_password_change(client):
    response = client.get("/accounts/password_change/")

    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/?next=")


def test_alice_changes_her_password_and_can_log_in_with_the_new_one(client):
    alice = StudentFactory(username="alice")
    client.force_login(alice)

    page = client.get("/accounts/password_change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'autocomplete="current-password"' in html and 'autocomplete="new-password"' in html
    assert 'id="id_new_password1_helptext"' in html

    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": DEFAULT_PASSWORD,
            "new_password1": "a-much-better-phrase",
            "new_password2": "a-much-better-phrase",
        },
    )
    assert response.status_code == 302
    assert response.url == reverse("password_change_done")
    done = client.get(response.url)
    assert done.status_code == 200
    assert "Your password has been changed" in done.content.decode()

    alice.refresh_from_db()
    assert alice.check_password("a-much-better-phrase")


def test_a_wrong_current_password_is_refused_with_a_linked_error(client):
    alice = StudentFactory(username="alice")
    client.force_login(alice)

    response = client.post(
        "/accounts/password_change/",
        {"old_password": "wrong", "new_password1": "a-much-better-phrase", "new_password2": "a-much-better-phrase"},
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="id_old_password_error"' in html
    assert 'aria-describedby="id_old_password_error"' in html
    alice.refresh_from_db()
    assert alice.check_password(DEFAULT_PASSWORD)


def test_every_page_has_an_icon_and_favicon_ico_leads_to_it(client):
    from django.contrib.staticfiles import finders

    html = client.get("/accounts/login/").content.decode()
    assert 'rel="icon" href="/static/img/favicon.svg"' in html
    response = client.get("/favicon.ico")  # what browsers ask for on pages without the link (the admin's)
    assert response.status_code == 302 and response["Location"] == "/static/img/favicon.svg"
    icon = finders.find("img/favicon.svg")
    assert icon and open(icon).read().startswith("<svg")
