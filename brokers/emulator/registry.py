"""Broker name → emulator class. Helpers add their broker here (one line each)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from brokers.emulator.core import BrokerEmulator

BROKERS: dict[str, str] = {
    "kite": "brokers.emulator.kite:KiteEmulator",
    "upstox": "brokers.emulator.upstox:UpstoxEmulator",
    "angelone": "brokers.emulator.angelone:AngelOneEmulator",
    "fyers": "brokers.emulator.fyers:FyersEmulator",
    "dhan": "brokers.emulator.dhan:DhanEmulator",
}


def emulator_class(name: str) -> type[BrokerEmulator]:
    try:
        target = BROKERS[name]
    except KeyError:
        raise ValueError(f"unknown broker {name!r}; choose one of {sorted(BROKERS)}") from None
    module_name, _, class_name = target.partition(":")
    cls: type[BrokerEmulator] = getattr(importlib.import_module(module_name), class_name)
    return cls
