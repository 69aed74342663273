# A hand-written RunSQL with a typo (DEFAUT): a syntax error, rolled back.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("badsql", "0001_initial")]
    operations = [
        migrations.RunSQL(
            "ALTER TABLE badsql_note ADD COLUMN body text;",
            "ALTER TABLE badsql_note DROP COLUMN body;",
        ),
        migrations.RunSQL(
            "ALTER TABLE badsql_note ALTER COLUMN body SET DEFAUT '';",
            migrations.RunSQL.noop,
        ),
    ]
