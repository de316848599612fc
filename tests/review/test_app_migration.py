"""Review became an app of its own (issue 10) without touching a row: a database filled at the last migration of
the old layout (FlagDecision, FlagWithdrawal, FlagResponse and RescoreRun in proctoring) migrates forward with every
row, its evidence files served as before, and the permissions granted on the moved models kept."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from proctoring.models import Flag, Snapshot
from proctoring.review.models import FlagDecision, FlagResponse, FlagWithdrawal, RescoreRun
from proctoring.services.evidence import snapshot_read
from tests.review.builders import build_proctored_attempt

OLD_LAYOUT = [("proctoring", "0010_facetemplate_id_photo"), ("review", None)]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


@pytest.mark.django_db(transaction=True)
def test_a_database_of_the_old_layout_keeps_every_row_and_file(client, exam, alice, charlie):
    attempt = build_proctored_attempt(exam=exam, student=alice)
    flags = list(Flag.objects.filter(session__attempt=attempt).order_by("pk"))
    snapshots = {s.pk: snapshot_read(snapshot=s) for s in Snapshot.objects.filter(flag__in=flags)}
    assert len(flags) >= 3 and snapshots

    old = _migrate(OLD_LAYOUT).loader.project_state(OLD_LAYOUT[0]).apps
    # The old code's models: review's records were proctoring's.
    OldRun = old.get_model("proctoring", "RescoreRun")
    OldWithdrawal = old.get_model("proctoring", "FlagWithdrawal")
    OldDecision = old.get_model("proctoring", "FlagDecision")
    OldResponse = old.get_model("proctoring", "FlagResponse")
    with pytest.raises(LookupError):
        old.get_app_config("review")
    confirmed, withdrawn = flags[0], flags[1]
    run = OldRun.objects.create(exam_id=exam.pk, actor_id=charlie.pk, settings_before={"a": 1}, settings_after={"a": 2})
    OldWithdrawal.objects.create(flag_id=withdrawn.pk, run_id=run.pk)
    OldDecision.objects.create(
        flag_id=confirmed.pk,
        flag_ref=confirmed.pk,
        attempt_id=attempt.pk,
        actor_id=charlie.pk,
        action="confirm",
        from_status="open",
        to_status="confirmed",
        note="Phone in view for a minute.",
        at=timezone.now(),
    )
    OldDecision.objects.create(
        flag_id=withdrawn.pk, flag_ref=withdrawn.pk, actor_id=charlie.pk, action="rescore_withdraw", run_id=run.pk
    )
    OldResponse.objects.create(flag_id=confirmed.pk, student_id=alice.pk, text="It was my calculator.")
    Flag.objects.filter(pk=confirmed.pk).update(status=Flag.Status.CONFIRMED)
    # A permission granted on a moved model, through the content type the old layout made.
    old_type = ContentType.objects.get_or_create(app_label="proctoring", model="flagdecision")[0]
    permission = Permission.objects.get_or_create(
        content_type=old_type, codename="view_flagdecision", defaults={"name": "Can view flag decision"}
    )[0]
    charlie.user_permissions.add(permission)

    _migrate(_leaves())
    assert not MigrationExecutor(connection).migration_plan(_leaves())  # fully migrated

    decisions = FlagDecision.objects.order_by("pk")
    assert [(d.flag_id, d.action, d.run_id) for d in decisions] == [
        (confirmed.pk, "confirm", None),
        (withdrawn.pk, "rescore_withdraw", run.pk),
    ]
    assert decisions[0].note == "Phone in view for a minute."
    assert RescoreRun.objects.get().settings_after == {"a": 2}
    assert FlagWithdrawal.objects.get().flag == withdrawn
    assert FlagResponse.objects.get().flag == confirmed
    assert Flag.objects.get(pk=confirmed.pk).decisions.count() == 1  # the reverse relations still reach them
    # The content type moved with its model: the permission is review's now, and still charlie's.
    moved = ContentType.objects.get(pk=old_type.pk)
    assert (moved.app_label, moved.model) == ("review", "flagdecision")
    assert charlie.__class__.objects.get(pk=charlie.pk).has_perm("review.view_flagdecision")

    # The review page reads it all, and every evidence file is served as it was.
    client.force_login(charlie)
    page = client.get(reverse("review:attempt", args=[attempt.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Phone in view for a minute." in body and "It was my calculator." in body
    for pk, data in snapshots.items():
        response = client.get(reverse("proctoring:snapshot", args=[pk]))
        assert response.status_code == 200 and response.content == data


def _leaves():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()
