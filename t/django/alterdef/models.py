from django.db import models


class Stock(models.Model):
    sku = models.CharField(max_length=20)
    qty = models.IntegerField(default=0)
