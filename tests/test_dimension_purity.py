"""Scoring stays pure: the dimension modules and the gate import neither torch nor pytest."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE_MODULES = [
    "comptrust_plugin.dimensions.machine_ethics",
    "comptrust_plugin.dimensions.toxicity",
    "comptrust_plugin.dimensions.stereotype_bias",
    "comptrust_plugin.dimensions.privacy",
    "comptrust_plugin.dimensions.adversarial_robustness",
    "comptrust_plugin.dimensions.ood_robustness",
    "comptrust_plugin.dimensions.adversarial_demonstrations",
    "comptrust_plugin.dimensions.fairness",
    "comptrust_plugin.dimensions.benign_utility",
    "comptrust_plugin.dimensions.protocol",
    "comptrust_plugin.dimensions.agreement",
    "comptrust_plugin.gate",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_module_imports_neither_torch_nor_pytest(module: str) -> None:
    code = f"import sys; import {module}; print('torch' in sys.modules, 'pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
