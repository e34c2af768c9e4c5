"""Schemathesis hooks for scripts/schemathesis.sh.

- The rules between two fields of one request body, which the OpenAPI
  document states in words (a schema cannot compare two values) and the
  server answers with 422: positive cases are kept to them by reordering
  values the generator drew (or dropping a self-reference), so a 422 for
  them is never taken for a schema lie. The schema's own constraints are
  left as they are, and negative cases stay negative. Rules against what
  the server keeps (a stored date or limit) are answered 409 and need
  nothing here.
- `GET /ws` answers 101 and the connection speaks WebSocket from then on;
  `requests` knows nothing of 101 and would hand the connection to the next
  request, which would read WebSocket frames as its answer.
"""

import re
from urllib.parse import unquote

import schemathesis
import urllib3.response

_release_conn = urllib3.response.HTTPResponse.release_conn


def _release_conn_unless_upgraded(self):
    if self.status == 101 and self._connection is not None:
        # Back in the pool closed: the next request opens a new one.
        self._connection.close()
    _release_conn(self)


urllib3.response.HTTPResponse.release_conn = _release_conn_unless_upgraded

DATE = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


def _swap_if_reversed(body, low, high, ordered):
    """Puts body[low] <= body[high] when both are there and comparable."""
    a, b = body.get(low), body.get(high)
    if ordered(a) and ordered(b) and a > b:
        body[low], body[high] = b, a


def _count(value):
    """A whole number, as JSON Schema's integer (`8192` or `8192.0`)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _date(value):
    return isinstance(value, str) and DATE.match(value) is not None


def _text(value):
    """A string as the server reads it: a surrogate pair the generator drew
    as two code points is one character once it is JSON on the wire."""
    if not isinstance(value, str):
        return value
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _not_itself(body, field, own_id):
    """A provider's fallback and a model's replacement name another entity."""
    if own_id is not None and field in body and _text(body[field]) == _text(own_id):
        del body[field]


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    label = case.operation.label
    path_id = (case.path_parameters or {}).get("id")
    # An id taken from an answer (a link) is kept percent-encoded for the
    # URL; ids never hold `%`, so decoding a drawn one changes nothing.
    if isinstance(path_id, str):
        path_id = unquote(path_id)
    if label == "POST /admin/providers":
        _not_itself(body, "fallback_provider_id", body.get("id"))
    elif label == "PATCH /admin/providers/{id}":
        _not_itself(body, "fallback_provider_id", path_id)
    elif label in ("POST /admin/models", "PATCH /admin/models/{id}"):
        _not_itself(body, "replacement_model_id", body.get("id", path_id))
        # The input limit within the context window.
        _swap_if_reversed(body, "max_input_tokens", "context_window", _count)
        # The sunset not before the deprecation.
        _swap_if_reversed(body, "deprecation_date", "sunset_date", _date)
        # No retirement dates on an active model.
        if body.get("deprecation_status") == "active" and any(
            _date(body.get(field)) for field in ("deprecation_date", "sunset_date")
        ):
            body["deprecation_status"] = "deprecated"
    elif label == "POST /admin/models/{id}/deprecate":
        _not_itself(body, "replacement_model_id", path_id)
        _swap_if_reversed(body, "deprecation_date", "sunset_date", _date)
