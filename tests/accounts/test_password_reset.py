"""Password reset by email (Django's own views, our pages), and invitations from the user import: the link in the
email sets a password that then signs in, once."""

from __future__ import annotations

import io
import re

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from accounts.models import User
from accounts.services import users_invite
from tests.conftest import sign_in
from tests.factories import AdminFactory, StudentFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-passphrase-42"
HEADER = "username,email,role,first_name,last_name,password\n"


def link_in(message) -> str:
    [url] = re.findall(r"https?://\S+/accounts/reset/\S+/", message.body)
    return url


def set_password_through(url: str) -> Client:
    client = Client()
    path = re.sub(r"^https?://[^/]+", "", url)
    form = client.get(path, follow=True)  # Django swaps the token for a session and redirects to set-password
    assert form.status_code == 200 and "Choose a new password" in form.content.decode()
    done = client.post(form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"].endswith("/accounts/reset/done/")
    return client


def test_a_student_resets_her_password_by_email_and_signs_in_with_it(client):
    StudentFactory(username="alice", email="alice@example.edu")
    page = client.get("/accounts/login/").content.decode()
    assert 'href="/accounts/password_reset/"' in page
    response = client.post("/accounts/password_reset/", {"email": "alice@example.edu"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password_reset/done/"
    [message] = mail.outbox
    assert message.to == ["alice@example.edu"] and "alice" in message.body
    url = link_in(message)
    set_password_through(url)
    assert sign_in(Client(), "alice", NEW_PASSWORD)
    # The link works once.
    again = Client().get(re.sub(r"^https?://[^/]+", "", url), follow=True).content.decode()
    assert "This link has expired" in again


def test_an_unknown_address_gets_the_same_answer_and_no_email(client):
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.edu"})
    assert response["Location"] == "/accounts/password_reset/done/"  # no hint whether the account exists
    assert mail.outbox == []


def test_the_import_command_invites_new_users_to_choose_a_password(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text(HEADER + "dora,dora@example.edu,student,Dora,,\neve,eve@example.edu,student,Eve,,\n")
    out = io.StringIO()
    call_command("import_users", str(path), "--invite", "--site", "exams.example.edu", stdout=out)
    assert "Sent 2 invitations." in out.getvalue()
    dora_mail = next(m for m in mail.outbox if m.to == ["dora@example.edu"])
    assert 'username is "dora"' in dora_mail.body
    url = link_in(dora_mail)
    assert url.startswith("https://exams.example.edu/")
    assert not User.objects.get(username="dora").has_usable_password()
    set_password_through(url)
    assert sign_in(Client(), "dora", NEW_PASSWORD)


def test_the_admin_import_can_send_the_invitations(client):
    client.force_login(AdminFactory(username="root"))
    upload = SimpleUploadedFile("users.csv", (HEADER + "dora,dora@example.edu,student,Dora,,\n").encode())
    response = client.post("/admin/accounts/user/import-csv/", {"file": upload, "invite": "on"}, follow=True)
    assert "Sent 1 invitation." in response.content.decode()
    [message] = mail.outbox
    assert link_in(message).startswith("http://testserver/accounts/reset/")


def test_a_user_without_an_email_address_is_named_not_invited():
    StudentFactory(username="frank", email="")
    report = users_invite(usernames=["frank"], domain="exams.example.edu", use_https=True)
    assert report.sent == [] and report.without_email == ["frank"]
    assert "No email address, so no invitation: frank." in report.summary()
    assert mail.outbox == []
