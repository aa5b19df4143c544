"""Market time: every market-time rule is computed in IST (Asia/Kolkata), defined here once.

A leaf without Django, so the simulated market, pricing and the broker emulators (which run
without the platform's settings) use the same definition as the engine and the pages. Import
IST from here, never through another module, and never define it again
(tests/execution/test_markettime.py checks).
"""

from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
