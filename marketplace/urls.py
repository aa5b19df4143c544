from django.urls import path

from marketplace import views

app_name = "marketplace"

urlpatterns = [
    path("", views.browse, name="browse"),
    path("ranking/", views.ranking_explained, name="ranking"),
    path("<int:pk>/", views.listing_detail, name="listing"),
    path("<int:pk>/subscribe/", views.subscribe, name="subscribe"),
    path("publish/", views.my_listings, name="my-listings"),
    path("publish/new/", views.listing_new, name="listing-new"),
    path("publish/<int:pk>/", views.listing_manage, name="manage"),
    path("publish/<int:pk>/edit/", views.listing_edit, name="listing-edit"),
    path("publish/<int:pk>/comment/", views.listing_comment, name="comment"),
    path("publish/<int:pk>/versions/new/", views.version_new, name="version-new"),
    path("publish/versions/<int:pk>/submit/", views.version_submit, name="version-submit"),
    path("publish/<int:pk>/plans/add/", views.plan_add, name="plan-add"),
    path("publish/plans/<int:pk>/edit/", views.plan_edit, name="plan-edit"),
    path("publish/plans/<int:pk>/retire/", views.plan_retire, name="plan-retire"),
    path("publish/<int:pk>/<slug:action>/", views.listing_action, name="listing-action"),
    path("subscriptions/", views.my_subscriptions, name="my-subscriptions"),
    path("subscriptions/<int:pk>/", views.subscription_detail, name="subscription"),
    path("subscriptions/<int:pk>/rate/", views.subscription_rate, name="rate"),
    path("subscriptions/<int:pk>/copy/", views.subscription_copy, name="copy"),
    path(
        "subscriptions/<int:pk>/<slug:action>/",
        views.subscription_action,
        name="subscription-action",
    ),
    path("deployments/<int:pk>/stop/", views.deployment_stop, name="deployment-stop"),
    path("deployments/<int:pk>/edit/", views.deployment_edit, name="deployment-edit"),
]
