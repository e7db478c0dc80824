#!/usr/bin/env python3
"""Link the collections of collections/requirements.yml from the ansible package's bundle
into collections/ansible_collections (run by scripts/setup with the venv's Python).

    link_collections.py REQUIREMENTS COLLECTIONS_DIR

Each entry (name NAMESPACE.COLLECTION, version X.Y.Z) must be in the bundle of the
installed ansible package (site-packages/ansible_collections) at exactly that version
(its MANIFEST.json); it is linked as COLLECTIONS_DIR/ansible_collections/NAMESPACE/NAME.
A link already right is left alone; a wrong link is replaced; a real directory there (a
collection of your own) is never touched: that is an error naming the fix. Exits 1 with
every problem listed."""

import json
import os
import re
import sys
import sysconfig

import yaml

NAME = re.compile(r"[a-z0-9_]+\.[a-z0-9_]+\Z")
VERSION = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\Z")


def bundle_dir():
    return os.path.join(sysconfig.get_paths()["purelib"], "ansible_collections")


def wanted(requirements):
    """[(namespace, name, version)] from a Galaxy requirements file, or raises ValueError."""
    with open(requirements, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    entries = data.get("collections") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError("%s: no list 'collections'" % requirements)
    out = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        version = entry.get("version") if isinstance(entry, dict) else None
        if not (isinstance(name, str) and NAME.match(name)):
            raise ValueError("%s: %r is not NAMESPACE.COLLECTION" % (requirements, name))
        if not (isinstance(version, str) and VERSION.match(version)):
            raise ValueError("%s: %s: version %r is not an exact X.Y.Z" % (requirements, name, version))
        namespace, collection = name.split(".")
        out.append((namespace, collection, version))
    return out


def link(requirements, collections_dir, bundle=None):
    """Link every wanted collection; returns the problems (empty when all is linked)."""
    bundle = bundle or bundle_dir()
    problems = []
    for namespace, name, version in wanted(requirements):
        source = os.path.join(bundle, namespace, name)
        try:
            with open(os.path.join(source, "MANIFEST.json"), encoding="utf-8") as handle:
                found = json.load(handle)["collection_info"]["version"]
        except (OSError, ValueError, KeyError) as exc:
            problems.append("%s.%s: not in the ansible package's bundle (%s). Fix: install the "
                            "ansible package of requirements.txt (scripts/setup), or remove it "
                            "from %s." % (namespace, name, exc, requirements))
            continue
        if found != version:
            problems.append("%s.%s: the bundle has %s, %s wants %s. Fix: set version %s there "
                            "(the pinned ansible package's) or pin the ansible package that "
                            "bundles %s." % (namespace, name, found, requirements, version,
                                             found, version))
            continue
        target = os.path.join(collections_dir, "ansible_collections", namespace, name)
        if os.path.islink(target):
            if os.path.realpath(target) == os.path.realpath(source):
                continue
            os.unlink(target)
        elif os.path.exists(target):
            problems.append("%s: is a directory, not this script's link. Fix: move it away "
                            "(a collection of your own belongs under another name)." % target)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.symlink(source, target)
    return problems


def main(argv):
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    try:
        problems = link(argv[1], argv[2])
    except (OSError, ValueError, yaml.YAMLError) as exc:
        problems = [str(exc)]
    for problem in problems:
        print("scripts/setup: %s" % problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
