"""The WSGI entry point a gunicorn worker imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_a_worker_imports_every_view_before_its_first_request():
    # Django loads the URLconf on the first request; the views import the pricing model
    # (seconds), which the first trader reaching each new worker would otherwise wait for.
    code = "import sys, trader.wsgi; print('execution.views' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "trader.settings"},
        timeout=120,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "True"
