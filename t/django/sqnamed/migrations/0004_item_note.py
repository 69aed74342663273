from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sqnamed", "0001_compact")]
    operations = [
        migrations.AddField(
            model_name="item",
            name="note",
            field=models.TextField(null=True),
        ),
    ]
