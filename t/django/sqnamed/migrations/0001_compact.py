# squashmigrations sqnamed 0003 --squashed-name compact: no "_squashed_"
# in the name, so only its replaces list says what it replaces.
from django.db import migrations, models


class Migration(migrations.Migration):
    replaces = [("sqnamed", "0001_initial"), ("sqnamed", "0002_item_size"),
                ("sqnamed", "0003_item_color")]
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Item",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True,
                                        serialize=False, verbose_name="ID")),
                ("label", models.CharField(max_length=20)),
                ("size", models.IntegerField(null=True)),
                ("color", models.CharField(max_length=10, null=True)),
            ],
        ),
    ]
