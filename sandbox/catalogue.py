"""Products that the Erysta simulator sells, one per outcome that a client has to handle.

Erysta documents no catalogue endpoint, so product ids are constants here.

=========================  ========================  ========  =====  =====  ==================
constant                   id                        price     stock  steps  outcome
=========================  ========================  ========  =====  =====  ==================
TEST_TXT_ID                69ae19b4397b2e44c02853f5  0         -      0      COMPLETED, text
TEST_IMG_ID                69ae19b4397b2e44c02853f6  0         -      0      COMPLETED, image
GUIDE_TXT_ID               69ae2cb3a9a53ba2d777fe59  0         -      0      COMPLETED, text
GUIDE_IMG_ID               69ae2cb3a9a53ba2d777fe5a  0         -      0      COMPLETED, image
SLOW_ID                    5a0000000000000000000001  0         -      2      COMPLETED, text
PARTIAL_ID                 5a0000000000000000000002  5.00      -      0      half the units
FAILING_ID                 5a0000000000000000000003  5.00      -      0      FAILED
REFUNDED_ID                5a0000000000000000000004  5.00      -      0      REFUNDED
OUT_OF_STOCK_ID            5a0000000000000000000005  0         0      0      (rejected)
PRICED_ID                  5a0000000000000000000006  12.50     -      0      COMPLETED, text
EXPENSIVE_ID               5a0000000000000000000007  10000.00  -      0      (rejected)
CANARY_ID                  5a0000000000000000000008  0         -      0      COMPLETED, text
=========================  ========================  ========  =====  =====  ==================

The first two are Erysta's documented test products: the API reference shows an order of
TEST_TXT_ID, and its place-order example buys TEST_IMG_ID, which is assumed to be the
image counterpart. GUIDE_TXT_ID and GUIDE_IMG_ID appear in the full response example of
Erysta's orders guide. The ``5a00…`` ids belong to the simulator only.

``steps`` is how many non-terminal phases an order passes through: the first is PENDING and
the others PROCESSING, each lasting ``SimulatorConfig.polls_per_step`` key requests. An
order moves as slowly as its slowest product.

PARTIAL_ID delivers half the units, rounded down, so one unit alone ends FAILED.
PARTIAL_ID, FAILING_ID and REFUNDED_ID have a price so that their refunds show in the
balance and in ``total_debit``. EXPENSIVE_ID costs more than the default balance plus
credit limit. CANARY_ID keys start with CANARY_KEY_PREFIX, so that tests can search logs
and stored data for a string that must never appear there. Prices are in EUR.
"""

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class KeyType(StrEnum):
    """The ``type`` of a delivered key, as it appears in the keys response."""

    TEXT = "text"
    IMAGE = "image"


class Behaviour(StrEnum):
    """The fate of a product's units when their order reaches a terminal status."""

    DELIVER = "deliver"
    DELIVER_HALF = "deliver_half"
    FAIL = "fail"
    REFUND = "refund"


@dataclass(frozen=True)
class Product:
    """One product of the simulated catalogue. ``stock`` None means unlimited."""

    id: str
    title: str
    price: Decimal
    key_type: KeyType = KeyType.TEXT
    behaviour: Behaviour = Behaviour.DELIVER
    steps: int = 0
    stock: int | None = None
    key_prefix: str = ""


TEST_TXT_ID = "69ae19b4397b2e44c02853f5"
TEST_IMG_ID = "69ae19b4397b2e44c02853f6"
GUIDE_TXT_ID = "69ae2cb3a9a53ba2d777fe59"
GUIDE_IMG_ID = "69ae2cb3a9a53ba2d777fe5a"
SLOW_ID = "5a0000000000000000000001"
PARTIAL_ID = "5a0000000000000000000002"
FAILING_ID = "5a0000000000000000000003"
REFUNDED_ID = "5a0000000000000000000004"
OUT_OF_STOCK_ID = "5a0000000000000000000005"
PRICED_ID = "5a0000000000000000000006"
EXPENSIVE_ID = "5a0000000000000000000007"
CANARY_ID = "5a0000000000000000000008"

CANARY_KEY_PREFIX = "CANARY"

PRICED_PRICE = Decimal("12.50")
REFUNDABLE_PRICE = Decimal("5.00")
EXPENSIVE_PRICE = Decimal("10000.00")

PRODUCTS: tuple[Product, ...] = (
    Product(TEST_TXT_ID, "Test Product - TXT", Decimal("0")),
    Product(TEST_IMG_ID, "Test Product - IMG", Decimal("0"), key_type=KeyType.IMAGE),
    Product(GUIDE_TXT_ID, "Test Product - TXT", Decimal("0")),
    Product(GUIDE_IMG_ID, "Test Product - IMG", Decimal("0"), key_type=KeyType.IMAGE),
    Product(SLOW_ID, "Sandbox - Slow delivery", Decimal("0"), steps=2),
    Product(
        PARTIAL_ID,
        "Sandbox - Partial delivery",
        REFUNDABLE_PRICE,
        behaviour=Behaviour.DELIVER_HALF,
    ),
    Product(FAILING_ID, "Sandbox - Failed delivery", REFUNDABLE_PRICE, behaviour=Behaviour.FAIL),
    Product(REFUNDED_ID, "Sandbox - Refunded order", REFUNDABLE_PRICE, behaviour=Behaviour.REFUND),
    Product(OUT_OF_STOCK_ID, "Sandbox - Out of stock", Decimal("0"), stock=0),
    Product(PRICED_ID, "Sandbox - Gift card 12.50 EUR", PRICED_PRICE),
    Product(EXPENSIVE_ID, "Sandbox - Gift card 10000 EUR", EXPENSIVE_PRICE),
    Product(CANARY_ID, "Sandbox - Canary keys", Decimal("0"), key_prefix=CANARY_KEY_PREFIX),
)

CATALOGUE: dict[str, Product] = {product.id: product for product in PRODUCTS}
