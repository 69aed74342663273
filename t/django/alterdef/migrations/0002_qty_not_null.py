from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("alterdef", "0001_initial")]
    operations = [
        migrations.AlterField(
            model_name="stock",
            name="qty",
            field=models.IntegerField(default=0),
        ),
    ]
