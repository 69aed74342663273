from django.db import models


class Invoice(models.Model):
    number = models.CharField(max_length=20)
    due_date = models.DateField(null=True, db_index=True)
