"""Run the simulator and the demo shop in the foreground, as the sandbox service does."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from sandbox.shop import start_shop
from sandbox.simulator import SimulatorConfig, start_simulator
from workers.logs import configure_logging

logger = logging.getLogger(__name__)


def run_sandbox(
    *,
    host: str,
    simulator_port: int,
    shop_port: int | None,
    api_key: str,
    webhook_secret: str | None,
) -> None:
    """Serve until SIGINT or SIGTERM, then stop both servers."""
    configure_logging()
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    simulator = start_simulator(
        SimulatorConfig(api_keys=frozenset({api_key})), host, simulator_port
    )
    logger.info(
        "Erysta simulator listening: point workers at ERYSTA_BASE_URL=%s with ERYSTA_API_KEY "
        "set to the sandbox's --api-key (SANDBOX_API_KEY)",
        simulator.base_url,
    )
    shop = None
    if shop_port is not None and webhook_secret is not None:
        shop = start_shop(webhook_secret, host, shop_port)
        logger.info("demo shop receiving webhooks at %s", shop.webhook_url)
    try:
        stop.wait()
    finally:
        logger.info("stopping the sandbox")
        simulator.stop()
        if shop is not None:
            shop.stop()
