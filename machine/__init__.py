"""This machine, as the project's local servers and workers see it: where per-user state and
caches go, whether a process is still alive, how a child process is stopped, and how a
long-running process settles its heap once started.

Below the infrastructure packages (``storage``, ``streams``) and the ``mdp`` command, which
all start things on the local machine; it imports nothing of ours. ``core`` stays pure, so
this lives apart from it.
"""

from machine.folders import APP_FOLDER, cache_dir, state_dir
from machine.heap import settle_heap
from machine.ports import free_port, reserved_port
from machine.processes import process_exists, stop_process

__all__ = [
    "APP_FOLDER",
    "cache_dir",
    "free_port",
    "process_exists",
    "reserved_port",
    "settle_heap",
    "state_dir",
    "stop_process",
]
