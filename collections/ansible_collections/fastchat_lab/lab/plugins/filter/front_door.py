# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""Filter of the lab_proxy role: what nginx passes to FastChat (module_utils/front_door.py)."""

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: front_door
short_description: The lab's front door as the nginx template prints it (module_utils/front_door.py).
description:
  - For the plan's services behind the TLS proxy, returns C({login, servers}), C(servers)
    a list of C({kind, bind, port, backend_port, locations}), each location a
    C({pattern, login}) regular expression of the paths passed to FastChat (every other
    path gets 404 from nginx), C(login) the login throttle's C({rate, burst}) or none.
  - Also provides C(proxy_tls_names) (the head's names, subject alternative names and the
    lab CA's name constraints) and C(proxy_tls_needs) (whether the lab CA's tasks run, and
    why), module_utils/proxy_tls.py.
positional: _input
options:
  _input:
    description: The plan's services that have a backend_port (the API server, the web UI).
    type: list
    elements: dict
    required: true
"""


def _front_door(services):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.front_door import front_door

    try:
        return front_door(services)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("front_door: %s" % exc)


def _proxy_tls_names(address, host, extra=()):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.proxy_tls import names

    return names(address, host, extra)


def _proxy_tls_needs(state, sans):
    from ansible_collections.fastchat_lab.lab.plugins.module_utils.proxy_tls import needs

    try:
        return needs(state, sans)
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError("proxy_tls_needs: %s" % exc)


class FilterModule:
    def filters(self):
        return {"front_door": _front_door, "proxy_tls_names": _proxy_tls_names,
                "proxy_tls_needs": _proxy_tls_needs}
