"""Generate ``samples/shop/webshop.log``: a realistic application log of a small web shop.

Written by the logpipe authors for ``make run`` and the tests; no real system's data is in it.
Seeded, so every run writes the same bytes::

    python samples/generate_webshop.py            # rewrite samples/shop/webshop.log
    python samples/generate_webshop.py --check    # exit 1 if the committed file is stale

Log format (Loghub style, for ``logpipe parse --log-format``)::

    <Date> <Time> <Level> \\[<Thread>\\] <Component>: <Content>

e.g. ``2024-03-05 10:00:01,123 INFO [worker-3] checkout.payment: Payment 83a1c0de authorised
for order 100234 amount=59.90 EUR in 132 ms``. About 45 message templates over ids, IPs,
durations, sizes, paths, users, UUIDs and status codes; a payment-gateway outage and a
database-pool exhaustion give WARN/ERROR bursts, and two errors carry multi-line Python
tracebacks (lines that do not match the format, as in real logs).
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

OUT = Path(__file__).resolve().parent / "shop" / "webshop.log"
SEED = 20240305
LINES = 4000
START = datetime(2024, 3, 5, 10, 0, 0)

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
USERS += ["mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "wendy"]
PRODUCTS = ["SKU-1001", "SKU-1002", "SKU-1013", "SKU-2040", "SKU-2041", "SKU-3300", "SKU-4711"]
CURRENCIES = ["EUR", "EUR", "EUR", "USD", "GBP"]
PATHS = ["/", "/cart", "/checkout", "/search", "/account", "/api/v1/products", "/api/v1/cart"]
PATHS += ["/api/v1/orders", "/static/app.js", "/static/style.css", "/product/{sku}"]
CARRIERS = ["DHL", "UPS", "DPD", "GLS"]
CACHES = ["product", "price", "session", "category"]


class Shop:
    """State of the simulated shop: clock, ids, which incident is on."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.now = START
        self.order = 100_230
        self.lines: list[str] = []
        self.gateway_down = False
        self.pool_exhausted = False

    # -- variables
    def tick(self) -> None:
        self.now += timedelta(milliseconds=self.rng.randint(3, 900))

    def ip(self) -> str:
        r = self.rng
        return f"{r.choice([10, 172, 192])}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def hex8(self) -> str:
        return f"{self.rng.getrandbits(32):08x}"

    def ms(self, lo: int = 2, hi: int = 400) -> int:
        return int(self.rng.lognormvariate(0, 0.8) * (lo + hi) / 4) % hi + lo

    def amount(self) -> str:
        return f"{self.rng.uniform(4.5, 480):.2f}"

    def path(self) -> str:
        return self.rng.choice(PATHS).replace("{sku}", self.rng.choice(PRODUCTS))

    def next_order(self) -> int:
        self.order += 1
        return self.order

    # -- output
    def emit(self, level: str, component: str, message: str) -> None:
        self.tick()
        stamp = self.now.strftime("%Y-%m-%d %H:%M:%S") + f",{self.now.microsecond // 1000:03d}"
        thread = f"worker-{self.rng.randint(1, 8)}"
        if component.startswith(("scheduler", "cache.")):
            thread = self.rng.choice(["scheduler-1", "scheduler-2"])
        self.lines.append(f"{stamp} {level} [{thread}] {component}: {message}")

    def raw(self, text: str) -> None:
        self.lines.append(text)


def http(s: Shop) -> None:
    r = s.rng
    status = r.choices([200, 201, 204, 301, 304, 404, 500], [70, 6, 4, 3, 8, 6, 1])[0]
    method = "POST" if r.random() < 0.2 else "GET"
    level = "ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO"
    s.emit(
        level,
        "web.access",
        f"{method} {s.path()} from {s.ip()} status={status} bytes={r.randint(120, 98000)} "
        f"in {s.ms()} ms",
    )


def session(s: Shop) -> None:
    r = s.rng
    user = r.choice(USERS)
    choice = r.random()
    if choice < 0.4:
        s.emit("INFO", "auth.session", f"User {user} logged in from {s.ip()} session={s.uid()}")
    elif choice < 0.7:
        s.emit(
            "INFO",
            "auth.session",
            f"Session {s.uid()} of user {user} expired after {r.randint(5, 120)} min",
        )
    elif choice < 0.9:
        s.emit(
            "WARN",
            "auth.login",
            f"Failed login for user {user} from {s.ip()}: bad password (attempt {r.randint(1, 5)})",
        )
    else:
        s.emit("INFO", "auth.session", f"User {user} logged out")


