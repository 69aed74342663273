# Needs an ACCESS EXCLUSIVE lock on locky_item: with lock_timeout set
# (PGOPTIONS) it gives up while another session holds the table.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("locky", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="item",
            name="flag",
            field=models.BooleanField(default=False),
        ),
    ]
