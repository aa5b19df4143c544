"""Market reference data and (later) the execution records.

Underlying is the seam other apps point at; its dated facts (lot size, freeze quantity, strike
step, expiry rules) live in their own tables with effective dates.
"""

from __future__ import annotations

from django.db import models


class Exchange(models.TextChoices):
    NSE = "NSE", "NSE"
    BSE = "BSE", "BSE"


class Segment(models.TextChoices):
    NFO = "NFO", "NSE F&O"
    BFO = "BFO", "BSE F&O"


class Underlying(models.Model):
    symbol = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=60)
    exchange = models.CharField(max_length=3, choices=Exchange.choices)
    segment = models.CharField(max_length=3, choices=Segment.choices)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol
