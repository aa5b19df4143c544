"""The admin base of audit tables (order intents, execution, strategy and listing events):
listed and readable, never added, changed or deleted by hand, whatever a user's permissions."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest


class AuditAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
