"""HTTP status codes of the simulator's error responses.

Erysta documents only 200 and 429, and the body of the 429. Every other code here is the
simulator's choice, made so that a client can tell the cases apart, and the real API may
use others. All errors share the documented 429 envelope:
``{"status": <code>, "success": false, "error": {"message": ..., "timestamp": ...}}``.
"""

from http import HTTPStatus

MISSING_API_KEY = HTTPStatus.UNAUTHORIZED
UNKNOWN_API_KEY = HTTPStatus.UNAUTHORIZED
INVALID_REQUEST = HTTPStatus.BAD_REQUEST  # a body that is not JSON or breaks the schema
# An unknown product id is a mistake in the request body, like a bad quantity, so it gets
# 400 too. 404 would read as "no such endpoint" to many HTTP clients.
UNKNOWN_PRODUCT = HTTPStatus.BAD_REQUEST
INSUFFICIENT_FUNDS = HTTPStatus.PAYMENT_REQUIRED
OUT_OF_STOCK = HTTPStatus.CONFLICT
# An order id that does not exist, or that another API key placed.
ORDER_NOT_FOUND = HTTPStatus.NOT_FOUND
UNKNOWN_ENDPOINT = HTTPStatus.NOT_FOUND
METHOD_NOT_ALLOWED = HTTPStatus.METHOD_NOT_ALLOWED
RATE_LIMITED = HTTPStatus.TOO_MANY_REQUESTS  # documented, with its body
SERVER_ERROR = HTTPStatus.INTERNAL_SERVER_ERROR  # injected faults and simulator bugs
# The not_found and unauthorized faults, which reject a valid request without doing anything.
INJECTED_NOT_FOUND = HTTPStatus.NOT_FOUND
INJECTED_UNAUTHORIZED = HTTPStatus.UNAUTHORIZED
