# Atomic: fails on "could not create unique index" when two customers share
# an email, and rolls back whole.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("dupes", "0001_initial")]
    operations = [
        migrations.AlterField(
            model_name="customer",
            name="email",
            field=models.CharField(max_length=100, unique=True),
        ),
    ]
