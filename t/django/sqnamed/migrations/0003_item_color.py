from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sqnamed", "0002_item_size")]
    operations = [
        migrations.AddField(
            model_name="item",
            name="color",
            field=models.CharField(max_length=10, null=True),
        ),
    ]