def cart(s: Shop) -> None:
    r = s.rng
    user = r.choice(USERS)
    choice = r.random()
    if choice < 0.5:
        s.emit(
            "INFO",
            "cart.service",
            f"Added {r.randint(1, 4)} x {r.choice(PRODUCTS)} to cart {s.hex8()} of user {user}",
        )
    elif choice < 0.75:
        s.emit("INFO", "cart.service", f"Removed {r.choice(PRODUCTS)} from cart {s.hex8()}")
    elif choice < 0.9:
        s.emit(
            "DEBUG",
            "cart.pricing",
            f"Cart {s.hex8()} total={s.amount()} {r.choice(CURRENCIES)} items={r.randint(1, 9)}",
        )
    else:
        s.emit(
            "INFO",
            "cart.coupon",
            f"Coupon SPRING{r.randint(10, 30)} applied to cart {s.hex8()}: -{r.randint(5, 25)}%",
        )


def checkout(s: Shop) -> None:
    r = s.rng
    order = s.next_order()
    s.emit(
        "INFO",
        "checkout.order",
        f"Order {order} created for user {r.choice(USERS)} with {r.randint(1, 6)} items",
    )
    if s.gateway_down:
        s.emit(
            "WARN",
            "checkout.payment",
            f"Payment gateway timeout after {r.randint(3000, 5000)} ms for order {order}, retry {r.randint(1, 3)}/3",
        )
        if r.random() < 0.6:
            s.emit(
                "ERROR",
                "checkout.payment",
                f"Payment {s.hex8()} failed for order {order}: gateway unavailable (HTTP 503)",
            )
            return
    if r.random() < 0.06:
        s.emit(
            "WARN",
            "checkout.payment",
            f"Payment {s.hex8()} declined for order {order}: insufficient funds",
        )
        return
    s.emit(
        "INFO",
        "checkout.payment",
        f"Payment {s.hex8()} authorised for order {order} amount={s.amount()} "
        f"{r.choice(CURRENCIES)} in {s.ms(40, 900)} ms",
    )
    s.emit(
        "INFO",
        "checkout.order",
        f"Order {order} confirmed, confirmation mail queued to {r.choice(USERS)}@example.com",
    )
    if r.random() < 0.5:
        s.emit(
            "INFO",
            "shipping.label",
            f"Shipping label {r.choice(CARRIERS)}-{r.randint(10**9, 10**10 - 1)} created for order {order}",
        )


def search(s: Shop) -> None:
    r = s.rng
    words = r.choice(["red shoes", "laptop bag", "coffee", "usb-c cable", "desk lamp", "gift card"])
    if r.random() < 0.85:
        s.emit(
            "INFO",
            "search.query",
            f"Query '{words}' returned {r.randint(0, 240)} results in {s.ms(3, 180)} ms",
        )
    else:
        s.emit(
            "WARN",
            "search.query",
            f"Slow query '{words}' took {r.randint(1200, 4800)} ms (threshold 1000 ms)",
        )


def inventory(s: Shop) -> None:
    r = s.rng
    sku = r.choice(PRODUCTS)
    choice = r.random()
    if choice < 0.6:
        s.emit(
            "INFO",
            "inventory.stock",
            f"Reserved {r.randint(1, 4)} units of {sku}, {r.randint(0, 300)} left",
        )
    elif choice < 0.85:
        s.emit(
            "WARN",
            "inventory.stock",
            f"Low stock for {sku}: {r.randint(0, 5)} units left (reorder level 10)",
        )
    else:
        s.emit(
            "INFO",
            "inventory.sync",
            f"Synced {r.randint(100, 900)} products from warehouse WH-{r.randint(1, 3)} in {r.randint(200, 3000)} ms",
        )


def background(s: Shop) -> None:
    r = s.rng
    choice = r.random()
    if choice < 0.3:
        s.emit(
            "DEBUG",
            f"cache.{r.choice(CACHES)}",
            f"Evicted {r.randint(1, 500)} entries, size={r.randint(1, 64)} MB hit_ratio={r.uniform(0.6, 0.99):.2f}",
        )
    elif choice < 0.5:
        s.emit(
            "INFO",
            "scheduler.jobs",
            f"Job cleanup-carts finished: removed {r.randint(0, 80)} abandoned carts in {r.randint(20, 900)} ms",
        )
    elif choice < 0.65:
        s.emit(
            "INFO",
            "mail.sender",
            f"Sent mail {s.uid()} to {r.choice(USERS)}@example.com via smtp relay {s.ip()}",
        )
    elif choice < 0.8:
        s.emit(
            "DEBUG",
            "db.pool",
            f"Connection pool stats: active={r.randint(1, 20)} idle={r.randint(0, 10)} waiting=0",
        )
    elif choice < 0.9:
        s.emit(
            "INFO",
            "storage.upload",
            f"Stored image /media/products/{r.choice(PRODUCTS)}/{s.hex8()}.jpg ({r.randint(20, 4000)} KB)",
        )
    else:
        s.emit(
            "INFO",
            "api.ratelimit",
            f"Client {s.ip()} throttled: {r.randint(101, 400)} requests in 60 s (limit 100)",
        )


