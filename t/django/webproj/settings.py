"""The web project of the end-to-end incident: the test project's settings
with one app (release), URLs, and the migrations module chosen by
RELEASE_MIGRATIONS (release.migrations_fixed is the shipped fix)."""
import os

from proj.settings import *  # noqa: F401,F403

INSTALLED_APPS = ["release"]
ROOT_URLCONF = "webproj.urls"
MIGRATION_MODULES = {
    "release": os.environ.get("RELEASE_MIGRATIONS", "release.migrations"),
}
