# The fix shipped: the same migration with the SQL corrected.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("release", "0001_initial")]
    operations = [
        migrations.RunSQL(
            "ALTER TABLE release_note ADD COLUMN body text;",
            "ALTER TABLE release_note DROP COLUMN body;",
        ),
        migrations.RunSQL(
            "ALTER TABLE release_note ALTER COLUMN body SET DEFAULT '';",
            migrations.RunSQL.noop,
        ),
    ]
