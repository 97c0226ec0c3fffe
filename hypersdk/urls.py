from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from hypersdk.login_throttle import limit_login_attempts

urlpatterns = [
    path("admin/login/", limit_login_attempts(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api-auth/", include("rest_framework.urls")),
    path("", include("metrics.urls")),
    path("", include("exports.api.urls")),
    path("", include("schedules.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("dashboard.urls")),
]
