# Innocent: indexes the column 0002 should have created (42703 when 0002
# was faked).
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("cls_drift", "0002_invoice_due_date")]
    operations = [
        migrations.AlterField(
            model_name="invoice",
            name="due_date",
            field=models.DateField(null=True, db_index=True),
        ),
    ]
