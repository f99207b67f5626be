"""The hub's carrier accounts per site (setting ``hub_carrier_accounts``: a TOML file, kept on the
hub only; docs/carriers.md, "A real account").

```toml
[sites.default]
default = "SF"                      # the carrier when the device does not name one
[sites.default.SF]
url = "https://sfapi-sbox.sf-express.com/std/service"
key = "Y7hHmkqf"                    # partnerID (顾客编码)
secret = "..."                      # checkword (校验码)
customer_code = "7551234567"        # monthlyCard (月结卡号)
sender = { name = "杭州仓", phone = "0571-88888888", address = "浙江省杭州市..." }
```
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanedge.sync.carriers.base import CarrierAccount
from scanedge.sync.carriers.registry import ADAPTERS

FIELDS = ("url", "key", "secret", "customer_code", "customer_password", "service")


class AccountsError(ValueError):
    """The accounts file cannot be used (one line naming the file and the key)."""


@dataclass(frozen=True)
class CarrierAccounts:
    sites: Mapping[str, Mapping[str, CarrierAccount]] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)  # site -> carrier code

    def account(self, site: str, carrier: str | None) -> CarrierAccount | None:
        """The site's account with ``carrier`` (None: the site's default carrier)."""
        accounts = self.sites.get(site, {})
        code = carrier or self.defaults.get(site) or (next(iter(accounts)) if len(accounts) == 1
                                                      else None)
        return accounts.get(code) if code else None

    def carriers(self, site: str) -> list[str]:
        return sorted(self.sites.get(site, {}))


def parse_accounts(doc: Mapping[str, Any], where: str = "carrier accounts") -> CarrierAccounts:
    sites = doc.get("sites", {})
    if not isinstance(sites, Mapping):
        raise AccountsError(f"{where}: [sites] must be a table of sites")
    out: dict[str, dict[str, CarrierAccount]] = {}
    defaults: dict[str, str] = {}
    for site, table in sites.items():
        if not isinstance(table, Mapping):
            raise AccountsError(f"{where}: sites.{site} must be a table")
        out[site] = {}
        for code, account in table.items():
            if code == "default":
                if account not in ADAPTERS:
                    raise AccountsError(f"{where}: sites.{site}.default: expected one of "
                                        f"{', '.join(ADAPTERS)}")
                defaults[site] = account
                continue
            if code not in ADAPTERS:
                raise AccountsError(f"{where}: sites.{site}.{code}: no adapter for that carrier "
                                    f"(expected {', '.join(ADAPTERS)})")
            out[site][code] = _account(code, account, f"{where}: sites.{site}.{code}")
    return CarrierAccounts(out, defaults)


def _account(code: str, table: Any, where: str) -> CarrierAccount:
    if not isinstance(table, Mapping):
        raise AccountsError(f"{where} must be a table")
    values: dict[str, Any] = {}
    for name in FIELDS:
        value = table.get(name, "")
        if not isinstance(value, str):
            raise AccountsError(f"{where}.{name}: expected a string")
        values[name] = value
    for name in ("url", "key", "secret"):
        if not values[name]:
            raise AccountsError(f"{where}.{name} is required")
    if not values["url"].startswith(("http://", "https://")):
        raise AccountsError(f"{where}.url: expected http(s)://...")
    sender = table.get("sender", {})
    if not isinstance(sender, Mapping) or not all(isinstance(v, str) for v in sender.values()):
        raise AccountsError(f"{where}.sender: expected {{name, phone, address}} strings")
    timeout = table.get("timeout_s", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise AccountsError(f"{where}.timeout_s: expected a positive number of seconds")
    return CarrierAccount(carrier=code, sender=dict(sender), timeout_s=float(timeout), **values)


def load_accounts(path: str) -> CarrierAccounts:
    """The accounts file named by ``hub_carrier_accounts`` ("" : no accounts)."""
    if not path:
        return CarrierAccounts()
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise AccountsError(f"hub_carrier_accounts {path}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise AccountsError(f"hub_carrier_accounts {path}: not valid TOML: {e}") from None
    return parse_accounts(doc, f"hub_carrier_accounts {path}")
