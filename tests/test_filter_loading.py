"""Ansible finds a collection's filter by loading every filter file of the collection, in
every task's forked worker, and compiles collection code from source each time (no .pyc).
The project's filter files therefore import their module_utils only when a filter is used:
loading all of them must pull in no module_utils, and each filter still works through
FilterModule (the role-level tests call them there)."""

import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILTERS = sorted(os.path.basename(p)[:-3] for p in glob.glob(
    os.path.join(ROOT, "collections", "ansible_collections", "fastchat_lab", "lab", "plugins", "filter", "*.py")))

PROBE = r"""
import importlib, sys
sys.path.insert(0, sys.argv[1])
names = {}
for name in sys.argv[2:]:
    module = importlib.import_module("ansible_collections.fastchat_lab.lab.plugins.filter." + name)
    names.update(module.FilterModule().filters())
loaded = sorted(m for m in sys.modules if ".plugins.module_utils" in m and m.startswith("ansible_collections.fastchat_lab"))
print(len(names))
print(" ".join(loaded))
"""


def test_loading_every_filter_file_imports_no_module_utils():
    out = subprocess.run([sys.executable, "-c", PROBE, os.path.join(ROOT, "collections")] + FILTERS,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(FILTERS) >= 17 and int(out[0]) >= 50
    assert out[1:] == [""] or out[1:] == [], "filter files import module_utils when loaded: %s" % out[1:]


def test_lazy_filters_reach_their_module_utils():
    from ansible_collections.fastchat_lab.lab.plugins.filter import cuda, deploy, gguf, handout, hub, settings

    assert cuda.FilterModule().filters()["cuda_repo_arch"]("aarch64") == "sbsa"
    assert deploy.FilterModule().filters()["deploy_web_ui_dir"]("/etc/fastchat-lab") == "/etc/fastchat-lab/web-ui"
    assert gguf.FilterModule().filters()["gguf_image"]([], {}) == [None, None]
    assert handout.FilterModule().filters()["handout_paths"](["a"]) == ["a/"]
    assert hub.FilterModule().filters()["weights_probe_commands"]("/h", {}, []) == {}
    assert settings.FilterModule().filters()["calendar_checked"]("daily") == "daily"
