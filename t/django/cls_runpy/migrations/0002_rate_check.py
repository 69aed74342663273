# RunPython failing with a plain Python error (MIGTEST_RUNPY picks it):
# the row it looks up is not there, or the code gives up.
import os

from django.db import migrations


def check(apps, schema_editor):
    Rate = apps.get_model("cls_runpy", "Rate")
    if os.environ.get("MIGTEST_RUNPY") == "runtime":
        raise RuntimeError("rates table not loaded: run load_rates first")
    Rate.objects.get(currency="CHF")


class Migration(migrations.Migration):
    dependencies = [("cls_runpy", "0001_initial")]
    operations = [
        migrations.RunPython(check, migrations.RunPython.noop),
    ]
