"""Progress on long work: the model's load time, then items scored, items/s and an ETA.

Written only by the process that owns the terminal (the single process, or the xdist
controller, which learns of items from their reports). On a terminal the line is live
while a chunk is being scored (nothing else prints then) and erased afterwards, so pytest's
own progress characters are never overwritten; when the output is not a terminal (CI logs),
one line is written at most every PLAIN_EVERY seconds.
"""

from __future__ import annotations

import contextlib
import time

from _pytest.pathlib import bestrelpath

PLAIN_EVERY = 30.0  # seconds between progress lines in a log
LIVE_EVERY = 0.5  # seconds between updates of the live line
FIRST_AFTER = 2.0  # short runs print no progress at all


@contextlib.contextmanager
def _terminal(config, fspath=None, restore: bool = True):
    """The terminal reporter, with pytest's output capturing suspended (we write from inside a
    test). `fspath`: the file whose result characters pytest was writing; its prefix is written
    again after our lines, so the characters continue where they belong."""
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is None or config.option.verbose < -1:  # -qq: quiet means quiet
        yield None
        return
    capman = config.pluginmanager.get_plugin("capturemanager")
    with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
        fspath = fspath or tr.currentfspath
        yield tr
        if restore and tr.currentfspath is None and fspath is not None and tr.verbosity <= 0 and tr.showfspath:
            tr.write(f"{bestrelpath(tr.startpath, fspath)} ")
            tr.currentfspath = fspath


def _fresh_line(tr) -> None:
    """Start our text on a line of its own, also after result characters pytest wrote without a path."""
    tr.ensure_newline()
    writer = getattr(tr, "_tw", None)  # no public accessor for the current line's width
    if writer is not None and writer.width_of_current_line:
        tr.write("\n")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    def __init__(self, config, total: int = 0, clock=time.monotonic):
        self.config = config
        self.total = total
        self.done = 0
        self.clock = clock
        self.started = clock()
        self._last = self.started
        self._live = False
        self._fspath = None  # the file pytest was writing results for when the load began
        self.detail = None  # a callable adding to the line, e.g. the Ray pool's chunks in flight

    @staticmethod
    def _is_tty(tr) -> bool:
        return bool(tr.isatty())  # a CallableBool in pytest 8+, a plain bool before

    def line(self, extra: int = 0) -> str:
        done = self.done + extra
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = done / elapsed
        text = f"rmbench: {done:,} of {self.total:,} items scored, {rate:,.1f} items/s"
        if rate > 0 and self.total > done:
            text += f", ETA {_duration((self.total - done) / rate)}"
        if self.detail is not None:
            text += self.detail()
        return text

    def item_done(self, count: int = 1) -> None:
        """Items whose outcome is known (reports on the controller, or a finished chunk)."""
        self.done += count
        self._maybe_write(0, live=False)

    def in_chunk(self, scored_in_chunk: int) -> None:
        """Called by the engine after each batch while a chunk is being scored."""
        self._maybe_write(scored_in_chunk, live=True)

    def chunk_finished(self) -> None:
        if not self._live:
            return
        with _terminal(self.config, self._fspath) as tr:
            if tr is not None:
                tr.rewrite("", erase=True)
                tr.currentfspath = None  # pytest starts a fresh line for the next result
        self._live = False

    def _maybe_write(self, extra: int, live: bool) -> None:
        now = self.clock()
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None or now - self.started < FIRST_AFTER:
            return
        live = live and self._is_tty(tr)
        if now - self._last < (LIVE_EVERY if live else PLAIN_EVERY):
            return
        self._last = now
        with _terminal(self.config, restore=not live) as tr:  # a live line keeps its line until the chunk ends
            if tr is None:
                return
            if live:
                if not self._live:
                    self._fspath = tr.currentfspath
                    _fresh_line(tr)
                    self._live = True
                tr.rewrite(self.line(extra), erase=True)
            else:
                _fresh_line(tr)
                tr.write_line(self.line(extra))
                tr.currentfspath = None


    # -- the model's load, said before and after: a real reward model takes tens of seconds
    def loading(self, name: str) -> None:
        with _terminal(self.config, restore=False) as tr:  # "loaded" follows and restores
            if tr is not None:
                self._fspath = tr.currentfspath
                _fresh_line(tr)
                tr.write_line(f"rmbench: loading {name} ...")
                tr.currentfspath = None

    def loaded(self, name: str, seconds: float | None, model=None) -> None:
        """After the load, or (model None, seconds None) after it failed."""
        with _terminal(self.config, self._fspath) as tr:
            if tr is None:
                return
            what = ", ".join(str(v) for v in (getattr(model, "kind", None), getattr(model, "dtype", None),
                                              getattr(model, "device", None)) if v)
            if seconds is None:
                tr.write_line(f"rmbench: could not load {name} (the rmbench summary says why)")
            else:
                tr.write_line(f"rmbench: loaded {name} in {seconds:.1f}s" + (f" ({what})" if what else ""))
            tr.currentfspath = None
