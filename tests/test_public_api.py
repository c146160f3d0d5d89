"""`trainprove_core` re-exports what a plugin author needs, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import trainprove_core


def test_every_public_name_resolves_to_the_object_its_module_defines():
    for name in trainprove_core.__all__:
        value = getattr(trainprove_core, name)
        module = sys.modules[getattr(value, "__module__", "trainprove_core.records")]
        assert getattr(module, name, value) is value, name
    assert set(trainprove_core.__all__) <= set(dir(trainprove_core))


def test_importing_the_package_does_not_import_numpy_until_an_evidence_helper_is_asked_for():
    code = (
        "import sys\n"
        "from trainprove_core import hookimpl, GeneratorSpec, Option, Task, ImageSet, Evidence, InputError\n"
        "print('numpy' in sys.modules)\n"
        "from trainprove_core import abstain\n"
        "print('numpy' in sys.modules, abstain.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "True", "trainprove_core.evidence"], out.stderr
