"""The architecture's rules, checked: services apart, a pure shared core, rules free of the framework.

The contracts are in ``.importlinter`` at the top of the repository; ``lint-imports`` reads them. The
second test proves they can fail: it copies the packages, adds one forbidden import to the copy, and
expects the linter to name the broken contract.
"""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT = os.path.join(os.path.dirname(sys.executable), "lint-imports")
CONFIG = os.path.join(ROOT, ".importlinter")
# Each root package of the contracts and the folder it lives in.
PACKAGES = {
    "helpdesk_common": "common",
    "helpdesk_tickets": "services/tickets",
    "helpdesk_routing": "services/routing",
    "helpdesk_intake": "services/intake",
    "helpdesk_kb_search": "services/kb-search",
    "helpdesk_surveys": "services/surveys",
    "helpdesk_analytics": "services/analytics",
    "helpdesk_gateway": "gateway",
}


def lint(config, pythonpath=None):
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath  # the copies come first on sys.path, before the editable installs
    result = subprocess.run([LINT, "--config", config, "--no-cache"], capture_output=True, text=True, env=env,
                            cwd=os.path.dirname(config), timeout=300)
    return result.returncode, result.stdout + result.stderr


def test_the_contracts_hold():
    code, output = lint(CONFIG)
    assert code == 0, output
    assert "0 broken" in output


@pytest.fixture(scope="module")
def copy_of_the_code(tmp_path_factory):
    root = tmp_path_factory.mktemp("architecture")
    for package, folder in PACKAGES.items():
        shutil.copytree(os.path.join(ROOT, folder, package), root / package,
                        ignore=shutil.ignore_patterns("__pycache__", "tests"))
    shutil.copy(CONFIG, root / ".importlinter")
    return root


@pytest.mark.parametrize("module, line, contract", [
    ("helpdesk_tickets/domain.py", "import nameko.rpc", "Business rules import no framework"),
    ("helpdesk_routing/rules.py", "from helpdesk_common.adapters import consumer", "Business rules import no framework"),
    ("helpdesk_common/outbox.py", "import kombu", "The shared core imports no framework"),
    ("helpdesk_tickets/service.py", "import helpdesk_routing.models", "No service imports another"),
    ("helpdesk_gateway/app.py", "from helpdesk_intake.domain import mime", "No service imports another"),
])
def test_a_forbidden_import_breaks_a_contract(copy_of_the_code, module, line, contract):
    path = copy_of_the_code / module
    original = path.read_text()
    try:
        path.write_text(original + f"\n{line}  # added by test_architecture\n")
        code, output = lint(str(copy_of_the_code / ".importlinter"), pythonpath=str(copy_of_the_code))
    finally:
        path.write_text(original)
    assert code != 0, output
    assert f"{contract}" in output and "BROKEN" in output, output
    # and the copy as it was keeps every contract (so it was the added line that broke it)
    code, output = lint(str(copy_of_the_code / ".importlinter"), pythonpath=str(copy_of_the_code))
    assert code == 0, output


def test_the_readme_is_an_entry_point_and_every_part_has_its_own():
    """The README fits on a few screens; each folder it lists says what it owns in a README of its own."""
    with open(os.path.join(ROOT, "README.md")) as stream:
        readme = stream.read()
    assert len(readme.splitlines()) < 250
    for folder in ("common", "gateway", "bench", "deploy", *(f"services/{name}" for name in os.listdir(
            os.path.join(ROOT, "services")))):
        assert os.path.isfile(os.path.join(ROOT, folder, "README.md")), folder
        assert f"`{folder}/" in readme, f"the README's folder table has no row for {folder}"


SERVICE_PACKAGES = {"tickets": "helpdesk_tickets", "routing": "helpdesk_routing", "intake": "helpdesk_intake",
                    "kb-search": "helpdesk_kb_search", "surveys": "helpdesk_surveys", "analytics": "helpdesk_analytics"}


def imported_packages(path):
    """The top-level packages a Python file imports (anywhere in it, functions included)."""
    import ast

    with open(path) as stream:
        tree = ast.parse(stream.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("folder", sorted(SERVICE_PACKAGES))
def test_a_services_tests_import_no_other_service_and_no_gateway(folder):
    """Tests that span services live in tests/; a service's own tests exercise it alone."""
    others = {package for name, package in SERVICE_PACKAGES.items() if name != folder} | {"helpdesk_gateway"}
    tests = os.path.join(ROOT, "services", folder, "tests")
    offending = {}
    for name in sorted(os.listdir(tests)):
        if name.endswith(".py"):
            found = imported_packages(os.path.join(tests, name)) & others
            if found:
                offending[name] = sorted(found)
    assert offending == {}
