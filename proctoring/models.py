from __future__ import annotations

from django.conf import settings
from django.db import models


class FaceTemplate(models.Model):
    """A student's enrolled face: the normalised embedding and the model that made it.

    An embedding belongs to its model. A session whose pack or model id differs from the current one must re-enrol
    rather than compare vectors from different embedding spaces.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="face_template")
    pack = models.CharField(max_length=64)
    model_id = models.CharField(max_length=128)
    # float32 little-endian, L2-normalised.
    embedding = models.BinaryField()
    dim = models.PositiveIntegerField()
    # The student's own neutral head pose, in degrees; live pose is judged relative to it.
    neutral_yaw = models.FloatField(default=0.0)
    neutral_pitch = models.FloatField(default=0.0)
    neutral_roll = models.FloatField(default=0.0)
    frames_used = models.PositiveIntegerField(default=0)
    quality = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Face template of {self.user} ({self.pack}/{self.model_id})"
