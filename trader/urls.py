from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from trader import staff_auth, views
from trader.api import pages as api_pages

trader_patterns = (
    [
        path("", views.dashboard, name="dashboard"),
        path("desk/live/", views.dashboard_live, name="dashboard-live"),
        path("account/profile/", views.profile_edit, name="profile"),
        path("account/api-tokens/", api_pages.token_list, name="api-tokens"),
        path(
            "account/api-tokens/<int:pk>/revoke/",
            api_pages.token_revoke_view,
            name="api-token-revoke",
        ),
    ],
    "trader",
)

urlpatterns = [
    path("", include(trader_patterns)),
    path("healthz", views.healthz, name="healthz"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    path("sw.js", views.service_worker, name="service-worker"),
    path("offline/", views.offline, name="offline"),
    path("accounts/", include("allauth.urls")),
    path("strategies/", include("trader.strategy_urls")),
    path("brokers/", include("brokers.urls")),
    path("execution/", include("execution.urls")),
    path("marketplace/", include("marketplace.urls")),
    path("api/", include("trader.api.urls")),
    path("signals/", include("trader.signals.urls")),
    path("alerts/", include("trader.alerts.urls")),
    # Before admin.site.urls: admin's own password-only login form is never served.
    path("admin/login/", staff_auth.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("favicon.ico", RedirectView.as_view(url="/static/icons/favicon.svg", permanent=True)),
]
