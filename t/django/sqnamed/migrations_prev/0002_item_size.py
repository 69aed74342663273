from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sqnamed", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="item",
            name="size",
            field=models.IntegerField(null=True),
        ),
    ]
