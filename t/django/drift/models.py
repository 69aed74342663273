from django.db import models


class Invoice(models.Model):
    number = models.CharField(max_length=20)
    due_date = models.DateField(null=True)

    class Meta:
        indexes = [models.Index(fields=["due_date"], name="drift_due_idx")]
