"""LTI rules against the real platform server: accounts by issuer and sub (never by name), roles, grades that fail
and are retried visibly, regrades, the roster's filters, and ACS only on a person's confirmation (issue 13)."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone
from lti_tool.models import LtiResourceLink, LtiUser

from accounts.models import User
from exams import services as exam_services
from exams.lti import services
from exams.lti.models import ExamLink, GradeSend
from exams.models import Attempt, Question
from proctoring.models import Flag, ProctoringSession
from proctoring.review.services.decisions import flag_review
from tests.factories import ExamFactory, InstructorFactory, StudentFactory
from tests.lti.conftest import INSTRUCTOR, LEARNER
from tests.lti.test_launch_security import id_token, login

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def platform(platform_for, live_server):
    # The platform fetches the tool's key set (for service tokens) from the live server; the test client's launches
    # go to the tool directly.
    return platform_for(live_server.url)


def launch_as(client, platform, sub: str, roles: list[str], **claims):
    state, nonce = login(client, platform, hint=sub)
    token = id_token(platform, nonce, sub=sub, **{"https://purl.imsglobal.org/spec/lti/claim/roles": roles}, **claims)
    return client.post("/lti/launch/", {"id_token": token, "state": state})


def ags(platform, link="rl-1"):
    return {
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": [services.AGS_SCORE],
            "lineitems": f"{platform.url}/lineitems",
            "lineitem": f"{platform.url}/lineitems/{link}",
        },
        "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
            "context_memberships_url": f"{platform.url}/memberships",
            "service_versions": ["2.0"],
        },
    }


def linked_exam(client, platform, *, questions=(("SINGLE", 2),)):
    """An exam of a local instructor, linked to rl-1 by alice's first launch (which records the link)."""
    exam = ExamFactory(published=True, opens_at=timezone.now() - timedelta(hours=1))
    for kind, points in questions:
        exam_services.question_create(
            exam=exam,
            kind=getattr(Question.Kind, kind),
            text="Q",
            points=points,
            choices=[exam_services.ChoiceSpec(text="yes", is_correct=True), exam_services.ChoiceSpec(text="no")]
            if kind == "SINGLE"
            else [],
        )
    launch_as(client, platform, "alice-sub", [LEARNER], **ags(platform))
    ExamLink.objects.create(
        resource_link=LtiResourceLink.objects.get(id_on_platform="rl-1"),
        exam=exam,
        lineitem_url=f"{platform.url}/lineitems/rl-1",
    )
    client.logout()
    assert launch_as(client, platform, "alice-sub", [LEARNER], **ags(platform))["Location"] == f"/exams/{exam.pk}/"
    return exam


def sit(exam, user, *, right=True):
    attempt = exam_services.attempt_start(exam=exam, student=user)
    for question in exam.questions.all():
        if question.is_choice and right:
            right_choice = question.choices.get(is_correct=True)
            exam_services.answer_save(attempt=attempt, question=question, choice_ids=[right_choice.pk])
        elif not question.is_choice:
            exam_services.answer_save(attempt=attempt, question=question, text="Because of Rayleigh scattering.")
    return exam_services.attempt_submit(attempt=attempt)


def set_failing(platform, on: bool) -> None:
    urllib.request.urlopen(f"{platform.url}/fail_scores?on={int(on)}", timeout=10).read()


def test_an_lms_user_never_takes_over_a_local_account_of_the_same_name_or_email(client, platform):
    local = StudentFactory(username="alice-sub", email="alice@uni.example")
    launch_as(client, platform, "alice-sub", [LEARNER], email="alice@uni.example")
    lti_user = LtiUser.objects.get(sub="alice-sub").auth_user
    assert lti_user.pk != local.pk and lti_user.username.startswith("lti-")
    # The same issuer and sub is the same account next time.
    client.logout()
    launch_as(client, platform, "alice-sub", [LEARNER])
    assert User.objects.filter(lti_users__sub="alice-sub").count() == 1


def test_roles_map_and_an_instructor_is_never_demoted_nor_anyone_made_an_admin(client, platform):
    launch_as(client, platform, "ivan-sub", [INSTRUCTOR])
    ivan = LtiUser.objects.get(sub="ivan-sub").auth_user
    assert ivan.role == User.Role.INSTRUCTOR
    client.logout()
    launch_as(client, platform, "ivan-sub", [LEARNER])
    ivan.refresh_from_db()
    assert ivan.role == User.Role.INSTRUCTOR
    designer = "http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper"
    admin = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
    client.logout()
    launch_as(client, platform, "dora-sub", [designer, admin])
    dora = LtiUser.objects.get(sub="dora-sub").auth_user
    assert dora.role == User.Role.INSTRUCTOR and not dora.is_staff and not dora.is_superuser


