"""Review's models, taken over from proctoring (proctoring/migrations/0011_review_models_moved.py) with their
tables (`db_table`) and rows as they were: Django's state only."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

REVIEW_MODELS = ("rescorerun", "flagwithdrawal", "flagdecision", "flagresponse")


def move_content_types(apps, schema_editor):
    """The models' content types follow them, so permissions granted on them (and admin log entries) still apply.
    A fresh database has none yet: they are made after migrating, already under review."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in REVIEW_MODELS:
        if not ContentType.objects.using(db).filter(app_label="review", model=model).exists():
            ContentType.objects.using(db).filter(app_label="proctoring", model=model).update(app_label="review")


def move_content_types_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in REVIEW_MODELS:
        if not ContentType.objects.using(db).filter(app_label="proctoring", model=model).exists():
            ContentType.objects.using(db).filter(app_label="review", model=model).update(app_label="proctoring")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("exams", "0004_exam_photo_id_required"),
        ("proctoring", "0011_review_models_moved"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # Django's state only: the tables stay where they are, with every row.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="RescoreRun",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("settings_before", models.JSONField(blank=True, default=dict)),
                        ("settings_after", models.JSONField(blank=True, default=dict)),
                        ("summary", models.JSONField(blank=True, default=dict)),
                        ("applied_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "actor",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "exam",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="rescore_runs",
                                to="exams.exam",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "proctoring_rescorerun",
                        "ordering": ["-applied_at", "-id"],
                    },
                ),
                migrations.CreateModel(
                    name="FlagWithdrawal",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("at", models.DateTimeField(auto_now_add=True)),
                        (
                            "flag",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="withdrawal",
                                to="proctoring.flag",
                            ),
                        ),
                        (
                            "run",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="withdrawals",
                                to="review.rescorerun",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "proctoring_flagwithdrawal",
                    },
                ),
                migrations.CreateModel(
                    name="FlagDecision",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("flag_ref", models.PositiveBigIntegerField()),
                        ("attempt_id", models.PositiveBigIntegerField(null=True)),
                        (
                            "action",
                            models.CharField(
                                choices=[
                                    ("confirm", "Confirmed"),
                                    ("dismiss", "Dismissed"),
                                    ("reopen", "Reopened"),
                                    ("rescore_create", "Raised by re-scoring"),
                                    ("rescore_update", "Updated by re-scoring"),
                                    ("rescore_withdraw", "Withdrawn by re-scoring"),
                                    ("rescore_restore", "Restored by re-scoring"),
                                ],
                                max_length=32,
                            ),
                        ),
                        ("from_status", models.CharField(blank=True, max_length=16)),
                        ("to_status", models.CharField(blank=True, max_length=16)),
                        ("note", models.TextField(blank=True)),
                        ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        (
                            "actor",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="flag_decisions",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "flag",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="decisions",
                                to="proctoring.flag",
                            ),
                        ),
                        (
                            "run",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="decisions",
                                to="review.rescorerun",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "proctoring_flagdecision",
                        "ordering": ["-at", "-id"],
                    },
                ),
                migrations.CreateModel(
                    name="FlagResponse",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("text", models.TextField()),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "flag",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="responses",
                                to="proctoring.flag",
                            ),
                        ),
                        (
                            "student",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="flag_responses",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "proctoring_flagresponse",
                        "ordering": ["created_at", "id"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("flag", "student"), name="one_response_per_flag_and_student"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
