from django.urls import path

from execution import analytics_views, views

app_name = "execution"

urlpatterns = [
    path("runs/", views.run_list, name="runs"),
    path("runs/live/", views.run_list, name="runs-live"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/live/", views.run_detail, name="run-live"),
    path("runs/<int:pk>/exit/", views.run_exit, name="run-exit"),
    path("option-chain/", views.option_chain, name="option-chain"),
    path("margin/<int:strategy_id>/", views.strategy_margin, name="strategy-margin"),
    path("paper-price/<int:strategy_id>/", views.strategy_paper_price, name="strategy-paper-price"),
    path("positions/", views.positions, name="positions"),
    path("positions/live/", views.positions, name="positions-live"),
    path("orders/<int:pk>/dismiss/", views.order_attention_dismiss, name="order-attention-dismiss"),
    path("kill-switch/", views.kill_switch, name="kill-switch"),
    path("paper-test/<int:strategy_id>/", views.paper_test, name="paper-test"),
    path("postback/kite/", views.kite_postback, name="kite-postback"),
    path("analytics/", analytics_views.overview, name="analytics"),
    path("analytics/timing/", analytics_views.timing, name="analytics-timing"),
    path("analytics/brokers/", analytics_views.brokers, name="analytics-brokers"),
    path("analytics/costs/", analytics_views.costs, name="analytics-costs"),
    path("analytics/performance/", analytics_views.performance, name="analytics-performance"),
    path(
        "analytics/performance/<int:strategy_id>/",
        analytics_views.strategy_performance,
        name="analytics-strategy",
    ),
]
