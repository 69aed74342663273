# History drift: 0002 gets recorded with --fake, 0003 then fails on the
# column 0002 should have made (42703): the failing migration is innocent.
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Invoice",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True,
                                        serialize=False, verbose_name="ID")),
                ("number", models.CharField(max_length=20)),
            ],
        ),
    ]
