"""The error every part of a query raises when it cannot be answered as asked."""


class QueryError(ValueError):
    """The query cannot be answered as asked; the message says why and what to do."""
