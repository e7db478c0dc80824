"""module_utils/backup_settings.py: where the head's backups go, how many are kept and when
they are made are checked before any host changes."""

import pytest

from ansible_collections.fastchat_lab.lab.plugins.module_utils.backup_settings import backup_problems

GOOD = {"backup_dir": "/var/backups/fastchat-lab", "keep": 30, "schedule": "daily",
        "logs_dir": "/var/lib/fastchat-lab/logs", "weights_dir": "/srv/fastchat-lab/models"}


def problems(**override):
    return backup_problems(**dict(GOOD, **override))


@pytest.mark.parametrize("override", [{}, {"keep": 0}, {"schedule": "*-*-* 03:00:00"},
                                      {"schedule": "Mon..Fri 02:30"},
                                      {"backup_dir": "/mnt/nas/fastchat-lab"}])
def test_good_settings(override):
    assert problems(**override) == []


@pytest.mark.parametrize("override, expected", [
    ({"backup_dir": "/etc"}, "all: lab_backup_dir: '/etc' is a system directory"),
    ({"backup_dir": "backups"}, "all: lab_backup_dir: 'backups' is not an absolute path"),
    ({"backup_dir": "/var"}, "is a shared top-level directory"),
    ({"backup_dir": "/var/backups/x\n"}, "all: lab_backup_dir: "),
    ({"backup_dir": "/var/lib/fastchat-lab/logs/backups"},
     "all: lab_backup_dir: '/var/lib/fastchat-lab/logs/backups' and fastchat_logs_dir"),
    ({"backup_dir": "/var/lib/fastchat-lab"}, "and fastchat_logs_dir '/var/lib/fastchat-lab/logs' overlap"),
    ({"backup_dir": "/srv/fastchat-lab/models/b"}, "and fastchat_weights_dir"),
    ({"keep": -1}, "all: lab_backup_keep: must be a whole number from 0"),
    ({"keep": "30"}, "all: lab_backup_keep: must be a whole number"),
    ({"keep": True}, "all: lab_backup_keep: must be a whole number"),
    ({"schedule": "daily\nExecStart=/bin/sh -c reboot"}, "all: lab_backup_schedule: "),
    ({"schedule": "daily; rm -rf /"}, "all: lab_backup_schedule: "),
    ({"schedule": ""}, "all: lab_backup_schedule: "),
    ({"schedule": 3}, "all: lab_backup_schedule: "),
])
def test_each_problem_names_the_variable_and_the_fix(override, expected):
    found = problems(**override)
    assert any(p.startswith(expected) or expected in p for p in found), found
    assert all(p.startswith("all: ") and " Fix: " in p for p in found)
