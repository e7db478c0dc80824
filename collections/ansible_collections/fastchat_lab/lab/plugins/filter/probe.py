# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""failed_commands: the names of a host_probe's commands that did not answer rc 0."""

DOCUMENTATION = r"""
name: failed_commands
short_description: The names of the commands of a host_probe result that did not exit 0.
description:
  - Input is what C(fastchat_lab.lab.host_probe) registered (or a skipped or empty result,
    which has no commands). Returns the names of its commands whose rc is not 0, in the
    order they were asked. The fastchat_image role names each image inspect after its stack,
    so this is the list of stacks whose image a host lacks.
positional: _input
options:
  _input:
    description: A registered host_probe result.
    type: dict
    required: true
"""


def failed_commands(probe):
    commands = (probe or {}).get("commands") or {}
    return [name for name, answer in commands.items() if (answer or {}).get("rc") != 0]


class FilterModule:
    def filters(self):
        return {"failed_commands": failed_commands}