def test_a_failed_grade_is_kept_visible_and_sent_again_later(client, platform):
    exam = linked_exam(client, platform)
    alice = LtiUser.objects.get(sub="alice-sub").auth_user
    set_failing(platform, True)
    attempt = sit(exam, alice)
    grade = GradeSend.objects.get(attempt=attempt)
    assert (grade.status, grade.tries) == ("failed", 1) and "503" in grade.last_error
    client.force_login(exam.owner)
    page = client.get(f"/lti/exams/{exam.pk}/").content.decode()
    assert "Failed; will be retried" in page and "503" in page
    # Another instructor cannot see the exam's LMS page (nor learn that the exam exists).
    client.force_login(InstructorFactory())
    assert client.get(f"/lti/exams/{exam.pk}/").status_code == 404
    client.force_login(exam.owner)
    set_failing(platform, False)
    call_command("lti_send_grades")
    grade.refresh_from_db()
    assert (grade.status, grade.tries) == ("sent", 2)
    assert [s["scoreGiven"] for s in platform.records()["scores"]] == [2.0]


def test_a_regrade_sends_the_new_score(client, platform):
    exam = linked_exam(client, platform, questions=(("SINGLE", 2), ("SHORT", 3)))
    alice = LtiUser.objects.get(sub="alice-sub").auth_user
    attempt = sit(exam, alice)
    answer = attempt.answers.get(question__kind=Question.Kind.SHORT)
    exam_services.answer_grade(answer=answer, grader=exam.owner, points=Decimal("2.5"))
    sent = [(s["scoreGiven"], s["scoreMaximum"], s["gradingProgress"]) for s in platform.records()["scores"]]
    assert sent == [(2.0, 5.0, "PendingManual"), (4.5, 5.0, "FullyGraded")]


def test_the_roster_enrols_active_learners_only(client, platform):
    exam = linked_exam(client, platform)
    report = services.roster_sync(link=ExamLink.objects.get(exam=exam))
    assert (report.students, report.skipped) == (2, 2)  # alice, bob; not ivan (instructor) nor the inactive one
    enrolled = set(exam.enrollments.values_list("student__lti_users__sub", flat=True))
    assert enrolled == {"alice-sub", "bob-sub"}
    bob = LtiUser.objects.get(sub="bob-sub").auth_user
    assert (bob.role, bob.get_full_name(), bob.email) == ("student", "Bob Brown", "bob@uni.example")


def test_only_a_persons_confirmation_reaches_the_assessment_control_service(client, platform):
    exam = linked_exam(client, platform)
    alice = LtiUser.objects.get(sub="alice-sub").auth_user
    attempt = exam_services.attempt_start(exam=exam, student=alice)
    link = ExamLink.objects.get(exam=exam)
    link.handovers.create(
        lti_user=LtiUser.objects.get(sub="alice-sub"),
        user=alice,
        attempt_number="1",
        start_assessment_url=f"{platform.url}/start_assessment",
        acs_url=f"{platform.url}/acs",
        acs_actions=["flag"],
        attempt=attempt,
    )
    session = ProctoringSession.objects.create(attempt=attempt, started_at=attempt.started_at)
    flags = [
        Flag.objects.create(session=session, kind=kind, started_at=attempt.started_at, confidence=0.8, threshold=0.5)
        for kind in ("phone_detected", "looking_away")
    ]
    flag_review(flag_id=flags[1].pk, actor=exam.owner, decision="dismiss")
    assert platform.records()["acs"] == []  # raised by the rules, dismissed by a person: nothing sent
    flag_review(flag_id=flags[0].pk, actor=exam.owner, decision="confirm", note="Phone in hand.")
    [sent] = platform.records()["acs"]
    assert (sent["action"], sent["reason_code"], sent["incident_severity"]) == ("flag", "phone_detected", 0.8)
    assert attempt.status == Attempt.Status.IN_PROGRESS  # a flag never ends the attempt by itself


def test_the_setup_page_says_what_to_paste_and_is_for_admins_only(client, platform):
    from tests.factories import AdminFactory, InstructorFactory

    client.force_login(InstructorFactory())
    assert client.get("/lti/setup/").status_code == 403
    client.force_login(AdminFactory())
    page = client.get("/lti/setup/").content.decode()
    assert f"http://testserver/lti/login/{platform.registration.uuid}/" in page
    assert "http://testserver/lti/launch/" in page and "http://testserver/lti/jwks/" in page
    assert "dep-1" in page and "Moodle" in page and "Canvas" in page and "Open edX" in page
    assert json.loads(client.get("/lti/jwks/").content)["keys"]


