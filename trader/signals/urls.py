from django.urls import path

from trader.signals import views

app_name = "signals"

urlpatterns = [
    path("in/<str:public_id>/", views.signal_webhook, name="webhook"),
    path("strategy/<int:pk>/enable/", views.webhook_enable, name="enable"),
    path("strategy/<int:pk>/disable/", views.webhook_disable, name="disable"),
    path("strategy/<int:pk>/signature/", views.webhook_signature, name="signature"),
]
