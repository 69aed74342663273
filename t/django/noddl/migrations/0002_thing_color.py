from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("noddl", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="thing",
            name="color",
            field=models.CharField(max_length=20, null=True),
        ),
    ]
