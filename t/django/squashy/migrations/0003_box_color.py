from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("squashy", "0002_box_weight")]
    operations = [
        migrations.AddField(
            model_name="box",
            name="color",
            field=models.CharField(max_length=10, null=True),
        ),
    ]
