"""The test project's settings with each app's migrations module chosen by
MIGTEST_MIGRATIONS ("app=module,..."): one code tree plays this release
and the previous one (squashes: t/migrations_squash.t)."""
import os

from proj.settings import *  # noqa: F401,F403

MIGRATION_MODULES = dict(
    s.split("=", 1)
    for s in os.environ.get("MIGTEST_MIGRATIONS", "").split(",") if "=" in s
)
