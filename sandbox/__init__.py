"""Local stand-ins for the outside world: an Erysta API simulator and a demo shop.

The simulator serves the three documented Erysta endpoints over real HTTP, with a product
catalogue that covers every order outcome and admin endpoints to inject faults. The shop
receives the workers' signed webhooks and records them.
"""

from sandbox.config import SimulatorConfig
from sandbox.faults import Endpoint, Fault, RandomFault
from sandbox.http import RunningServer
from sandbox.shop import RunningShop, serve_shop, start_shop
from sandbox.simulator import RunningSimulator, serve_simulator, start_simulator

__all__ = [
    "Endpoint",
    "Fault",
    "RandomFault",
    "RunningServer",
    "RunningShop",
    "RunningSimulator",
    "SimulatorConfig",
    "serve_shop",
    "serve_simulator",
    "start_shop",
    "start_simulator",
]
