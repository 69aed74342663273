from django.db import migrations, models


def table(name):
    return migrations.CreateModel(
        name=name,
        fields=[
            ("id", models.AutoField(auto_created=True, primary_key=True,
                                    serialize=False, verbose_name="ID")),
            ("name", models.CharField(max_length=50)),
        ],
    )


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [table("Account"), table("Ledger")]
