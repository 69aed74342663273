# Depends on a migration that is not in the release: NodeNotFoundError.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("brokendep", "0001_initial"),
                    ("brokendep", "0009_not_shipped")]
    operations = [
        migrations.AddField(
            model_name="thing",
            name="slug",
            field=models.CharField(max_length=20, null=True),
        ),
    ]
