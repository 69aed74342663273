# Two branches both add a 0002: conflicting leaf nodes, migrate refuses.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("conflict", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="thing",
            name="field_a",
            field=models.IntegerField(null=True),
        ),
    ]
