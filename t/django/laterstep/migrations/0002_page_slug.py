from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("laterstep", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="page",
            name="slug",
            field=models.SlugField(max_length=50, default=""),
        ),
    ]
