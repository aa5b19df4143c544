from django.urls import path

from execution import views

app_name = "execution"

urlpatterns = [
    path("runs/", views.run_list, name="runs"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("positions/", views.positions, name="positions"),
    path("kill-switch/", views.kill_switch, name="kill-switch"),
    path("paper-test/<int:strategy_id>/", views.paper_test, name="paper-test"),
]
