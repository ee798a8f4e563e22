"""The error of a webhook call that got no answer, apart from the HTTP client
(`actormq.webhooks.http`) so that code which only handles it imports no aiohttp."""


class HttpFailure(Exception):
    """A request that got no answer: refused, reset, timed out."""
