"""Settings of the health test app (t/health.t, under gunicorn): the test
project's database settings (PG* variables), no model app, three views."""
from proj.settings import *  # noqa: F401,F403

INSTALLED_APPS = []
ROOT_URLCONF = "healthweb.urls"
MIDDLEWARE = []
