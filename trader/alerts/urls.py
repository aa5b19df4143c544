from django.urls import path

from trader.alerts import views

app_name = "alerts"

urlpatterns = [
    path("", views.alert_settings, name="settings"),
    path("channels/add/", views.channel_add, name="channel-add"),
    path("channels/push/", views.webpush_subscribe, name="webpush-subscribe"),
    path("channels/<int:pk>/verify/", views.telegram_verify, name="telegram-verify"),
    path("channels/<int:pk>/test/", views.channel_test, name="channel-test"),
    path("channels/<int:pk>/delete/", views.channel_delete, name="channel-delete"),
    path("rules/", views.rules_save, name="rules"),
]
