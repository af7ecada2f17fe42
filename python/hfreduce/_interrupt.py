"""Ctrl-C during a blocking call.

Python runs signal handlers only between bytecodes, and a blocking collective is one long call
into the library: a KeyboardInterrupt would wait for the collective to end, or for HFR_TIMEOUT.
At the main thread's first blocking call, HFReduce sets a wakeup fd (`signal.set_wakeup_fd`),
to which Python's C-level signal handler writes every signal number; a watcher thread reads it,
and when a SIGINT comes while the main thread is in a blocking call it aborts that call's
communicator: the call returns at once and Python raises the KeyboardInterrupt. The wakeup fd
set before (asyncio's) gets every byte passed on; one set after replaces this one, and then
blocking calls are not cut short. A blocking call costs two assignments and a thread-id
comparison.
"""

import os
import signal
import threading

_main = threading.main_thread().ident
_installed = None   # None: not tried yet; False: not possible; True: the watcher runs
_forward = -1       # the wakeup fd that was set before ours
_active = None      # the Communicator whose blocking call the main thread is in


def _watch(read_fd):
    while True:
        try:
            data = os.read(read_fd, 64)
        except InterruptedError:
            continue
        if not data:
            return
        if _forward >= 0:
            try:
                os.write(_forward, data)
            except OSError:
                pass
        comm = _active
        if comm is not None and signal.SIGINT in data:
            # Fails the call the main thread is in; it returns and Python raises the
            # KeyboardInterrupt.
            comm._abort_library()


def _install():
    global _installed, _forward
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        _forward = signal.set_wakeup_fd(w)
    except ValueError:  # not the main thread after all, or signals unavailable
        os.close(r)
        os.close(w)
        _installed = False
        return
    threading.Thread(target=_watch, args=(r,), name="hfreduce-ctrl-c", daemon=True).start()
    _installed = True


class blocking_call:
    """Context of one blocking call of `comm` (nothing outside the main thread, where Python
    delivers no KeyboardInterrupt)."""

    __slots__ = ("comm", "armed")

    def __init__(self, comm):
        self.comm = comm
        self.armed = False

    def __enter__(self):
        global _active
        if threading.get_ident() == _main:
            if _installed is None:
                _install()
            if _installed:
                _active = self.comm
                self.armed = True
        return self

    def __exit__(self, *exc):
        global _active
        if self.armed:
            _active = None
        return False
