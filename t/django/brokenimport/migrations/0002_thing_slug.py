# Imports a helper the release forgot to ship: Django cannot load the
# migration graph, nothing runs, sqlmigrate prints nothing.
from django.db import migrations, models

from brokenimport.slugtools import slugify_all  # noqa: F401


class Migration(migrations.Migration):
    dependencies = [("brokenimport", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="thing",
            name="slug",
            field=models.CharField(max_length=20, null=True),
        ),
    ]
