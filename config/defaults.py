"""Every default, with its unit and the reason for its value."""

# Production endpoint of the Erysta partner API.
DEFAULT_ERYSTA_BASE_URL = "https://api.erysta.com/v1/partners"

# Seconds to open a TCP+TLS connection. A healthy API accepts one in well under a second.
DEFAULT_ERYSTA_CONNECT_TIMEOUT_S = 5.0
# Seconds to wait for a response; Erysta documents no server-side timeout, and a
# place-order that times out becomes an unknown outcome, so this errs on the long side.
DEFAULT_ERYSTA_READ_TIMEOUT_S = 30.0

# Calls a minute to Erysta, shared by every worker with the same LEDGER_PREFIX. Erysta
# allows 100. The limiter permits bursts of a tenth of the rate, so 90 a minute plus one
# burst of 9 keeps every one-minute window at or below 100 calls.
DEFAULT_ERYSTA_CALLS_PER_MINUTE = 90

# One local Redis is the broker, the result backend and the ledger unless configured otherwise.
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
# Namespace of every ledger key, so that several deployments can share one Redis.
DEFAULT_LEDGER_PREFIX = "erysta"
# Seconds before the Redis broker delivers an unacknowledged message again. It must be
# at least twice the longest countdown, and identical in every process using the broker.
DEFAULT_BROKER_VISIBILITY_TIMEOUT_S = 3600.0

# Seconds between polls of one order. Erysta's documentation requests about one call every 30 s.
DEFAULT_POLL_INTERVAL_S = 30.0
# Seconds from placing to the first poll: most orders finish within a few seconds.
DEFAULT_FIRST_POLL_DELAY_S = 5.0
# Seconds from placing after which polling stops and an operator looks at the order.
# Slow sources take 15 to 20 minutes, so 45 minutes leaves a wide margin.
DEFAULT_POLL_DEADLINE_S = 45 * 60.0
# Upper bound, in seconds, of the jittered backoff after a failed poll.
DEFAULT_POLL_ERROR_BACKOFF_MAX_S = 300.0
# Seconds between reconciler runs, which re-enqueue overdue steps.
DEFAULT_RECONCILE_INTERVAL_S = 60.0

# Seconds past the moment an order's next step was due after which the reconciler
# assumes the step's message was lost (a killed worker, a broker restart) and enqueues
# it again. Every task checks the ledger first, so a step enqueued twice is harmless.
DEFAULT_STEP_GRACE_S = 120.0
# Attempts at sending a place-order that provably never reached Erysta (connection
# refused, rate limited) before the order is flagged for an operator.
DEFAULT_PLACE_RETRY_LIMIT = 10

# Seconds to wait for the shop's webhook endpoint.
DEFAULT_WEBHOOK_TIMEOUT_S = 10.0
# Seconds over which a failing delivery is retried before the order is flagged:
# three days, so that a shop endpoint down over a weekend still receives every order.
DEFAULT_DELIVERY_RETRY_MAX_S = 3 * 24 * 3600.0
# Upper bound, in seconds, of the wait between two delivery attempts. Retries are kept
# in the ledger and sent by the reconciler, so this may exceed the visibility timeout.
DEFAULT_DELIVERY_RETRY_BACKOFF_MAX_S = 3600.0

# Level of the workers' log lines.
DEFAULT_LOG_LEVEL = "INFO"

# Seconds a delivered order's keys stay in the vault before they are deleted. Thirty
# days is long enough for the shop to resend a lost email, and short enough to limit
# what a breach of both Redis and the vault key could expose.
DEFAULT_KEY_RETENTION_S = 30 * 24 * 3600.0

# Bytes an image key may decode to. Erysta documents no limit; QR codes and scanned
# vouchers are far smaller, so a larger value is more likely an error than a voucher.
DEFAULT_IMAGE_KEY_MAX_BYTES = 2 * 1024 * 1024
