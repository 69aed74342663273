from django.db import models


class Box(models.Model):
    label = models.CharField(max_length=20)
    weight = models.IntegerField(null=True)
    color = models.CharField(max_length=10, null=True)
