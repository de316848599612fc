from __future__ import annotations

app_name = "proctoring"
urlpatterns: list = []
