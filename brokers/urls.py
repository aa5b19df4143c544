from django.urls import path

from brokers import views

app_name = "brokers"

urlpatterns = [
    path("", views.account_list, name="list"),
    path("connect/", views.connect, name="connect"),
    path("connect/paper/", views.connect_paper, name="connect-paper"),
    # One fixed callback per broker: this is the redirect URL traders register with the broker.
    path("callback/<slug:broker>/", views.callback, name="callback"),
    path("<int:account_id>/", views.account_detail, name="detail"),
    path("<int:account_id>/login/", views.login, name="login"),
    path("<int:account_id>/test/", views.test_connection, name="test"),
    path("<int:account_id>/disconnect/", views.disconnect, name="disconnect"),
]
