# -*- coding: utf-8 -*-
# Copyright: fastchat-lab contributors
# Apache License 2.0
"""The lab_backup role's settings, checked before any host changes.

Pure Python (standard library only); the ``fastchat_lab.lab.backup_problems`` filter wraps
it, ``tests/test_backup_settings.py`` tests it.

- ``lab_backup_dir``: where the head writes its backups: an absolute, normalised path
  that the lab may own (not a system or shared top-level directory), outside the logs
  directory (a backup of the logs inside the logs would be backed up again, and again)
  and apart from the weights directory (copying weights replaces model directories).
  Point it at another disk, or at a mount of another host (NFS, CIFS), so that a lost
  disk loses one copy only.
- ``lab_backup_keep``: how many backups to keep (0: all), a whole number.
- ``lab_backup_schedule``: systemd's OnCalendar: it goes into a unit file, so it is a
  short line of the characters calendar events use, never a newline.
"""

from __future__ import annotations

import re

from ansible_collections.fastchat_lab.lab.plugins.module_utils.lab_plan import grammar

SCHEDULE_RE = re.compile(r"^[A-Za-z0-9*:.,/~ -]{1,64}\Z")
KEEP_MAX = 100000


def backup_problems(backup_dir, keep, schedule, logs_dir, weights_dir):
    """Problems as "all: <variable>: <what>. Fix: <what to do>." lines (empty: fine)."""
    problems = []
    bad = grammar.host_dir_problem(backup_dir)
    if bad:
        problems.append("all: lab_backup_dir: %s. Fix: use a directory of its own, e.g. "
                        "/var/backups/fastchat-lab or a mount of another disk or host." % bad)
    else:
        for var, other in (("fastchat_logs_dir", logs_dir), ("fastchat_weights_dir", weights_dir)):
            if isinstance(other, str) and grammar.nested(backup_dir, other):
                problems.append("all: lab_backup_dir: %r and %s %r overlap. Fix: give the "
                                "backups a directory of their own, e.g. /var/backups/fastchat-lab "
                                "or a mount of another disk or host." % (backup_dir, var, other))
    if isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep <= KEEP_MAX:
        problems.append("all: lab_backup_keep: must be a whole number from 0 (keep every "
                        "backup) to %d, got %r. Fix: write e.g. 30 without quotes." % (KEEP_MAX, keep))
    if not isinstance(schedule, str) or not SCHEDULE_RE.match(schedule):
        problems.append("all: lab_backup_schedule: %r is not a systemd calendar event of at "
                        "most 64 characters (letters, digits, * : . , / ~ - and spaces). Fix: "
                        "write e.g. daily or \"*-*-* 03:00:00\"." % (schedule,))
    return problems
