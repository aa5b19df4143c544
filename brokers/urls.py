from django.urls import path

from brokers import views

app_name = "brokers"

urlpatterns = [
    path("", views.account_list, name="list"),
]
