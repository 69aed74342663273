# One of two branches' 0002: merged without makemigrations --merge.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cls_leaves", "0001_initial")]
    operations = []
