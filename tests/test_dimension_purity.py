"""Scoring stays pure: the dimension modules and the gate import neither torch nor pytest."""

from __future__ import annotations

import subprocess
import sys

import pytest

from comptrust_plugin import dimensions

PURE_MODULES = [
    *(dimension.__name__ for dimension in dimensions.all_dimensions()),
    "comptrust_plugin.dimensions",
    "comptrust_plugin.dimensions.protocol",
    "comptrust_plugin.dimensions.agreement",
    "comptrust_plugin.gate",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_module_imports_neither_torch_nor_pytest(module: str) -> None:
    code = f"import sys; import {module}; print('torch' in sys.modules, 'pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
