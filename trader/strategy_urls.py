from django.urls import path

from trader import strategy_views

app_name = "strategies"

urlpatterns = [
    path("", strategy_views.strategy_list, name="list"),
]
