from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=50)
    price_cents = models.IntegerField(default=0)
