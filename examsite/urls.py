from django.contrib import admin
from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import include, path


def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """Browsers ask for /favicon.ico on every page without a <link rel="icon"> (the admin's): send them the icon."""
    return HttpResponseRedirect(static("img/favicon.svg"))


urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("favicon.ico", favicon),
    path("", include("exams.urls")),
    path("", include("proctoring.urls")),
    path("", include("proctoring.review.urls")),
    path("lti/", include("exams.lti.urls")),
]
