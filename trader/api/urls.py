from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from trader.api import actions, analytics, market, views

app_name = "api"

v1 = [
    path("v1/profile/", views.ProfileView.as_view(), name="profile"),
    path("v1/broker-accounts/", views.BrokerAccountListView.as_view(), name="broker-accounts"),
    path(
        "v1/broker-accounts/<int:pk>/",
        views.BrokerAccountDetailView.as_view(),
        name="broker-account",
    ),
    path(
        "v1/broker-accounts/<int:pk>/funds/",
        actions.BrokerAccountFundsView.as_view(),
        name="broker-account-funds",
    ),
    path(
        "v1/broker-accounts/<int:pk>/test/",
        actions.BrokerAccountTestView.as_view(),
        name="broker-account-test",
    ),
    path("v1/strategies/", actions.StrategiesView.as_view(), name="strategies"),
    path("v1/strategies/<int:pk>/", actions.StrategyView.as_view(), name="strategy"),
    path(
        "v1/strategies/<int:pk>/versions/",
        actions.StrategyVersionsView.as_view(),
        name="strategy-versions",
    ),
    path(
        "v1/strategies/<int:pk>/paper-test/",
        actions.PaperTestView.as_view(),
        name="strategy-paper-test",
    ),
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
    path("v1/runs/<int:pk>/exit/", actions.RunExitView.as_view(), name="run-exit"),
    path("v1/positions/", views.PositionsView.as_view(), name="positions"),
    path("v1/kill-switch/", views.KillSwitchView.as_view(), name="kill-switch"),
    path("v1/kill-switch/engage/", views.KillSwitchEngageView.as_view(), name="kill-switch-engage"),
    path("v1/kill-switch/rearm/", views.KillSwitchRearmView.as_view(), name="kill-switch-rearm"),
    path("v1/marketplace/listings/", views.ListingListView.as_view(), name="listings"),
    path(
        "v1/marketplace/listings/<int:pk>/subscribe/",
        market.SubscribeView.as_view(),
        name="listing-subscribe",
    ),
    path(
        "v1/marketplace/subscriptions/",
        market.SubscriptionListView.as_view(),
        name="subscriptions",
    ),
    path(
        "v1/marketplace/subscriptions/<int:pk>/",
        market.SubscriptionDetailView.as_view(),
        name="subscription",
    ),
    path(
        "v1/marketplace/subscriptions/<int:pk>/pause/",
        market.SubscriptionPauseView.as_view(),
        name="subscription-pause",
    ),
    path(
        "v1/marketplace/subscriptions/<int:pk>/resume/",
        market.SubscriptionResumeView.as_view(),
        name="subscription-resume",
    ),
    path(
        "v1/marketplace/subscriptions/<int:pk>/cancel/",
        market.SubscriptionCancelView.as_view(),
        name="subscription-cancel",
    ),
    path(
        "v1/marketplace/subscriptions/<int:pk>/deployments/",
        market.DeploymentCreateView.as_view(),
        name="subscription-deploy",
    ),
    path(
        "v1/marketplace/deployments/<int:pk>/",
        market.DeploymentView.as_view(),
        name="deployment",
    ),
    path(
        "v1/marketplace/deployments/<int:pk>/stop/",
        market.DeploymentStopView.as_view(),
        name="deployment-stop",
    ),
    path("v1/analytics/timing/", analytics.TimingView.as_view(), name="analytics-timing"),
    path("v1/analytics/brokers/", analytics.BrokersView.as_view(), name="analytics-brokers"),
    path("v1/analytics/costs/", analytics.CostsView.as_view(), name="analytics-costs"),
    path(
        "v1/analytics/performance/",
        analytics.PerformanceView.as_view(),
        name="analytics-performance",
    ),
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
