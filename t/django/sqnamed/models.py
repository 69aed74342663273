from django.db import models


class Item(models.Model):
    label = models.CharField(max_length=20)
    size = models.IntegerField(null=True)
    color = models.CharField(max_length=10, null=True)
    note = models.TextField(null=True)
