"""Review became an app of its own (issue 10): RescoreRun, FlagWithdrawal, FlagDecision and FlagResponse are
review's now. Their tables keep their names and rows; only Django's state moves (review/migrations/0001_initial.py
takes them up)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("proctoring", "0010_facetemplate_id_photo"),
    ]

    operations = [
        # Django's state only: the tables stay where they are, with every row.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="flagresponse",
                    name="flag",
                ),
                migrations.RemoveField(
                    model_name="flagresponse",
                    name="student",
                ),
                migrations.RemoveField(
                    model_name="flagwithdrawal",
                    name="flag",
                ),
                migrations.RemoveField(
                    model_name="flagwithdrawal",
                    name="run",
                ),
                migrations.RemoveField(
                    model_name="rescorerun",
                    name="actor",
                ),
                migrations.RemoveField(
                    model_name="rescorerun",
                    name="exam",
                ),
                migrations.DeleteModel(
                    name="FlagDecision",
                ),
                migrations.DeleteModel(
                    name="FlagResponse",
                ),
                migrations.DeleteModel(
                    name="FlagWithdrawal",
                ),
                migrations.DeleteModel(
                    name="RescoreRun",
                ),
            ],
            database_operations=[],
        ),
    ]
