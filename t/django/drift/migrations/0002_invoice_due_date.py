from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("drift", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="invoice",
            name="due_date",
            field=models.DateField(null=True),
        ),
    ]
