from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models

from examsite.timezones import validate_time_zone


class User(AbstractUser):
    """A person using the platform. The role decides which dashboard and which pages they get."""

    class Role(models.TextChoices):
        STUDENT = "student", "Student"
        INSTRUCTOR = "instructor", "Instructor"
        ADMIN = "admin", "Admin"

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STUDENT, db_index=True)
    # An IANA zone ("Europe/Berlin"). Empty: the zone the browser reports (examsite.middleware.TimeZoneMiddleware).
    time_zone = models.CharField(
        max_length=64, blank=True, validators=[validate_time_zone],
        help_text="Times are shown in this zone. Empty: the zone of the person's browser.",
    )  # fmt: skip

    class Meta:
        ordering = ["username"]

    @property
    def is_student(self) -> bool:
        return self.role == self.Role.STUDENT

    @property
    def is_instructor(self) -> bool:
        return self.role == self.Role.INSTRUCTOR

    @property
    def is_platform_admin(self) -> bool:
        return self.role == self.Role.ADMIN or self.is_superuser

    def __str__(self) -> str:
        full = self.get_full_name()
        return f"{full} ({self.username})" if full else self.username
