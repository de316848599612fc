"""A real LTI 1.3 platform for the LTI tests, run as a server of its own: the PyPI package `lti1p3platform` (its
registration, OIDC launch, JWT signing, access tokens, deep linking validation) behind a few Django views.

    python -m tests.lti.platform --config CONFIG.json --port PORT

CONFIG names the platform (issuer, client id, deployment id, its RSA key), the tool's URLs, the users (with their
LIS roles) and the course. Endpoints:
- `/start?user=alice&link=rl-1&kind=resource|deep_link|start_proctoring|end_assessment&attempt=1`: what a click in
  the course does: a third-party initiated login at the tool (lti_message_hint carries the rest);
- `/authorize`: the OIDC authorisation endpoint the tool sends the browser to; answers with the signed id_token in
  an auto-submitting form (lti1p3platform's launch);
- `/jwks`, `/token` (client credentials, lti1p3platform's get_access_token);
- `/memberships` (NRPS) and `/lineitems/<id>/scores` (AGS), which need a token this platform signed;
- `/deep_link_return` (validated by lti1p3platform), `/start_assessment` (LTI Proctoring Services' LtiStartAssessment:
  lti1p3platform has no such message, so it is checked here with the same library's key handling, as Open edX's
  consumer does) and `/acs` (Assessment Control Service);
- `/records`: everything received, as JSON, for the test to assert on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from socketserver import ThreadingMixIn
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
AP = "https://purl.imsglobal.org/spec/lti-ap/claim/"
RECORDS: dict[str, list] = {"scores": [], "deep_links": [], "start_assessments": [], "acs": [], "tokens": []}
# Links the course gained by deep linking: "dl-1", "dl-2", ... -> the content item the tool sent.
ADDED_LINKS: dict[str, dict] = {}
# Switched by /fail_scores?on=1: the grade book answers 503, to test retries.
FAILING = {"scores": False}
LOCK = threading.Lock()


def configure(config: dict) -> None:
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-platform",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        USE_TZ=True,
        PLATFORM=config,
    )
    import django

    django.setup()


def _config() -> dict:
    from django.conf import settings

    return settings.PLATFORM


def _platform():
    """lti1p3platform's registration of the tool, and a platform config around it."""
    from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
    from lti1p3platform.registration import Registration

    cfg = _config()
    registration = (
        Registration()
        .set_iss(cfg["issuer"])
        .set_client_id(cfg["client_id"])
        .set_deployment_id(cfg["deployment_id"])
        .set_oidc_login_url(cfg["tool_login_url"])
        .set_launch_url(cfg["tool_launch_url"])
        .set_deeplink_launch_url(cfg["tool_launch_url"])
        .set_platform_public_key(cfg["public_key"])
        .set_platform_private_key(cfg["private_key"])
        .set_tool_key_set_url(cfg["tool_jwks_url"])
    )

    class Platform(LTI1P3PlatformConfAbstract):
        def init_platform_config(self, **kwargs):
            pass

        def get_registration_by_params(self, **kwargs):
            return registration

    platform = Platform()
    platform.get_registration()
    return platform


def _request(request):
    from lti1p3platform.framework.django.request import DjangoRequest

    return DjangoRequest(request)


def _launch_class():
    from django.http import HttpResponse
    from django.utils.html import escape
    from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract

    class Launch(LTIAdvantageMessageLaunchAbstract):
        def render_launch_form(self, launch_data, **kwargs):
            return HttpResponse(
                "<!doctype html><html><body><p>Launching the tool…</p>"
                f'<form id="launch" method="post" action="{escape(launch_data["launch_url"])}">'
                f'<input type="hidden" name="id_token" value="{escape(launch_data["id_token"])}">'
                f'<input type="hidden" name="state" value="{escape(launch_data["state"])}">'
                '<button type="submit">Continue</button></form>'
                "<script>document.getElementById('launch').submit();</script></body></html>"
            )

    return Launch


# --- views ----------------------------------------------------------------------------------------------------


def start(request):
    """A click on the tool in the course: OIDC third-party initiated login at the tool."""
    from django.http import HttpResponseRedirect

    cfg = _config()
    hint = json.dumps(
        {
            "link": request.GET.get("link", "rl-1"),
            "kind": request.GET.get("kind", "resource"),
            "attempt": request.GET.get("attempt", "1"),
        }
    )
    params = {
        "iss": cfg["issuer"],
        "login_hint": request.GET["user"],
        "target_link_uri": cfg["tool_launch_url"],
        "lti_message_hint": hint,
        "client_id": cfg["client_id"],
        "lti_deployment_id": cfg["deployment_id"],
    }
    return HttpResponseRedirect(f"{cfg['tool_login_url']}?{urlencode(params)}")


