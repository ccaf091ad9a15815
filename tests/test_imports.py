"""
Which package may import which: the contracts in pyproject.toml's [tool.importlinter],
checked by import-linter over the source, so an import that breaks one fails here even
if no test runs the code that holds it. Product code (activitylog, clients, demo,
agencyhandy) never imports the benchmarks, the tests or the soak, and the apps depend one
way: demo on activitylog, activitylog on clients, with one documented edge back (the
clients pages read the log's selectors).
"""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_every_import_contract_is_kept():
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_contract_forbids_product_code_to_import_the_benchmarks_the_tests_and_the_soak():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert any(
        contract["type"] == "forbidden"
        and {"activitylog", "clients", "demo", "agencyhandy"} <= set(contract["source_modules"])
        and {"bench", "tests", "soak"} <= set(contract["forbidden_modules"])
        for contract in contracts
    )


def test_a_contract_keeps_the_activity_log_above_the_clients_app_with_one_edge_back():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    [layers] = [contract for contract in contracts if contract["type"] == "layers"]
    assert layers["layers"].index("activitylog") < layers["layers"].index("clients")
    assert layers["ignore_imports"] == ["clients.views -> activitylog.selectors"]
