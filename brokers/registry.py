"""Which adapter class serves which broker, and an adapter ready to act for one account.

Each broker package (`brokers/<name>/`, `<name>` as in `Broker`) exposes its BrokerAdapter
subclass, whose `name` equals the package name, from the package itself or from its `adapter`
module. Adapters find their hosts in `settings.BROKER_BASE_URLS[name]` (passed in as
`base_url`) and their login page in `settings.BROKER_LOGIN_URLS[name]`; both are overridable
from the environment so tests and development point them at the local emulators.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from types import ModuleType

from django.conf import settings

from brokers.base import BrokerAdapter, Credentials
from brokers.models import Broker, BrokerAccount


class AdapterUnavailableError(LookupError):
    """No adapter is installed for this broker."""


def _adapter_in(module: ModuleType, broker: str) -> type[BrokerAdapter] | None:
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if (
            issubclass(obj, BrokerAdapter)
            and not inspect.isabstract(obj)
            and getattr(obj, "name", None) == broker
        ):
            return obj
    return None


@functools.cache
def adapter_class(broker: str) -> type[BrokerAdapter]:
    """The adapter class for a broker code (`kite`, `paper`…); AdapterUnavailableError if the
    broker is unknown or its package is not installed."""
    if broker not in Broker.values:
        raise AdapterUnavailableError(f"Unknown broker {broker!r}.")
    for module_path in (f"brokers.{broker}", f"brokers.{broker}.adapter"):
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as exc:
            # Only a missing adapter module means "not installed"; a broken import inside it
            # must surface.
            if exc.name is None or not module_path.startswith(exc.name):
                raise
            continue
        found = _adapter_in(module, broker)
        if found is not None:
            return found
    raise AdapterUnavailableError(f"No adapter is installed for {Broker(broker).label}.")


def is_available(broker: str) -> bool:
    try:
        adapter_class(broker)
    except AdapterUnavailableError:
        return False
    return True


def base_url_for(broker: str) -> str | None:
    return settings.BROKER_BASE_URLS.get(broker)


def credentials_for(account: BrokerAccount) -> Credentials:
    """Decrypted credentials, in memory only. The paper broker finds its book by account id."""
    extra = {"account_id": str(account.pk)}
    if account.algo_id:
        extra["algo_id"] = account.algo_id
    return Credentials(
        api_key=account.api_key,
        api_secret=account.api_secret,
        access_token=account.access_token,
        client_id=account.broker_user_id,
        extra=extra,
    )


def get_adapter(account: BrokerAccount) -> BrokerAdapter:
    """An adapter acting for this account, with its decrypted credentials and configured host."""
    cls = adapter_class(account.broker)
    return cls(credentials_for(account), base_url=base_url_for(account.broker))
