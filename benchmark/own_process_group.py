"""Imported first by the forkserver (``dask_backend.PRELOAD``): the forkserver, and every Dask worker and
run forked from it, leave the terminal's process group, so Ctrl-C reaches only the sweep's own process,
which stops the sweep itself (closing the cluster, killing runs in flight) and says how to resume. Without
it each of those processes raised its own KeyboardInterrupt and printed a traceback, some in the middle
of importing torch."""

import contextlib
import os

with contextlib.suppress(OSError):
    os.setpgid(0, 0)