def test_a_course_link_opens_only_an_exam_this_tool_signed_for_that_lms(client, platform):
    """Deep linking puts a signed exam token in the link's custom parameters; a hand-edited or foreign one is
    ignored, so an LMS administrator cannot point a link at someone else's exam."""
    from django.core import signing

    exam = ExamFactory(published=True)
    forged = {"exam": signing.dumps({"exam": exam.pk, "registration": 999}, salt=services.EXAM_TOKEN_SALT)}
    custom = "https://purl.imsglobal.org/spec/lti/claim/custom"
    answer = launch_as(client, platform, "alice-sub", [LEARNER], **{custom: forged})
    assert answer.status_code == 404 and not ExamLink.objects.exists()
    client.logout()
    tampered = {"exam": signing.dumps({"exam": exam.pk, "registration": platform.registration.pk}) + "x"}
    assert launch_as(client, platform, "alice-sub", [LEARNER], **{custom: tampered}).status_code == 404
    client.logout()
    good = {"exam": signing.dumps({"exam": exam.pk, "registration": platform.registration.pk},
                                  salt=services.EXAM_TOKEN_SALT)}  # fmt: skip
    assert launch_as(client, platform, "alice-sub", [LEARNER], **{custom: good})["Location"] == f"/exams/{exam.pk}/"


def test_rotating_keys_publishes_both_and_signs_with_the_new_one(client, platform):
    from lti_tool.models import Key

    services.tool_key_ensure()
    call_command("rotate_keys")
    keys = client.get("/lti/jwks/").json()["keys"]
    assert len(keys) == 2 and Key.objects.active().count() == 2
    newest = Key.objects.order_by("-datetime_created").first()
    registration = platform.registration.to_registration()
    assert registration.get_tool_public_key() == newest.public_key
    # The platform checks a service token signed with the new key against the published set.
    exam = linked_exam(client, platform)
    assert services.roster_sync(link=ExamLink.objects.get(exam=exam)).students == 2


@pytest.mark.usefixtures("live_server")
def test_an_admin_registers_a_platform_with_its_deployment_in_the_admin(client):
    from lti_tool.models import LtiRegistration

    from tests.factories import AdminFactory

    client.force_login(AdminFactory())
    add = "/admin/lti_tool/ltiregistration/add/"
    assert client.get(add).status_code == 200
    answer = client.post(
        add,
        {
            "name": "University Moodle",
            "uuid": "0b5c3f8e-2f43-4b1a-9f3e-5d2c7a1e9b10",
            "issuer": "https://moodle.uni.example",
            "client_id": "AbC123",
            "audience": "",
            "auth_url": "https://moodle.uni.example/mod/lti/auth.php",
            "token_url": "https://moodle.uni.example/mod/lti/token.php",
            "keyset_url": "https://moodle.uni.example/mod/lti/certs.php",
            "is_active": "on",
            "public_key": "",
            "private_key": "",
            "deployments-TOTAL_FORMS": "1",
            "deployments-INITIAL_FORMS": "0",
            "deployments-MIN_NUM_FORMS": "0",
            "deployments-MAX_NUM_FORMS": "1000",
            "deployments-0-deployment_id": "7",
            "deployments-0-is_active": "on",
        },
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    registration = LtiRegistration.objects.get(client_id="AbC123")
    assert list(registration.deployments.values_list("deployment_id", "is_active")) == [("7", True)]
    page = client.get("/lti/setup/").content.decode()
    assert f"/lti/login/{registration.uuid}/" in page and "University Moodle" in page and "<code>7</code>" in page


def test_another_instructor_of_the_course_is_told_whose_exam_the_link_opens(client, platform):
    exam = linked_exam(client, platform)
    client.logout()
    answer = launch_as(client, platform, "ivan-sub", [INSTRUCTOR], **ags(platform))
    body = answer.content.decode()
    assert answer.status_code == 403 and f"which {exam.owner.get_full_name() or exam.owner.username} manages" in body
    assert "Nothing was recorded" not in body  # the launch itself was good: Ivan is signed in


def test_the_owner_of_a_linked_exam_lands_on_its_management_page(client, platform):
    launch_as(client, platform, "ivan-sub", [INSTRUCTOR], **ags(platform))  # records the course link
    ivan = LtiUser.objects.get(sub="ivan-sub").auth_user
    exam = ExamFactory(owner=ivan, title="Ivan's quiz")
    ExamLink.objects.create(resource_link=LtiResourceLink.objects.get(id_on_platform="rl-1"), exam=exam)
    client.logout()
    answer = launch_as(client, platform, "ivan-sub", [INSTRUCTOR], **ags(platform))
    assert answer["Location"] == f"/exams/{exam.pk}/"
    page = client.get(answer["Location"]).content.decode()
    assert "Edit exam settings" in page and "In your LMS: roster and grades" in page
    assert not exam.enrollments.exists()  # an instructor is not enrolled as a student
