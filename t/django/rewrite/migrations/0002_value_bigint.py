# integer -> bigint rewrites every row under an ACCESS EXCLUSIVE lock.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("rewrite", "0001_initial")]
    operations = [
        migrations.AlterField(
            model_name="reading",
            name="value",
            field=models.BigIntegerField(),
        ),
    ]
