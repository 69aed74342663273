from django.db import models


class Rate(models.Model):
    currency = models.CharField(max_length=3)
    value = models.IntegerField(default=1)
