# Imports a helper module the release forgot to ship.
from django.db import migrations

from cls_import.slugs import backfill_slugs


class Migration(migrations.Migration):
    dependencies = [("cls_import", "0001_initial")]
    operations = [
        migrations.RunPython(backfill_slugs, migrations.RunPython.noop),
    ]
