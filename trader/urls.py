from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from trader import staff_auth, views

trader_patterns = (
    [
        path("", views.dashboard, name="dashboard"),
        path("account/profile/", views.profile_edit, name="profile"),
    ],
    "trader",
)

urlpatterns = [
    path("", include(trader_patterns)),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/", include("allauth.urls")),
    path("strategies/", include("trader.strategy_urls")),
    path("brokers/", include("brokers.urls")),
    path("execution/", include("execution.urls")),
    path("marketplace/", include("marketplace.urls")),
    # Before admin.site.urls: admin's own password-only login form is never served.
    path("admin/login/", staff_auth.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("favicon.ico", RedirectView.as_view(url="/static/icons/favicon.svg", permanent=True)),
]
