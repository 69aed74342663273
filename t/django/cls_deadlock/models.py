from django.db import models


class Account(models.Model):
    name = models.CharField(max_length=50)


class Ledger(models.Model):
    name = models.CharField(max_length=50)