def course(request):
    """A course page that shows the tool in an iframe, as Moodle and Canvas do (with the camera allowed)."""
    from django.http import HttpResponse
    from django.utils.html import escape

    src = "/start?" + urlencode(request.GET.dict())
    return HttpResponse(
        "<!doctype html><html><head><title>Chemistry 101</title></head><body><h1>Chemistry 101</h1>"
        f'<iframe id="tool" title="Exam" src="{escape(src)}" width="1100" height="800" allow="camera"></iframe>'
        "</body></html>"
    )


def authorize(request):
    """The tool's OIDC authorisation request: check it, and answer with the signed launch."""
    from django.http import HttpResponseBadRequest

    cfg = _config()
    query = request.GET
    if query.get("redirect_uri") != cfg["tool_launch_url"] or query.get("scope") != "openid":
        return HttpResponseBadRequest("bad redirect_uri or scope")
    if query.get("response_type") != "id_token" or query.get("client_id") != cfg["client_id"]:
        return HttpResponseBadRequest("bad response_type or client_id")
    user_id = query.get("login_hint", "")
    user = cfg["users"].get(user_id)
    if user is None:
        return HttpResponseBadRequest("unknown user")
    hint = json.loads(query.get("lti_message_hint") or "{}")
    link_id, kind, attempt = hint.get("link", "rl-1"), hint.get("kind", "resource"), hint.get("attempt", "1")
    base = cfg["issuer"]
    launch = _launch_class()(_request(request), _platform())
    launch.set_user_data(user_id, user["roles"], full_name=user.get("name"), email_address=user.get("email"))
    launch.set_extra_claims({"given_name": user.get("given_name", ""), "family_name": user.get("family_name", "")})
    context = cfg["context"]
    launch.set_launch_context_claim(context["id"], context_title=context["title"], context_label=context["id"])
    launch.set_nrps(f"{base}/memberships")
    if kind == "deep_link":
        launch.set_dl(f"{base}/deep_link_return", title="Exams", accept_types={"ltiResourceLink"})
    else:
        spec = ADDED_LINKS.get(link_id) or cfg.get("links", {}).get(link_id, {})
        launch.set_resource_link_claim(link_id, title=spec.get("title", link_id))
        launch.set_ags(f"{base}/lineitems", lineitem_url=f"{base}/lineitems/{link_id}")
        custom = spec.get("custom")
        if custom:
            launch.set_custom_parameters_claim(custom)
    if kind == "start_proctoring":
        launch.set_extra_claims(
            {
                LTI + "message_type": "LtiStartProctoring",
                AP + "attempt_number": int(attempt),
                AP + "session_data": f"session-{user_id}-{attempt}",
                AP + "start_assessment_url": f"{base}/start_assessment",
                AP + "acs": {"assessment_control_url": f"{base}/acs", "actions": ["flag", "terminate"]},
            }
        )
    elif kind == "end_assessment":
        launch.set_extra_claims(
            {
                LTI + "message_type": "LtiEndAssessment",
                AP + "attempt_number": int(attempt),
                AP + "session_data": f"session-{user_id}-{attempt}",
            }  # fmt: skip
        )
    return launch.lti_launch()


def jwks(request):
    from django.http import JsonResponse

    return JsonResponse(_platform().get_jwks())


def token(request):
    from django.http import JsonResponse

    try:
        answer = _platform().get_access_token(request.POST.dict())
    except Exception as exc:  # noqa: BLE001 - any refusal is the client's fault here
        return JsonResponse({"error": "invalid_client", "detail": str(exc)}, status=400)
    with LOCK:
        RECORDS["tokens"].append(answer["scope"])
    return JsonResponse(answer)


def _authorised(request, scope: str) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return False
    try:
        return _platform().validate_token(header[7:], allowed_scopes=[scope])
    except Exception:  # noqa: BLE001
        return False


def memberships(request):
    from django.http import HttpResponse, JsonResponse

    if not _authorised(request, "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"):
        return HttpResponse(status=401)
    cfg = _config()
    members = [
        {"user_id": uid, "roles": u["roles"], "status": u.get("status", "Active"), "name": u.get("name", ""),
         "given_name": u.get("given_name", ""), "family_name": u.get("family_name", ""), "email": u.get("email", "")}
        for uid, u in cfg["users"].items()
    ]  # fmt: skip
    return JsonResponse(
        {"id": f"{cfg['issuer']}/memberships", "context": {"id": cfg["context"]["id"]}, "members": members},
        content_type="application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
    )


