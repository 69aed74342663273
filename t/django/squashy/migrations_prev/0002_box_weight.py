from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("squashy", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="box",
            name="weight",
            field=models.IntegerField(null=True),
        ),
    ]
