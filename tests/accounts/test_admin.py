from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import User
from tests.factories import AdminFactory, InstructorFactory, StudentFactory

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/accounts/user/import-csv/"
CHANGELIST_URL = "/admin/accounts/user/"
HEADER = "username,email,role,first_name,last_name,password\n"


@pytest.fixture
def alice(client):
    alice = AdminFactory(username="alice")
    client.force_login(alice)
    return alice


def _upload(text: str | bytes, name: str = "users.csv") -> SimpleUploadedFile:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return SimpleUploadedFile(name, data, content_type="text/csv")


def test_the_changelist_shows_roles_and_links_to_the_import_page(client, alice):
    InstructorFactory(username="bob")
    StudentFactory(username="charlie")

    response = client.get(CHANGELIST_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert reverse("admin:accounts_user_import_csv") == IMPORT_URL
    assert f'href="{IMPORT_URL}"' in html and "Import users from CSV" in html
    assert "Instructor" in html and "Student" in html
    assert "Face enrolled" in html


def test_the_changelist_filters_and_searches_by_role(client, alice):
    InstructorFactory(username="bob")
    StudentFactory(username="charlie")

    filtered = client.get(CHANGELIST_URL, {"role__exact": "instructor"})
    searched = client.get(CHANGELIST_URL, {"q": "instructor"})

    assert [u.username for u in filtered.context["cl"].result_list] == ["bob"]
    assert [u.username for u in searched.context["cl"].result_list] == ["bob"]


def test_the_changelist_runs_a_constant_number_of_queries(client, alice, django_assert_max_num_queries):
    for i in range(30):
        StudentFactory(username=f"student-{i}")

    # Session, page, two counts, the page again: a query per row (for example the face column) would blow past this.
    with django_assert_max_num_queries(6):
        assert client.get(CHANGELIST_URL).status_code == 200


def test_the_import_page_shows_the_form(client, alice):
    response = client.get(IMPORT_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'enctype="multipart/form-data"' in html
    assert '<label for="id_file"' in html
    assert "username,email,role,first_name,last_name,password" in html


def test_uploading_a_good_file_creates_the_users_and_goes_back_to_the_list(client, alice):
    response = client.post(
        IMPORT_URL,
        {
            "file": _upload(
                HEADER + "bob,bob@example.com,instructor,Bob,,bob-pass-2024x\ncharlie,c@example.com,student,,,\n"
            )
        },
        follow=True,
    )

    assert response.redirect_chain == [(CHANGELIST_URL, 302)]
    html = response.content.decode()
    assert "Created 2 users." in html
    assert "1 user has no usable password" in html
    assert User.objects.get(username="bob").role == "instructor"
    assert User.objects.filter(username="charlie").exists()


def test_uploading_a_bad_file_lists_each_bad_line_and_creates_nobody(client, alice):
    response = client.post(
        IMPORT_URL,
        {
            "file": _upload(
                HEADER + "bob,bob@example.com,instructor,,,\ncharlie,nope,student,,,\ndan,d@example.com,wizard,,,\n"
            )
        },
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "The file was not imported" in html
    assert 'role="alert"' in html
    assert "<td>3</td><td>email &#x27;nope&#x27; is not a valid email address.</td>" in html
    assert "<td>4</td><td>role &#x27;wizard&#x27; is not one of student, instructor, admin.</td>" in html
    assert not User.objects.filter(username__in=["bob", "charlie", "dan"]).exists()


def test_uploading_a_non_utf8_file_is_reported(client, alice):
    response = client.post(
        IMPORT_URL, {"file": _upload((HEADER + "bob,b@example.com,student,Jos\xe9,,\n").encode("latin-1"))}
    )

    assert "not UTF-8 text" in response.content.decode()
    assert not User.objects.filter(username="bob").exists()


def test_a_dry_run_from_the_admin_creates_nobody(client, alice):
    response = client.post(IMPORT_URL, {"file": _upload(HEADER + "bob,bob@example.com,student,,,\n"), "dry_run": "on"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "1 user would be created" in html
    assert "Users that would be created: bob" in html
    assert not User.objects.filter(username="bob").exists()


def test_posting_without_a_file_shows_a_field_error(client, alice):
    response = client.post(IMPORT_URL, {})

    assert response.status_code == 200
    assert 'id="id_file_error"' in response.content.decode()


def test_students_and_instructors_cannot_reach_the_import_page(client):
    for actor in (StudentFactory(username="charlie"), InstructorFactory(username="bob")):
        client.force_login(actor)
        get = client.get(IMPORT_URL)
        post = client.post(IMPORT_URL, {"file": _upload(HEADER + "eve,eve@example.com,admin,,,\n")})
        # The admin sends non-staff users to its own login page.
        assert get.status_code == 302 and get.url.startswith("/admin/login/")
        assert post.status_code == 302
    assert not User.objects.filter(username="eve").exists()


def test_staff_without_the_add_permission_is_refused(client):
    bob = InstructorFactory(username="bob", is_staff=True)
    client.force_login(bob)

    assert client.get(IMPORT_URL).status_code == 403


def test_anonymous_visitors_are_sent_to_the_admin_login(client):
    response = client.get(IMPORT_URL)

    assert response.status_code == 302
    assert response.url.startswith("/admin/login/")


def test_exporting_selected_users_gives_a_csv_the_import_accepts(client, alice):
    bob = InstructorFactory(username="bob", first_name="=HYPERLINK(evil)")
    charlie = StudentFactory(username="charlie")

    response = client.post(CHANGELIST_URL, {"action": "export_csv", "_selected_action": [bob.pk, charlie.pk]})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="users-')
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["username", "email", "role", "first_name", "last_name"]
    assert rows[1] == ["bob", "bob@example.com", "instructor", "'=HYPERLINK(evil)", "Example"]
    assert rows[2] == ["charlie", "charlie@example.com", "student", "Charlie", "Example"]


def test_making_someone_an_admin_in_the_change_form_grants_admin_access(client, alice):
    bob = InstructorFactory(username="bob")
    url = reverse("admin:accounts_user_change", args=[bob.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k not in ("groups", "user_permissions")}
    data.update(
        {
            "role": "admin",
            "date_joined_0": bob.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": bob.date_joined.strftime("%H:%M:%S"),
        }
    )
    data.pop("date_joined", None)
    data.pop("last_login", None)

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    bob.refresh_from_db()
    assert (bob.role, bob.is_staff, bob.is_superuser) == ("admin", True, True)


def test_adding_an_admin_in_the_admin_grants_admin_access(client, alice):
    response = client.post(
        reverse("admin:accounts_user_add"),
        {"username": "dora", "email": "dora@example.com", "role": "admin", "usable_password": "false"},
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    dora = User.objects.get(username="dora")
    assert (dora.is_staff, dora.is_superuser) == (True, True)
    assert not dora.has_usable_password()
