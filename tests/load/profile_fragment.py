"""CPU per request of one desk fragment, in-process (no server, no network), and where it goes.

    DATABASE_URL=postgres://…/trader_load DEBUG=0 SECRET_KEY=… ALLOWED_HOSTS=127.0.0.1 \\
      FIELD_ENCRYPTION_KEYS=… python tests/load/profile_fragment.py run --requests 300 --profile

Uses the first trader of a `seed_desk_load --out desk-load.json` database through Django's test
client, with the settings gunicorn would run (DEBUG=0: cached templates, no debug toolbar).
Prints the process CPU per request (less sensitive to other processes than wall time) and,
with --profile, cProfile's top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trader.settings")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("fragment", choices=["dashboard", "run", "positions"])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--traders", default="desk-load.json")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--lines", type=int, default=50)
    args = parser.parse_args()

    import django

    django.setup()
    from django.test import Client

    with open(args.traders, encoding="utf-8") as traders:
        trader = json.load(traders)["traders"][0]
    name, value = trader["cookie"].split("=", 1)
    client = Client(HTTP_HOST="127.0.0.1", HTTP_HX_REQUEST="true")
    client.cookies[name] = value
    path = {
        "dashboard": "/desk/live/",
        "run": f"/execution/runs/{trader['runs'][0]}/live/",
        "positions": "/execution/positions/live/",
    }[args.fragment]
    for _ in range(20):  # warm: imports, template cache, the funds cache
        response = client.get(path)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
    started = time.process_time()
    for _ in range(args.requests):
        client.get(path)
    per_request = (time.process_time() - started) / args.requests * 1000
    print(f"{args.fragment}: {per_request:.2f} ms CPU per request ({args.requests} requests)")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.requests):
            client.get(path)
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(args.lines)


if __name__ == "__main__":
    main()
