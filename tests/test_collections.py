"""collections/requirements.yml and scripts/lib/link_collections.py: ansible.cfg reads
collections from collections/ only (collections_scan_sys_path = False), so every collection
the project names must be listed there, at the version the pinned ansible package bundles,
and scripts/setup links exactly those."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIREMENTS = os.path.join(ROOT, "collections", "requirements.yml")
SCRIPT = os.path.join(ROOT, "scripts", "lib", "link_collections.py")
# Where the project names modules, filters, lookups, tests and callbacks by their full name.
SOURCES = ["roles", "playbooks", "molecule", "site.yml", "ansible.cfg", "inventory",
           os.path.join("collections", "ansible_collections", "fastchat_lab"), "tests"]
FQCN = re.compile(r"\b(ansible\.posix|community\.[a-z_]+|[a-z_]+\.[a-z_]+)\.[a-z_0-9]+\b")
OWN = {"ansible.builtin", "fastchat_lab.lab", "ansible.legacy"}


def linker():
    spec = importlib.util.spec_from_file_location("link_collections", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def listed():
    with open(REQUIREMENTS, encoding="utf-8") as handle:
        return {entry["name"]: entry["version"] for entry in yaml.safe_load(handle)["collections"]}


def used():
    """Collection names used in the project's YAML and ansible.cfg (module, filter, lookup,
    callback names: namespace.collection.plugin)."""
    names, listed_names = set(), listed()
    for source in SOURCES:
        path = os.path.join(ROOT, source)
        files = [path] if os.path.isfile(path) else [
            os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs
            if f.endswith((".yml", ".yaml", ".j2"))]
        for file in files:
            with open(file, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
            for match in FQCN.finditer(text):
                namespace = match.group(1)
                if namespace.split(".")[0] in ("ansible", "community") or namespace in listed_names:
                    names.add(namespace)
    return names - OWN


def test_every_collection_the_project_uses_is_listed():
    assert used() <= set(listed()), sorted(used() - set(listed()))
    # ... and nothing listed is unused.
    assert set(listed()) <= used(), sorted(set(listed()) - used())


def test_listed_versions_are_the_bundled_ones():
    bundle = linker().bundle_dir()
    for name, version in listed().items():
        namespace, collection = name.split(".")
        with open(os.path.join(bundle, namespace, collection, "MANIFEST.json"), encoding="utf-8") as handle:
            assert json.load(handle)["collection_info"]["version"] == version, name


def test_ansible_cfg_reads_collections_from_the_project_only():
    with open(os.path.join(ROOT, "ansible.cfg"), encoding="utf-8") as handle:
        text = handle.read()
    assert re.search(r"^collections_scan_sys_path = False$", text, re.M)
    assert re.search(r"^collections_path = collections$", text, re.M)


def bundle(tmp_path, collections):
    root = tmp_path / "bundle"
    for name, version in collections.items():
        namespace, collection = name.split(".")
        path = root / namespace / collection
        path.mkdir(parents=True)
        (path / "MANIFEST.json").write_text(json.dumps({"collection_info": {"version": version}}))
    return str(root)


def requirements(tmp_path, entries):
    path = tmp_path / "requirements.yml"
    path.write_text(yaml.safe_dump({"collections": entries}))
    return str(path)


def test_links_each_listed_collection_and_is_safe_to_run_again(tmp_path):
    source = bundle(tmp_path, {"community.docker": "4.8.5", "community.mysql": "3.0.0"})
    reqs = requirements(tmp_path, [{"name": "community.docker", "version": "4.8.5"}])
    out = tmp_path / "collections"
    assert linker().link(reqs, str(out), source) == []
    target = out / "ansible_collections" / "community" / "docker"
    assert os.path.islink(target) and os.path.realpath(target) == os.path.realpath(os.path.join(source, "community", "docker"))
    # Only what is listed.
    assert sorted(os.listdir(out / "ansible_collections" / "community")) == ["docker"]
    assert linker().link(reqs, str(out), source) == []
    # A link to somewhere else (an older venv) is replaced.
    os.unlink(target)
    os.symlink(str(tmp_path), target)
    assert linker().link(reqs, str(out), source) == []
    assert os.path.realpath(target) == os.path.realpath(os.path.join(source, "community", "docker"))


@pytest.mark.parametrize("entries, bundled, says", [
    ([{"name": "community.docker", "version": "4.9.0"}], {"community.docker": "4.8.5"},
     "the bundle has 4.8.5"),
    ([{"name": "community.mysql", "version": "3.0.0"}], {}, "not in the ansible package's bundle"),
])
def test_a_version_or_collection_the_bundle_lacks_is_refused(tmp_path, entries, bundled, says):
    problems = linker().link(requirements(tmp_path, entries), str(tmp_path / "c"), bundle(tmp_path, bundled))
    assert len(problems) == 1 and says in problems[0] and "Fix:" in problems[0]
    assert not os.path.exists(tmp_path / "c" / "ansible_collections" / entries[0]["name"].replace(".", "/"))


@pytest.mark.parametrize("entry", [
    {"name": "community.docker", "version": ">=4.8"},
    {"name": "community.docker", "version": 4.8},
    {"name": "../../etc", "version": "1.0.0"},
    {"name": "community/docker", "version": "1.0.0"},
    {"name": "docker", "version": "1.0.0"},
])
def test_a_bad_entry_is_refused_before_anything_is_linked(tmp_path, entry):
    reqs = requirements(tmp_path, [{"name": "community.docker", "version": "4.8.5"}, entry])
    with pytest.raises(ValueError):
        linker().link(reqs, str(tmp_path / "c"), bundle(tmp_path, {"community.docker": "4.8.5"}))
    assert not os.path.exists(tmp_path / "c")


def test_a_real_directory_is_never_replaced(tmp_path):
    source = bundle(tmp_path, {"community.docker": "4.8.5"})
    own = tmp_path / "c" / "ansible_collections" / "community" / "docker"
    own.mkdir(parents=True)
    (own / "mine").write_text("x")
    problems = linker().link(requirements(tmp_path, [{"name": "community.docker", "version": "4.8.5"}]),
                             str(tmp_path / "c"), source)
    assert len(problems) == 1 and "not this script's link" in problems[0]
    assert (own / "mine").read_text() == "x"


def test_the_script_exits_1_listing_the_problem(tmp_path):
    reqs = requirements(tmp_path, [{"name": "community.nosuch", "version": "1.0.0"}])
    result = subprocess.run([sys.executable, SCRIPT, reqs, str(tmp_path / "c")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "scripts/setup: community.nosuch: not in the ansible package's bundle" in result.stderr


def test_the_planner_names_the_collections_this_ansible_cannot_load(tmp_path):
    """The planning action (every run, before any host changes) refuses a control node where
    scripts/setup has not linked the collections (checked end to end by hand: plan.yml with
    collections/ansible_collections/community moved away fails naming the three and the fix)."""
    from ansible_collections.fastchat_lab.lab.plugins.action.lab_plan import REQUIREMENTS, missing_collections

    assert os.path.realpath(REQUIREMENTS) == os.path.realpath(os.path.join(ROOT, "collections", "requirements.yml"))
    reqs = requirements(tmp_path, [{"name": "fastchat_lab.lab", "version": "0.1.0"},
                                   {"name": "community.nosuchthing", "version": "1.0.0"}])
    assert missing_collections(reqs) == ["community.nosuchthing"]
    # This collection installed on its own, without the project's file: nothing to check.
    assert missing_collections(str(tmp_path / "absent.yml")) == []


def test_every_plugins_documentation_is_yaml():
    """ansible-doc (and ansible-lint) read DOCUMENTATION, EXAMPLES and RETURN as YAML: a
    plain scalar with ': ' in it breaks the page of every filter in that file."""
    import ast
    import glob

    plugins = os.path.join(ROOT, "collections", "ansible_collections", "fastchat_lab", "lab", "plugins")
    broken, read = [], 0
    for path in sorted(glob.glob(os.path.join(plugins, "*", "*.py"))):
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read())
        for node in tree.body:
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in (
                    "DOCUMENTATION", "EXAMPLES", "RETURN"):
                read += 1
                try:
                    yaml.safe_load(node.value.value)
                except yaml.YAMLError as exc:
                    broken.append("%s %s: %s" % (os.path.relpath(path, plugins), node.targets[0].id,
                                                 str(exc).splitlines()[0]))
    assert read >= 30, read
    assert broken == []
