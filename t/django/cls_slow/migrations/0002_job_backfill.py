# A long step (pg_sleep stands for a long backfill): the test kills the
# migrate process, or terminates its backend, while it runs.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cls_slow", "0001_initial")]
    operations = [
        migrations.RunSQL("SELECT pg_sleep(60)", migrations.RunSQL.noop),
    ]