def gateway_outage_starts(s: Shop) -> None:
    s.gateway_down = True
    s.emit(
        "ERROR",
        "checkout.gateway",
        "Health check failed for payment gateway https://pay.example.net/health: connection timed out",
    )
    s.emit(
        "WARN", "checkout.gateway", "Circuit breaker for payment gateway opened after 5 failures"
    )


def gateway_outage_ends(s: Shop) -> None:
    s.gateway_down = False
    s.emit(
        "INFO",
        "checkout.gateway",
        f"Circuit breaker for payment gateway closed, probe succeeded in {s.ms(80, 400)} ms",
    )


def pool_exhausted(s: Shop) -> None:
    r = s.rng
    for _ in range(r.randint(6, 10)):
        s.emit(
            "WARN",
            "db.pool",
            f"Waiting for a database connection: 20 of 20 in use, {r.randint(3, 40)} waiting",
        )
    order = s.next_order()
    s.emit(
        "ERROR",
        "checkout.order",
        f"Order {order} could not be saved: database connection timeout after 30000 ms",
    )
    traceback(s, order)
    for _ in range(r.randint(2, 4)):
        s.emit(
            "ERROR",
            "web.access",
            f"POST /api/v1/orders from {s.ip()} status=500 bytes=312 in {r.randint(30000, 30050)} ms",
        )
    s.emit("INFO", "db.pool", "Connection pool recovered: active=7 idle=13 waiting=0")


def traceback(s: Shop, order: int) -> None:
    s.raw("Traceback (most recent call last):")
    s.raw('  File "/srv/shop/checkout/orders.py", line 214, in save_order')
    s.raw("    with db.connection(timeout=30) as conn:")
    s.raw('  File "/srv/shop/db/pool.py", line 88, in connection')
    s.raw('    raise PoolTimeout(f"no connection after {timeout} s")')
    s.raw("shop.db.pool.PoolTimeout: no connection after 30 s")


def config_error(s: Shop) -> None:
    s.emit(
        "ERROR", "pricing.rules", "Failed to load price rule file /etc/shop/rules/spring-sale.yaml"
    )
    s.raw("Traceback (most recent call last):")
    s.raw('  File "/srv/shop/pricing/rules.py", line 52, in load_rules')
    s.raw("    rules = yaml.safe_load(fh)")
    s.raw("yaml.scanner.ScannerError: mapping values are not allowed here")
    s.raw('  in "/etc/shop/rules/spring-sale.yaml", line 17, column 12')
    s.emit("WARN", "pricing.rules", "Falling back to the previous price rules (version 41)")


def startup(s: Shop) -> None:
    s.emit("INFO", "app.main", "Starting webshop 3.14.2 (python 3.11.7, 8 workers)")
    s.emit("INFO", "db.pool", "Connected to postgresql://db.internal:5432/shop, pool size 20")
    s.emit("INFO", "cache.product", "Warmed up product cache with 4711 entries in 812 ms")
    s.emit("INFO", "app.main", "Listening on 0.0.0.0:8080")


def generate(seed: int = SEED, lines: int = LINES) -> str:
    """The whole log as text (deterministic for a given seed)."""
    rng = random.Random(seed)
    shop = Shop(rng)
    startup(shop)
    actions: list[tuple[Callable[[Shop], None], int]] = [
        (http, 30),
        (session, 10),
        (cart, 14),
        (checkout, 10),
        (search, 10),
        (inventory, 6),
        (background, 10),
    ]
    funcs = [f for f, _ in actions]
    weights = [w for _, w in actions]
    incidents = {
        int(lines * 0.30): gateway_outage_starts,
        int(lines * 0.36): gateway_outage_ends,
        int(lines * 0.55): pool_exhausted,
        int(lines * 0.80): config_error,
    }
    fired: set[int] = set()
    while len(shop.lines) < lines:
        for at, incident in incidents.items():
            if at not in fired and len(shop.lines) >= at:
                fired.add(at)
                incident(shop)
        rng.choices(funcs, weights)[0](shop)
    return "\n".join(shop.lines[:lines]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the committed file differs")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    text = generate()
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == text
        sys.stderr.write("up to date\n" if same else f"{args.out} is stale: regenerate it\n")
        return 0 if same else 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
