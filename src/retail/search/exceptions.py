from retail.kernel.errors import ValidationFailed


class InvalidSearchQuery(ValidationFailed):
    error_code = "INVALID_QUERY"
    message = "The search query is not valid"
