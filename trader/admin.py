from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from trader.models import Profile, User


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    extra = 0


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "profile_name", "profile_mobile", "profile_state", "is_staff"]
    list_filter = ["is_staff", "is_superuser", "is_active", "profile__state"]
    search_fields = ["email", "profile__mobile", "profile__full_name", "profile__state"]
    list_select_related = ["profile"]
    inlines = [ProfileInline]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    @admin.display(description="name", ordering="profile__full_name")
    def profile_name(self, obj: User) -> str:
        return getattr(getattr(obj, "profile", None), "full_name", "")

    @admin.display(description="mobile")
    def profile_mobile(self, obj: User) -> str:
        return getattr(getattr(obj, "profile", None), "mobile", "")

    @admin.display(description="state", ordering="profile__state")
    def profile_state(self, obj: User) -> str:
        return getattr(getattr(obj, "profile", None), "state_name", "")


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "full_name", "mobile", "state", "city", "pin_code"]
    list_filter = ["state"]
    search_fields = ["user__email", "mobile", "full_name", "state", "city"]
    list_select_related = ["user"]
