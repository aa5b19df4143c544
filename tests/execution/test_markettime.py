"""IST is defined once, in execution.markettime, and every module takes it from there."""

from __future__ import annotations

import ast
from pathlib import Path

from execution.markettime import IST

ROOT = Path(__file__).resolve().parents[2]
HOME = ROOT / "execution" / "markettime.py"


def _builds_ist(call: ast.Call) -> bool:
    """ZoneInfo("Asia/Kolkata"), or timezone(timedelta(hours=5, minutes=30))."""
    name = getattr(call.func, "id", getattr(call.func, "attr", ""))
    if name == "ZoneInfo":
        return any(
            isinstance(arg, ast.Constant) and arg.value == "Asia/Kolkata" for arg in call.args
        )
    if name == "timezone" and call.args and isinstance(call.args[0], ast.Call):
        offset = call.args[0]
        given = {k.arg: getattr(k.value, "value", None) for k in offset.keywords}
        return given.get("hours") == 5 and given.get("minutes") == 30
    return False


def _strays(path: Path, root: Path = ROOT) -> set[str]:
    """Where `path` defines IST, takes it from another module, or builds the zone itself."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module != "execution.markettime":
            if any(alias.name == "IST" for alias in node.names):
                found.add(f"{where} imports IST from {node.module}")
        elif isinstance(node, ast.Attribute) and node.attr == "IST":
            found.add(f"{where} reads IST as an attribute of another module")
        elif isinstance(node, ast.Name) and node.id == "IST" and isinstance(node.ctx, ast.Store):
            found.add(f"{where} defines IST")
        elif isinstance(node, ast.Call) and _builds_ist(node):
            found.add(f"{where} builds the zone itself")
    return found


def test_ist_is_the_indian_zone():
    assert str(IST) == "Asia/Kolkata"


def test_ist_is_defined_once_and_imported_from_markettime_only():
    sources = [
        path
        for folder in ("execution", "brokers", "trader", "marketplace", "tests")
        for path in (ROOT / folder).rglob("*.py")
        if "migrations" not in path.parts and path != HOME
    ]
    assert set().union(*(_strays(path) for path in sources)) == set()


def test_the_check_finds_a_second_definition(tmp_path):
    stray = tmp_path / "stray.py"
    stray.write_text(
        "from zoneinfo import ZoneInfo\n"
        "from trader.india import IST\n"
        "import trader.india\n"
        "IST = ZoneInfo('Asia/Kolkata')\n"
        "OFFSET = datetime.timezone(datetime.timedelta(hours=5, minutes=30))\n"
        "later = trader.india.IST\n"
    )
    assert _strays(stray, root=tmp_path) == {
        "stray.py:2 imports IST from trader.india",
        "stray.py:4 defines IST",
        "stray.py:4 builds the zone itself",
        "stray.py:5 builds the zone itself",
        "stray.py:6 reads IST as an attribute of another module",
    }
