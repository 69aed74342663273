"""Views of the health test app.  /healthz answers the status written in
$HEALTHWEB_STATUS_FILE (200 when absent) after a real query; /version
the release in $HEALTHWEB_RELEASE, as body and X-Release header; /hang
never answers within a check's timeout."""
import os
import time

from django.db import connection
from django.http import HttpResponse
from django.urls import path


def healthz(request):
    status = 200
    name = os.environ.get("HEALTHWEB_STATUS_FILE")
    if name and os.path.exists(name):
        with open(name) as f:
            status = int(f.read().strip() or "200")
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM django_migrations")
        n = c.fetchone()[0]
    body = "ok" if status == 200 else "broken"
    return HttpResponse("%s: %d migrations\n" % (body, n), status=status,
                        content_type="text/plain")


def version(request):
    release = os.environ.get("HEALTHWEB_RELEASE", "")
    r = HttpResponse("release %s\n" % release, content_type="text/plain")
    r["X-Release"] = release
    return r


def hang(request):
    time.sleep(30)
    return HttpResponse("late\n", content_type="text/plain")


urlpatterns = [
    path("healthz", healthz),
    path("version", version),
    path("hang", hang),
]
