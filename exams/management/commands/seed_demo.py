"""Demo data: an admin, an instructor, three students and two open, published exams: "Demo exam", and "Identity
demo exam", which asks for a photo ID and an enrolment that matches it (or a reference photo), or a person's
approval, before it starts (issue 11; the README walks through it).

Idempotent: a second run creates nothing and changes no password; it only moves a demo exam's window forward
when it would otherwise have closed, so the demos can always be sat.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from exams import services
from exams.models import Exam, Question

DEFAULT_PASSWORD = "demo-pass-123"
DEMO_TITLE = "Demo exam"
IDENTITY_DEMO_TITLE = "Identity demo exam"
# title -> what else the exam asks for.
DEMO_EXAMS: dict[str, dict[str, Any]] = {
    DEMO_TITLE: {},
    IDENTITY_DEMO_TITLE: {"identity_assurance": Exam.IdentityAssurance.MATCHED, "photo_id_required": True},
}

USERS = [
    # username, role, first name, last name, staff, superuser
    ("admin", User.Role.ADMIN, "Ada", "Admin", True, True),
    ("instructor", User.Role.INSTRUCTOR, "Ivan", "Instructor", False, False),
    ("student1", User.Role.STUDENT, "Alice", "Student", False, False),
    ("student2", User.Role.STUDENT, "Bob", "Student", False, False),
    ("student3", User.Role.STUDENT, "Charlie", "Student", False, False),
]

QUESTIONS: list[dict[str, Any]] = [
    {
        "kind": Question.Kind.SINGLE,
        "text": "Which planet is closest to the Sun?",
        "points": 1,
        "choices": [("Venus", False), ("Mercury", True), ("Mars", False), ("Earth", False)],
    },
    {
        "kind": Question.Kind.MULTIPLE,
        "text": "Which of these numbers are prime?",
        "points": 2,
        "choices": [("2", True), ("9", False), ("11", True), ("15", False)],
    },
    {
        "kind": Question.Kind.SINGLE,
        "text": "What is the boiling point of water at sea level?",
        "points": 1,
        "choices": [("90 °C", False), ("100 °C", True), ("120 °C", False)],
    },
    {
        "kind": Question.Kind.SHORT,
        "text": "In one or two sentences, explain why the sky looks blue.",
        "points": 3,
        "choices": [],
    },
]


class Command(BaseCommand):
    help = "Create demo users and an open 'Demo exam' (idempotent). Prints the logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            default=DEFAULT_PASSWORD,
            help=f"Password for newly created demo users (default: {DEFAULT_PASSWORD}). Existing users keep theirs.",
        )

    def handle(self, *args: Any, password: str, **options: Any) -> None:
        if not password:
            self.stderr.write("The password can't be empty.")
            raise SystemExit(2)
        now = timezone.now()
        created_users: dict[str, bool] = {}
        with transaction.atomic():
            users = {}
            for username, role, first, last, staff, superuser in USERS:
                user, created = User.objects.get_or_create(
                    username=username,
                    defaults={
                        "role": role,
                        "first_name": first,
                        "last_name": last,
                        "email": f"{username}@example.com",
                        "is_staff": staff,
                        "is_superuser": superuser,
                    },
                )
                if created:
                    user.set_password(password)
                    user.save(update_fields=["password"])
                users[username] = user
                created_users[username] = created

            students = [users["student1"], users["student2"], users["student3"]]
            states = []
            for title, extra in DEMO_EXAMS.items():
                exam, state = _demo_exam(owner=users["instructor"], title=title, now=now, **extra)
                report = services.enrollment_add_many(exam=exam, users=students)
                states.append(f"{title} (id {exam.id}): {state}; {len(report.added)} newly enrolled.")

        for line in states:
            self.stdout.write(line)
        self.stdout.write("Logins (username / password):")
        for username, role, *_ in USERS:
            shown = password if created_users[username] else "(existing user: password unchanged)"
            self.stdout.write(f"  {username:<11} {role.label:<11} {shown}")


def _demo_exam(*, owner: User, title: str, now, **extra: Any) -> tuple[Exam, str]:
    """The demo exam of this title, created with its questions the first time; its window reopened if need be."""
    exam = Exam.objects.filter(owner=owner, title=title).first()
    if exam is None:
        exam = services.exam_create(
            owner=owner,
            title=title,
            instructions=(
                "This is a short demo exam. Answer each question; your answers save as you go.\n"
                "The timer shows the time left. Submit when you are done."
            ),
            opens_at=now - timedelta(days=1),
            closes_at=now + timedelta(days=30),
            duration_minutes=30,
            max_attempts=1,
            proctoring_enabled=True,
            **extra,
        )
        for spec in QUESTIONS:
            services.question_create(
                exam=exam,
                kind=spec["kind"],
                text=spec["text"],
                points=spec["points"],
                choices=[services.ChoiceSpec(text=t, is_correct=c) for t, c in spec["choices"]],
            )
        state = "created"
    else:
        state = "already there"
        # Keep the demo sittable: reopen a window that has closed or is about to, and never move it while it is
        # comfortably open (that would be a change for nothing).
        if exam.opens_at > now or exam.closes_at < now + timedelta(days=1):
            exam.opens_at = min(exam.opens_at, now - timedelta(days=1))
            exam.closes_at = now + timedelta(days=30)
            exam.save(update_fields=["opens_at", "closes_at", "updated_at"])
            state = "window reopened"
    if not exam.published:
        services.exam_publish(exam=exam, published=True)
    return exam, state
