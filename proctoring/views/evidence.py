"""Evidence serving: snapshots only to the exam's owning instructor and admins, never cached, always audited."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from proctoring.permissions import user_can_view_evidence
from proctoring.selectors import snapshot_with_exam
from proctoring.services.evidence import evidence_view_record, identity_view_record, snapshot_read
from proctoring.services.identity import IdentityError, identity_photo_for_viewer


@login_required
@require_GET
def snapshot_view(request: HttpRequest, snapshot_id: int) -> HttpResponse:
    snapshot = snapshot_with_exam(snapshot_id=snapshot_id)
    if snapshot is None:
        raise Http404("No such snapshot")
    if not user_can_view_evidence(user=request.user, exam_owner_id=snapshot.flag.session.attempt.exam.owner_id):
        raise PermissionDenied("Only the exam's instructor and admins can view evidence")
    try:
        data = snapshot_read(snapshot=snapshot)
    except FileNotFoundError:
        raise Http404("The snapshot file is gone (retention purge)") from None
    evidence_view_record(viewer=request.user, snapshot=snapshot)
    return _private_jpeg(data, f"snapshot-{snapshot.pk}.jpg")


@login_required
@require_GET
def identity_photo(request: HttpRequest, student_id: int, kind: str) -> HttpResponse:
    """A student's enrolment or reference photo, to someone who may verify them (issue 11); audited like evidence."""
    try:
        data = identity_photo_for_viewer(actor=request.user, student_id=student_id, kind=kind)
    except IdentityError:
        raise Http404("No such photo among your students") from None
    identity_view_record(viewer=request.user, student_id=student_id, kind=kind)
    return _private_jpeg(data, f"{kind}-{student_id}.jpg")


def _private_jpeg(data: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type="image/jpeg")
    # Evidence must never sit in a shared cache or the browser's disk cache.
    response["Cache-Control"] = "private, no-store, max-age=0"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response
