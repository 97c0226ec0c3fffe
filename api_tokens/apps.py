from django.apps import AppConfig


class ApiTokensConfig(AppConfig):
    name = "api_tokens"
    verbose_name = "API tokens"

    def ready(self) -> None:
        from api_tokens.ws_auth import connect_revocation_signals

        connect_revocation_signals()  # logout, token deletion, role removal close open sockets
