# Non-atomic (a big table, written in small steps): the column is added and
# committed, then the backfill converts order after order and dies on a
# currency it has no rate for.  Column there, rows half changed, migration
# not recorded.
from django.db import migrations, models

RATES = {"EUR": 1, "USD": 0.9}


def backfill(apps, schema_editor):
    Order = apps.get_model("halfway", "Order")
    for order in Order.objects.order_by("id"):
        order.amount_eur = int(order.amount * RATES[order.currency])
        order.save(update_fields=["amount_eur"])


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("halfway", "0001_initial")]
    operations = [
        migrations.AddField(
            model_name="order",
            name="amount_eur",
            field=models.IntegerField(null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop,
                             atomic=False),
    ]
