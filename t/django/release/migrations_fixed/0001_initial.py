# The release app of the end-to-end incident (t/run_e2e.t): served by
# gunicorn behind nginx; 0002 fails, migrations_fixed/0002 is the fix.
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Note",
            fields=[
                ("id", models.AutoField(auto_created=True, primary_key=True,
                                        serialize=False, verbose_name="ID")),
                ("title", models.CharField(max_length=50)),
            ],
        ),
    ]
