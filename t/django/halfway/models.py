from django.db import models


class Order(models.Model):
    amount = models.IntegerField()
    currency = models.CharField(max_length=3)
    amount_eur = models.IntegerField(null=True)
