from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def browse(request: HttpRequest) -> HttpResponse:
    return render(request, "marketplace/browse.html", {"listings": []})
