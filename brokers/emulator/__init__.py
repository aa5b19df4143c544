"""Local emulators of the brokers' documented HTTP APIs (see core.py for how they work and
how to add a broker). Entry points: `python -m brokers.emulator`, `start_in_thread`,
`start_subprocess`."""

from brokers.emulator.core import Clock, EmulatorOptions
from brokers.emulator.handle import (
    EmulatorHandle,
    RunningEmulator,
    SubprocessEmulator,
    start_in_thread,
    start_subprocess,
)

__all__ = [
    "Clock",
    "EmulatorHandle",
    "EmulatorOptions",
    "RunningEmulator",
    "SubprocessEmulator",
    "start_in_thread",
    "start_subprocess",
]
