from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

from exports.limits import MAX_PAGE


class JobPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000
    max_page = MAX_PAGE
    # The CLIs print this as is: say which page.
    invalid_page_message = "there is no page {page_number}: {message}"

    def get_page_size(self, request) -> int:
        """DRF falls back to the default on ``page_size=abc``; a client's typo deserves a 400."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 4) or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError({"page_size": [f"must be an integer from 1 to {self.max_page_size}"]})
        return int(raw)

    def paginate_queryset(self, queryset, request, view=None):
        """DRF reads ``page=`` (empty) as page 1; like ``page_size``, anything but 1, 2, ... is a 400."""
        raw = request.query_params.get(self.page_query_param)
        if raw is not None and not (
            raw.isascii() and raw.isdigit() and len(raw) <= 7 and 1 <= int(raw) <= self.max_page
        ):
            raise ValidationError({"page": [f"must be an integer from 1 to {self.max_page}"]})
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
            elif parameter["name"] == self.page_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page)
        return parameters
