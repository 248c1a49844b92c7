"""The request class of both services: a streamed body past the size limit is a 413."""

from __future__ import annotations

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge


class LimitedRequest(Request):
    def get_data(self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False):
        """The body; a 413 when a streamed (chunked) body goes past the size limit.

        Werkzeug reads a body without Content-Length up to MAX_CONTENT_LENGTH and stops
        there without a word: the app would parse the first bytes of a larger body (a
        misleading 400, or worse, a truncated body that still parses)."""
        data = super().get_data(cache=cache, as_text=False, parse_form_data=parse_form_data)
        limit = self.max_content_length
        if (
            limit is not None
            and self.content_length is None
            and len(data) >= limit
            and self.environ["wsgi.input"].read(1)
        ):
            raise RequestEntityTooLarge()
        return data.decode(errors="replace") if as_text else data
