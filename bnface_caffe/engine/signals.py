"""SIGINT / SIGHUP turned into solver actions, as tools/caffe.cpp's SignalHandler does.

The handler only records that a signal came; the loop asks for the pending action after
each update and before each test batch. Defaults are Caffe's: SIGINT stops (after a
snapshot), SIGHUP snapshots and carries on. Each can be "stop", "snapshot" or "none".
"""
import signal
import threading

NONE, SNAPSHOT, STOP = "none", "snapshot", "stop"
EFFECTS = (STOP, SNAPSHOT, NONE)


class SignalActions:
    def __init__(self, sigint_effect=STOP, sighup_effect=SNAPSHOT):
        self.effects = {signal.SIGINT: sigint_effect}
        if hasattr(signal, "SIGHUP"):
            self.effects[signal.SIGHUP] = sighup_effect
        self.pending = {s: False for s in self.effects}
        self.previous = {}

    def __enter__(self):
        # Handlers can only be installed from the main thread (e.g. not under some runners).
        if threading.current_thread() is threading.main_thread():
            for sig in self.effects:
                self.previous[sig] = signal.signal(sig, self._received)
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def _received(self, signum, frame):
        self.pending[signum] = True

    def requested_action(self):
        """The action for the first pending signal (SIGINT before SIGHUP), consuming it."""
        for sig in self.effects:
            if self.pending[sig]:
                self.pending[sig] = False
                return self.effects[sig]
        return NONE


class NoSignals:
    """For ranks other than 0 and for library use: never requests anything."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def requested_action(self):
        return NONE
