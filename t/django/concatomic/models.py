from django.db import models


class Event(models.Model):
    kind = models.CharField(max_length=20)

    class Meta:
        indexes = [models.Index(fields=["kind"], name="concatomic_kind_idx")]
