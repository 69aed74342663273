# AlterField null -> not null with a default: Django 3.2 writes SET
# DEFAULT; UPDATE; SET NOT NULL; DROP DEFAULT.  Before it runs the column
# has no default, so "drop default" holds already.
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Stock",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True,
                                        serialize=False, verbose_name="ID")),
                ("sku", models.CharField(max_length=20)),
                ("qty", models.IntegerField(null=True)),
            ],
        ),
    ]
