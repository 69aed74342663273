"""Settings of the test project.  The database comes from the environment:
DATABASE_NAME / DATABASE_USER / ... when set, else the libpq PG* variables,
so that a test points each scenario at its own database.  A password is
never written here: libpq reads PGPASSWORD or ~/.pgpass itself."""
import os


def env(name, pg, default=""):
    return os.environ.get("DATABASE_" + name, os.environ.get(pg, default))


BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET_KEY = "migctl-test-project-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# one app per failure scenario; a scenario migrates only its own app.
# A bare `manage.py migrate` stops at the first failing app: set
# MIGTEST_APPS=shop (a comma-separated list) for a release that works.
INSTALLED_APPS = [
    "shop",
    "dupes",
    "locky",
    "halfway",
    "concidx",
    "badsql",
    "laterstep",
    "faked",
    "rewrite",
    "noddl",
    "concatomic",
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": env("NAME", "PGDATABASE", "app"),
        "USER": env("USER", "PGUSER", "postgres"),
        "HOST": env("HOST", "PGHOST", "127.0.0.1"),
        "PORT": env("PORT", "PGPORT", "5432"),
    }
}

if os.environ.get("MIGTEST_APPS"):
    INSTALLED_APPS = [a for a in os.environ["MIGTEST_APPS"].split(",") if a]
