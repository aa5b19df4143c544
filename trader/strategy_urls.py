from django.urls import path

from trader.strategies import views

app_name = "strategies"

urlpatterns = [
    path("", views.strategy_list, name="list"),
    path("new/", views.wizard_start, name="new"),
    path("new/<slug:step>/", views.wizard_step, name="wizard"),
    path("templates/", views.templates_page, name="templates"),
    path("risk-limits/", views.risk_limits, name="risk-limits"),
    path("<int:pk>/", views.strategy_detail, name="detail"),
    path("<int:pk>/edit/", views.strategy_edit, name="edit"),
    path("<int:pk>/activate/", views.strategy_activate, name="activate"),
    path("<int:pk>/pause/", views.strategy_pause, name="pause"),
    path("<int:pk>/archive/", views.strategy_archive, name="archive"),
    path("<int:pk>/duplicate/", views.strategy_duplicate, name="duplicate"),
]
