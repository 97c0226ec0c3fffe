from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from hypersdk.login_throttle import limit_login_attempts
from metrics.views import MetricsView

urlpatterns = [
    path("admin/login/", limit_login_attempts(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api-auth/", include("rest_framework.urls")),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("", include("exports.api.urls")),
    path("", include("schedules.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("dashboard.urls")),
]
