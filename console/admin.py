from __future__ import annotations

from django.contrib import admin

from console.foundation.models import AuditEntry
from console.security.sign_in import AdminSignInForm

# The admin site's login through the console's throttle and audit (Django's own hook for its
# form); console.urls routes /admin/login/ to views.admin_login for the 429 status.
admin.site.login_form = AdminSignInForm


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "username", "address", "action", "target", "outcome")
    list_filter = ("action", "outcome")
    search_fields = ("username", "target")

    # The audit log is evidence: readable here, never changed.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
