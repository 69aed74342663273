"""/ reads the release table (a query on the table the migration alters);
/version says which code runs."""
import os

from django.db import connection
from django.http import HttpResponse
from django.urls import path


def index(request):
    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM release_note")
        n = c.fetchone()[0]
    return HttpResponse("app ok %d\n" % n, content_type="text/plain")


def version(request):
    return HttpResponse(os.environ.get("RELEASE_ID", "v1") + "\n",
                        content_type="text/plain")


urlpatterns = [
    path("", index),
    path("version", version),
]
