# Locks cls_deadlock_account, then needs cls_deadlock_ledger: a session
# that holds the ledger and then reads the account closes the cycle.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cls_deadlock", "0001_initial")]
    operations = [
        migrations.RunSQL(
            "ALTER TABLE cls_deadlock_account ADD COLUMN flag integer",
            migrations.RunSQL.noop),
        migrations.RunSQL(
            "LOCK TABLE cls_deadlock_ledger IN ACCESS EXCLUSIVE MODE",
            migrations.RunSQL.noop),
    ]
