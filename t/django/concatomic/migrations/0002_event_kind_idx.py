# A hand-written CREATE INDEX CONCURRENTLY in a migration that forgot
# atomic = False: PostgreSQL refuses it inside the migration's transaction
# (SQLSTATE 25001), and the whole migration rolls back.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("concatomic", "0001_initial")]
    operations = [
        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY concatomic_kind_idx "
            "ON concatomic_event (kind);",
            "DROP INDEX CONCURRENTLY IF EXISTS concatomic_kind_idx;",
            state_operations=[
                migrations.AddIndex(
                    model_name="event",
                    index=models.Index(fields=["kind"],
                                       name="concatomic_kind_idx"),
                ),
            ],
        ),
    ]
