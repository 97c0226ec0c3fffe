from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.urls import include, path, reverse
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.exceptions import NotAuthenticated

import api_tokens.openapi  # noqa: F401 - our auth schemes, registered before the schema is drawn
from hypersdk.lib.login_throttle import limit_login_attempts


class SwaggerView(SpectacularSwaggerView):
    """Swagger UI needs a log-in like the schema; a browser without one goes to the log-in page
    and comes back."""

    def handle_exception(self, exc):
        if isinstance(exc, NotAuthenticated):
            return redirect_to_login(self.request.get_full_path(), reverse("dashboard:login"))
        return super().handle_exception(exc)


# DRF's browsable-API log-in, as rest_framework.urls has it, behind the one log-in limiter.
api_auth_urls = (
    [
        path(
            "login/",
            limit_login_attempts(auth_views.LoginView.as_view(template_name="rest_framework/login.html")),
            name="login",
        ),
        path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    ],
    "rest_framework",
)

urlpatterns = [
    path("admin/login/", limit_login_attempts(admin.site.login)),
    path("admin/", admin.site.urls),
    # Readable by any account with a role (SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]).
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api-auth/", include(api_auth_urls)),
    path("", include("metrics.urls")),
    path("", include("exports.api.urls")),
    path("", include("schedules.api.urls")),
    path("", include("webhooks.api.urls")),
    path("", include("inventory.api.urls")),
    path("", include("dashboard.urls")),
]
