#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: signing_key
short_description: Put an apt repository's signing key in place only if its fingerprint is trusted
description:
  - Fetches a repository's OpenPGP signing key from O(url) (or reads it from O(src) on the
    host, or from the member O(member) of the Debian package O(src), e.g. cuda-keyring's
    keyring), computes the fingerprints of its primary keys
    (module_utils/openpgp.py) and fails, writing nothing, unless every one is in
    O(fingerprints). A mirror or proxy that serves another key is refused with a message
    naming what it served, what is trusted and the setting to change.
  - With O(dest), writes the key there (as served) when it differs; without, only checks.
  - Check mode and C(--diff) are supported.
version_added: 0.3.0
author:
  - fastchat-lab contributors
options:
  url:
    description: Where the key is served (http, https or file). One of O(url) and O(src).
    type: str
  src:
    description: A key file on the host, or with O(member) a Debian package holding it.
    type: path
  member:
    description: The key file's path inside the package O(src) (e.g. ./usr/share/keyrings/x.gpg).
    type: str
  fingerprints:
    description: The fingerprints trusted (40 or 64 hex digits; spaces and case ignored).
    type: list
    elements: str
    required: true
  setting:
    description: The variable that holds O(fingerprints), named in the refusal.
    type: str
    default: fingerprints
  dest:
    description: Where to write the key once trusted. Without it the key is only checked.
    type: path
  mode:
    description: The mode of O(dest).
    type: str
    default: "0644"
"""

EXAMPLES = r"""
- name: Put Docker's signing key in place, refused unless it is Docker's.
  fastchat_lab.lab.signing_key:
    url: https://download.docker.com/linux/debian/gpg
    fingerprints: [9DC858229FC7DD38854AE2D88D81803C0EBFCD88]
    setting: docker_repo_key_fingerprints
    dest: /etc/apt/keyrings/docker.asc
"""

RETURN = r"""
fingerprints:
  description: The fingerprints of the primary keys found (all of them trusted).
  returned: success
  type: list
  elements: str
"""

import io
import os
import subprocess
import tarfile
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import fetch_url

from ansible_collections.fastchat_lab.lab.plugins.module_utils import openpgp

MAX_BYTES = 1 << 20


def _fetch(module, url):
    if not url.startswith(("https://", "http://", "file://")):
        module.fail_json(msg="%s is not an http(s):// or file:// URL of a signing key" % url)
    if url.startswith("file://"):
        path = url[len("file://"):]
        try:
            with open(path, "rb") as fh:
                return fh.read(MAX_BYTES + 1)
        except OSError as exc:
            module.fail_json(msg="cannot read the signing key at %s: %s" % (url, exc))
    resp, info = fetch_url(module, url, timeout=60)
    if info.get("status") != 200 or resp is None:
        module.fail_json(msg="cannot fetch the signing key at %s: %s %s"
                         % (url, info.get("status"), info.get("msg")))
    return resp.read(MAX_BYTES + 1)


def _from_deb(module, deb, member):
    """MEMBER's bytes from the package DEB, read by dpkg-deb (no maintainer script runs)."""
    proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], capture_output=True, check=False)
    if proc.returncode != 0:
        module.fail_json(msg="%s is not a Debian package dpkg-deb can read: %s"
                         % (deb, proc.stderr.decode(errors="replace").strip()[-300:]))
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        wanted = {member, "./" + member.lstrip("./"), member.lstrip("./")}
        for info in tar.getmembers():
            if info.name in wanted and info.isfile():
                return tar.extractfile(info).read(MAX_BYTES + 1)
    module.fail_json(msg="%s holds no file %s" % (deb, member))
    return b""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str"),
            src=dict(type="path"),
            member=dict(type="str"),
            fingerprints=dict(type="list", elements="str", required=True),
            setting=dict(type="str", default="fingerprints"),
            dest=dict(type="path"),
            mode=dict(type="str", default="0644"),
        ),
        required_one_of=[("url", "src")],
        mutually_exclusive=[("url", "src")],
        required_by={"member": "src"},
        supports_check_mode=True,
    )
    p = module.params
    if p["url"]:
        source, data = p["url"], _fetch(module, p["url"])
    elif p["member"]:
        source, data = "%s (%s)" % (p["src"], p["member"]), _from_deb(module, p["src"], p["member"])
    else:
        source = p["src"]
        try:
            with open(p["src"], "rb") as fh:
                data = fh.read(MAX_BYTES + 1)
        except OSError as exc:
            module.fail_json(msg="cannot read the signing key %s: %s" % (p["src"], exc))
    if len(data) > MAX_BYTES:
        module.fail_json(msg="the signing key at %s is larger than 1 MiB" % source)
    try:
        found = openpgp.check(data, p["fingerprints"], source, p["setting"])
    except openpgp.OpenPGPError as exc:
        module.fail_json(msg="%s: %s" % (source, exc) if source not in str(exc) else str(exc))
    result = {"changed": False, "fingerprints": found}
    dest = p["dest"]
    if dest:
        try:
            with open(dest, "rb") as fh:
                before = fh.read(MAX_BYTES + 1)
        except FileNotFoundError:
            before = None
        mode = int(p["mode"], 8)
        if before != data:
            result["changed"] = True
            if module._diff:  # pylint: disable=protected-access
                result["diff"] = {"before_header": dest, "after_header": source,
                                  "before": "" if before is None else "(another key file)\n",
                                  "after": "key %s\n" % ", ".join(found)}
            if not module.check_mode:
                os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dest), prefix=".signing-key-")
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.chmod(tmp, mode)
                os.replace(tmp, dest)
        elif not module.check_mode and (os.stat(dest).st_mode & 0o7777) != mode:
            os.chmod(dest, mode)
            result["changed"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
