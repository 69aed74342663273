# Recorded with --fake by the test: the column is never created.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cls_drift", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="invoice",
            name="due_date",
            field=models.DateField(null=True),
        ),
    ]
