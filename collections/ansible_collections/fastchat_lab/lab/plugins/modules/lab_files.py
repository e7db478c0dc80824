#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lab_files
short_description: Ensure a set of directories and small files in one task
description:
  - Brings each listed path, in order, to its wanted state (a directory, a file with the
    given content, or nothing at all); list a directory before the files in it. Contents
    are written atomically (a temporary file in the same directory, then a rename).
  - One task instead of one per path, which is most of what a re-run that changes nothing
    costs (tests/bench/rerun). For content computed in the task (a filter's output, a
    fixed text); a file rendered from a role's template is written with
    C(ansible.builtin.template) (the collection README says which idiom is for what).
  - Supports check mode (nothing is written; a file under a directory that would be made
    counts as created) and diff mode (one diff per changed path).
  - Not for secrets, as C(--diff) would show their content. Give those their own task
    with C(no_log).
version_added: 0.1.0
author:
  - fastchat-lab contributors
options:
  files:
    description: The paths, in the order they are brought to their state.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      state:
        description: V(file) (with O(files[].content)), V(directory), or V(absent) (a file or a whole directory).
        type: str
        choices: [file, directory, absent]
        default: file
      content:
        description: The whole content of a V(file).
        type: str
      mode:
        description: Octal mode as a string, e.g. V("0644"); required unless V(absent).
        type: str
      owner:
        description: Owner by name; left as it is when not given (a new path gets the task's user).
        type: str
      group:
        description: Group by name; left as it is when not given.
        type: str
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Ensure the helper's directory and the helper exist.
  fastchat_lab.lab.lab_files:
    files:
      - {path: /opt/fastchat-lab, state: directory, mode: "0755"}
      - path: /opt/fastchat-lab/helper.py
        content: "{{ lookup('ansible.builtin.file', 'helper.py') }}"
        mode: "0755"
  notify: Restart the helper.
"""

RETURN = r"""
changed_paths:
  description: The paths that were (in check mode, would be) changed, in order.
  returned: always
  type: list
  elements: str
  sample: [/opt/fastchat-lab/helper.py]
"""

import os
import re
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text

MODE = re.compile(r"^0?[0-7]{3,4}\Z")


def check_entries(files):
    """The problems of the entries, as messages naming the path and the fix."""
    problems = []
    seen = set()
    for number, entry in enumerate(files):
        path = entry.get("path") or ""
        where = "files[%d] (%s)" % (number, path or "no path")
        if not os.path.isabs(path) or "\0" in path or os.path.normpath(path) != path.rstrip("/") or path == "/":
            problems.append("%s: path must be a normalised absolute path below /." % where)
        if path in seen:
            problems.append("%s: the path is listed twice." % where)
        seen.add(path)
        state = entry.get("state") or "file"
        if state != "absent" and not MODE.match(entry.get("mode") or ""):
            problems.append("%s: mode must be an octal string such as \"0644\"." % where)
        if state == "file" and entry.get("content") is None:
            problems.append("%s: a file needs its content." % where)
        if state != "file" and entry.get("content") is not None:
            problems.append("%s: content is only for state file." % where)
    return problems


def _read(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _attributes(module, entry, changed, diff):
    """Mode, owner and group; returns whether one of them changed (check mode: would)."""
    path = entry["path"]
    if entry["owner"] is not None:
        changed = module.set_owner_if_different(path, entry["owner"], changed, diff, expand=False)
    if entry["group"] is not None:
        changed = module.set_group_if_different(path, entry["group"], changed, diff, expand=False)
    return module.set_mode_if_different(path, entry["mode"], changed, diff, expand=False)


def ensure(module, entry, made_dirs):
    """Bring one path to its state; returns (changed, diff or None)."""
    path, state = entry["path"], entry["state"] or "file"
    exists = os.path.lexists(path)
    header = {"before_header": path, "after_header": path}
    if state == "absent":
        if not exists:
            return False, None
        kind = "directory" if os.path.isdir(path) and not os.path.islink(path) else "file"
        if not module.check_mode:
            if kind == "directory":
                shutil.rmtree(path)
            else:
                os.unlink(path)
        return True, dict(header, before="%s %s\n" % (kind, path), after="absent\n")
    if state == "directory":
        if exists and not os.path.isdir(path):
            module.fail_json(msg="%s: exists and is not a directory. Fix: remove it, or choose "
                                 "another path." % path)
        if not exists:
            made_dirs.add(path)
            if not module.check_mode:
                os.makedirs(path, int(entry["mode"], 8))
                _attributes(module, entry, True, None)
            return True, dict(header, before="absent\n", after="directory %s\n" % path)
        attr_diff = {}
        changed = _attributes(module, entry, False, attr_diff)
        return changed, (dict(header, before="%s\n" % attr_diff.get("before"),
                              after="%s\n" % attr_diff.get("after")) if changed else None)
    # state file
    if exists and (os.path.isdir(path) or os.path.islink(path)):
        module.fail_json(msg="%s: exists and is not a plain file. Fix: remove it, or choose "
                             "another path." % path)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent) and not (module.check_mode and parent in made_dirs):
        module.fail_json(msg="%s: its directory %s does not exist. Fix: list the directory "
                             "before the file." % (path, parent))
    wanted = to_bytes(entry["content"], errors="surrogate_or_strict")
    before = _read(path) if exists else None
    changed = before != wanted
    if changed and not module.check_mode:
        fd, tmp = tempfile.mkstemp(prefix=".lab_files.", dir=parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(wanted)
            # Mode first, then the rename: the path never has other permissions.
            os.chmod(tmp, int(entry["mode"], 8))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    diff = dict(header, before=to_text(before, errors="surrogate_or_replace") if before is not None else "",
                after=entry["content"]) if changed else None
    if os.path.exists(path):
        attr_diff = {}
        if _attributes(module, entry, False, attr_diff) and not changed:
            changed = True
            diff = dict(header, before="%s\n" % attr_diff.get("before"),
                        after="%s\n" % attr_diff.get("after"))
    return changed, diff


def main():
    module = AnsibleModule(
        argument_spec={"files": {"type": "list", "elements": "dict", "required": True, "options": {
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["file", "directory", "absent"], "default": "file"},
            "content": {"type": "str"},
            "mode": {"type": "str"},
            "owner": {"type": "str"},
            "group": {"type": "str"},
        }}},
        supports_check_mode=True,
    )
    problems = check_entries(module.params["files"])
    if problems:
        module.fail_json(msg="lab_files: " + " ".join(problems))
    changed_paths, diffs, made_dirs = [], [], set()
    for entry in module.params["files"]:
        changed, diff = ensure(module, entry, made_dirs)
        if changed:
            changed_paths.append(entry["path"])
        if diff:
            diffs.append(diff)
    module.exit_json(changed=bool(changed_paths), changed_paths=changed_paths, diff=diffs)


if __name__ == "__main__":
    main()
