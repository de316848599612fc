"""The Celery app.

Inference workers run `celery -A examsite worker -Q inference --pool prefork --prefetch-multiplier 1`.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examsite.settings")

app = Celery("examsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
