"""Generate ``samples/shop/webshop.log``: a realistic application log of a web shop.

Authored for logpipe's ``make run`` and tests (no third-party data). Seeded, so the file is
reproducible byte for byte: ``python samples/generate_webshop.py``. Format (for
``--log-format``): ``<Date> <Time> <Level> \\[<Thread>\\] <Component>: <Content>``.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from pathlib import Path

SEED = 20241105
LINES = 4000

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
PRODUCTS = ["sku-1042", "sku-2291", "sku-3310", "sku-4478", "sku-5120", "sku-6634"]
PATHS = ["/api/cart", "/api/checkout", "/api/products", "/api/orders", "/api/login", "/health"]
CARRIERS = ["DHL", "UPS", "FedEx", "GLS"]


def _ip(rng: random.Random) -> str:
    return f"10.{rng.randint(0, 3)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _events(rng: random.Random) -> list[tuple[int, str, str, callable]]:  # type: ignore[valid-type]
    u = lambda: rng.choice(USERS)
    oid = lambda: str(rng.randint(100000, 999999))
    ms = lambda: str(rng.randint(2, 900))
    return [
        (
            40,
            "INFO",
            "http.access",
            lambda: (
                f"{_ip(rng)} {rng.choice(['GET', 'POST'])} {rng.choice(PATHS)} status={rng.choice([200, 200, 200, 201, 204, 304])} bytes={rng.randint(120, 90000)} duration={ms()}ms"
            ),
        ),
        (12, "INFO", "auth.session", lambda: f"User {u()} logged in from {_ip(rng)}"),
        (
            6,
            "INFO",
            "auth.session",
            lambda: (
                f"Session {uuid.UUID(int=rng.getrandbits(128))} expired after {rng.randint(5, 120)} minutes"
            ),
        ),
        (
            3,
            "WARN",
            "auth.session",
            lambda: f"Failed login for user {u()} from {_ip(rng)}: invalid password",
        ),
        (
            10,
            "INFO",
            "cart.service",
            lambda: f"Added {rng.randint(1, 5)} x {rng.choice(PRODUCTS)} to cart of user {u()}",
        ),
        (
            5,
            "INFO",
            "cart.service",
            lambda: f"Removed {rng.choice(PRODUCTS)} from cart of user {u()}",
        ),
        (
            8,
            "INFO",
            "checkout.payment",
            lambda: (
                f"Payment {uuid.UUID(int=rng.getrandbits(128)).hex[:12]} authorised for order {oid()} amount={rng.randint(5, 400)}.{rng.randint(0, 99):02d} EUR in {ms()} ms"
            ),
        ),
        (
            2,
            "ERROR",
            "checkout.payment",
            lambda: (
                f"Payment declined for order {oid()}: card issuer returned code {rng.choice([5, 51, 54, 61])}"
            ),
        ),
        (
            6,
            "INFO",
            "checkout.order",
            lambda: f"Order {oid()} created for user {u()} with {rng.randint(1, 9)} items",
        ),
        (
            4,
            "INFO",
            "shipping.label",
            lambda: (
                f"Shipping label {rng.choice(CARRIERS)}-{rng.randint(10**9, 10**10 - 1)} printed for order {oid()}"
            ),
        ),
        (
            3,
            "INFO",
            "inventory.sync",
            lambda: (
                f"Stock level for {rng.choice(PRODUCTS)} updated to {rng.randint(0, 500)} units"
            ),
        ),
        (
            1,
            "WARN",
            "inventory.sync",
            lambda: f"Stock for {rng.choice(PRODUCTS)} below threshold: {rng.randint(0, 9)} left",
        ),
        (
            3,
            "INFO",
            "search.index",
            lambda: (
                f"Indexed {rng.randint(10, 5000)} documents in {rng.randint(1, 90)}.{rng.randint(0, 9)} s"
            ),
        ),
        (
            2,
            "DEBUG",
            "db.pool",
            lambda: (
                f"Connection pool stats: active={rng.randint(0, 20)} idle={rng.randint(0, 20)} waiting={rng.randint(0, 5)}"
            ),
        ),
        (
            1,
            "WARN",
            "db.pool",
            lambda: f"Slow query on table orders took {rng.randint(1000, 9000)} ms",
        ),
        (
            2,
            "INFO",
            "cache.redis",
            lambda: (
                f"Cache hit ratio {rng.randint(60, 99)}.{rng.randint(0, 9)}% over last {rng.choice([60, 300])} s"
            ),
        ),
        (
            1,
            "ERROR",
            "mail.smtp",
            lambda: (
                f"Could not deliver mail to {u()}@example.com: connection to {_ip(rng)}:25 timed out"
            ),
        ),
        (
            1,
            "INFO",
            "scheduler",
            lambda: (
                f"Job nightly-report finished in {rng.randint(20, 400)} s, wrote /var/reports/{rng.randint(2024, 2025)}-{rng.randint(1, 12):02d}.csv"
            ),
        ),
    ]


STACK = [
    "java.lang.IllegalStateException: Payment gateway unavailable",
    "\tat com.shop.checkout.PaymentClient.authorise(PaymentClient.java:{n})",
    "\tat com.shop.checkout.CheckoutService.pay(CheckoutService.java:{m})",
    "\tat java.base/java.lang.Thread.run(Thread.java:833)",
]


def generate(lines: int = LINES, seed: int = SEED) -> str:
    """The whole sample log as text (deterministic for a seed)."""
    rng = random.Random(seed)
    events = _events(rng)
    weights = [e[0] for e in events]
    t = datetime(2024, 11, 5, 8, 0, 0)
    out: list[str] = []
    while len(out) < lines:
        t += timedelta(milliseconds=rng.randint(5, 2500))
        stamp = t.strftime("%Y-%m-%d %H:%M:%S,") + f"{t.microsecond // 1000:03d}"
        thread = f"worker-{rng.randint(1, 8)}"
        if rng.random() < 0.002:
            out.append(
                f"{stamp} ERROR [{thread}] checkout.service: Unhandled exception in checkout"
            )
            out.extend(s.format(n=rng.randint(40, 200), m=rng.randint(40, 200)) for s in STACK)
            continue
        _, level, component, make = rng.choices(events, weights)[0]
        out.append(f"{stamp} {level} [{thread}] {component}: {make()}")
    return "\n".join(out[:lines]) + "\n"


if __name__ == "__main__":
    target = Path(__file__).resolve().parent / "shop" / "webshop.log"
    target.write_text(generate(), encoding="utf-8")
    print(f"wrote {target}")