def scores(request, link_id):
    from django.http import HttpResponse

    if request.method != "POST" or not _authorised(request, "https://purl.imsglobal.org/spec/lti-ags/scope/score"):
        return HttpResponse(status=401)
    if _config().get("fail_scores") or FAILING["scores"]:
        return HttpResponse("grade book unavailable", status=503)
    with LOCK:
        RECORDS["scores"].append({"link": link_id, **json.loads(request.body)})
    return HttpResponse(status=200)


def deep_link_return(request):
    from django.http import HttpResponse

    items = _platform().validate_deeplinking_resp(request.POST.dict())
    with LOCK:
        RECORDS["deep_links"].extend(items)
        for item in items:
            ADDED_LINKS[f"dl-{len(ADDED_LINKS) + 1}"] = item
    return HttpResponse(f"<!doctype html><html><body><h1>Added {len(items)} item(s) to the course</h1></body></html>")


def start_assessment(request):
    """LtiStartAssessment (LTI Proctoring Services 1.0, section 3.3): the tool's signed hand-back."""
    from django.http import HttpResponse, HttpResponseBadRequest

    platform = _platform()
    try:
        claims = platform.tool_validate_and_decode(request.POST["JWT"])
    except Exception as exc:  # noqa: BLE001
        return HttpResponseBadRequest(f"bad JWT: {exc}")
    cfg = _config()
    problems = [
        name
        for name, ok in (
            ("message_type", claims.get(LTI + "message_type") == "LtiStartAssessment"),
            ("version", claims.get(LTI + "version") == "1.3.0"),
            ("iss", claims.get("iss") == cfg["client_id"]),
            ("aud", claims.get("aud") in (cfg["issuer"], [cfg["issuer"]])),
            ("deployment", claims.get(LTI + "deployment_id") == cfg["deployment_id"]),
            ("session_data", str(claims.get(AP + "session_data", "")).startswith("session-")),
            ("attempt_number", AP + "attempt_number" in claims),
            ("nonce", bool(claims.get("nonce"))),
        )
        if not ok
    ]
    if problems:
        return HttpResponseBadRequest(f"bad claims: {problems}")
    with LOCK:
        RECORDS["start_assessments"].append(claims)
    return HttpResponse("<!doctype html><html><body><h1>The assessment has started</h1></body></html>")


def acs(request):
    from django.http import HttpResponse, JsonResponse

    if not _authorised(request, "https://purl.imsglobal.org/spec/lti-ap/scope/control.all"):
        return HttpResponse(status=401)
    body = json.loads(request.body)
    with LOCK:
        RECORDS["acs"].append(body)
    return JsonResponse({"status": "active"})


def fail_scores(request):
    from django.http import JsonResponse

    FAILING["scores"] = request.GET.get("on") == "1"
    return JsonResponse(FAILING)


def records(request):
    from django.http import JsonResponse

    with LOCK:
        return JsonResponse(RECORDS)


def _urls():
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt

    return [
        path("start", start),
        path("course", course),
        path("authorize", authorize),
        path("jwks", jwks),
        path("token", csrf_exempt(token)),
        path("memberships", memberships),
        path("lineitems/<str:link_id>/scores", csrf_exempt(scores)),
        path("deep_link_return", csrf_exempt(deep_link_return)),
        path("start_assessment", csrf_exempt(start_assessment)),
        path("acs", csrf_exempt(acs)),
        path("records", records),
        path("fail_scores", fail_scores),
    ]


urlpatterns: list = []


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        sys.stderr.write("platform: " + format % args + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    with open(args.config) as handle:
        configure(json.load(handle))
    global urlpatterns
    urlpatterns = _urls()
    from django.core.wsgi import get_wsgi_application

    # The ACS scope is this platform's own addition to lti1p3platform's list of grantable scopes.
    from lti1p3platform import constants, ltiplatform

    scopes = [*constants.LTI_1P3_ACCESS_TOKEN_SCOPES, "https://purl.imsglobal.org/spec/lti-ap/scope/control.all"]
    ltiplatform.LTI_1P3_ACCESS_TOKEN_SCOPES = scopes
    server = make_server("127.0.0.1", args.port, get_wsgi_application(), server_class=_Server,
                         handler_class=_QuietHandler)  # fmt: skip
    server.serve_forever()


if __name__ == "__main__":
    main()
