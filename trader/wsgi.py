import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trader.settings")
application = get_wsgi_application()
# Import every view as the worker starts rather than on its first request: Django loads the
# URLconf lazily, and the views pull in the pricing model (vollib, scipy), seconds of imports
# that the first trader to reach each new worker would otherwise wait for.
get_resolver().url_patterns  # noqa: B018
