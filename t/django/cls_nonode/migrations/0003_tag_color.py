# Depends on 0002 of another branch, not merged into this release.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("cls_nonode", "0002_tag_weight")]
    operations = []
