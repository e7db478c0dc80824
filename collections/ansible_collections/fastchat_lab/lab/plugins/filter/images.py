# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""images_missing, images_wanted, images_lacked: the lab's images on each host
(module_utils/images.py)."""

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: images_missing
short_description: The stacks whose image a host lacks, from docker_image_info's result.
description:
  - C(info | fastchat_lab.lab.images_missing(wanted)), C(info) what
    C(community.docker.docker_image_info) registered for the references of C(wanted)
    (a dict of stack to image reference). Returns the stacks whose reference is not among the
    C(RepoTags) of the images found, in C(wanted)'s order. A skipped lookup lacks none; a
    failed one (check mode on a host without Docker yet) lacks every one.
  - >-
    Also provides C(plan | images_wanted(host, images)) ({stack: reference} of the stacks
    the host's plan needs, among C(images)) and C(infos | images_lacked(plan, images))
    (the references some host lacks, from C({host: docker_image_info result})), and
    C(ctx | image_context_files(items, contents, extra_ca)) (a stack's build context as
    lab_files entries).
  - >-
    And the build host's source clones: C(clones | image_clone_probe) (host_probe commands
    asking each clone of C({name: path}) its commit, its changes to tracked files and its
    origin, offline), C(probe | image_clone_current(name, url, commit)) (true where the clone
    is at C(commit), unchanged, from C(url): the git task would change nothing) and
    C(probe | image_clone_head(name)) (the clone's commit, or "").
positional: _input
options:
  _input:
    description: The registered docker_image_info result.
    type: dict
    required: true
  wanted:
    description: The image reference of each stack the host needs.
    type: dict
    required: true
"""


def _wrap(name):
    def call(*args, **kwargs):
        # Imported when a filter is used, not when Ansible loads this file (collection README).
        from ansible_collections.fastchat_lab.lab.plugins.module_utils import images

        try:
            return getattr(images, name)(*args, **kwargs)
        except (images.ImagesError, AttributeError, KeyError, TypeError) as exc:
            raise AnsibleFilterError("%s: %s" % (name, exc)) from exc
    return call


class FilterModule:
    def filters(self):
        return {"images_missing": _wrap("missing"), "images_wanted": _wrap("wanted"),
                "images_lacked": _wrap("lacked"), "image_context_files": _wrap("context_files"),
                "image_clone_probe": _wrap("clone_probe_commands"),
                "image_clone_current": _wrap("clone_current"), "image_clone_head": _wrap("clone_head")}
