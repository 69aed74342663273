# A unique index built without blocking writes: CONCURRENTLY needs
# atomic = False, and a failed build leaves an INVALID index behind.
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("concidx", "0001_initial")]
    operations = [
        migrations.RunSQL(
            "CREATE UNIQUE INDEX CONCURRENTLY concidx_account_username_uniq "
            "ON concidx_account (username);",
            "DROP INDEX CONCURRENTLY IF EXISTS concidx_account_username_uniq;",
        ),
    ]
