from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("drift", "0002_invoice_due_date")]
    operations = [
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(fields=["due_date"], name="drift_due_idx"),
        ),
    ]
