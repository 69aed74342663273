from django.db import models


class Customer(models.Model):
    email = models.CharField(max_length=100, unique=True)
