from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from trader.api import views

app_name = "api"

v1 = [
    path("v1/profile/", views.ProfileView.as_view(), name="profile"),
    path("v1/broker-accounts/", views.BrokerAccountListView.as_view(), name="broker-accounts"),
    path(
        "v1/broker-accounts/<int:pk>/",
        views.BrokerAccountDetailView.as_view(),
        name="broker-account",
    ),
    path("v1/strategies/", views.StrategyListView.as_view(), name="strategies"),
    path("v1/strategies/<int:pk>/", views.StrategyDetailView.as_view(), name="strategy"),
    path(
        "v1/strategies/<int:pk>/activate/",
        views.StrategyActivateView.as_view(),
        name="strategy-activate",
    ),
    path("v1/strategies/<int:pk>/pause/", views.StrategyPauseView.as_view(), name="strategy-pause"),
    path(
        "v1/strategies/<int:pk>/archive/",
        views.StrategyArchiveView.as_view(),
        name="strategy-archive",
    ),
    path("v1/runs/", views.RunListView.as_view(), name="runs"),
    path("v1/runs/<int:pk>/", views.RunDetailView.as_view(), name="run"),
    path("v1/positions/", views.PositionsView.as_view(), name="positions"),
    path("v1/kill-switch/", views.KillSwitchView.as_view(), name="kill-switch"),
    path("v1/kill-switch/engage/", views.KillSwitchEngageView.as_view(), name="kill-switch-engage"),
    path("v1/kill-switch/rearm/", views.KillSwitchRearmView.as_view(), name="kill-switch-rearm"),
    path("v1/marketplace/listings/", views.ListingListView.as_view(), name="listings"),
]

urlpatterns = [
    *v1,
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
    re_path(r"^", views.not_found),
]
