# The previous release of squashy: before 0003_box_color was written.
# Named "..._0003_..." but replaces 0001 and 0002 only: a squash is
# known by its replaces list, not by the numbers in its name.
from django.db import migrations, models


class Migration(migrations.Migration):
    replaces = [("squashy", "0001_initial"), ("squashy", "0002_box_weight")]
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Box",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True,
                                        serialize=False, verbose_name="ID")),
                ("label", models.CharField(max_length=20)),
                ("weight", models.IntegerField(null=True)),
            ],
        ),
    ]
