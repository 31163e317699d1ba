"""Training progress that is readable wherever a run happens: a bar in a terminal or a live notebook, plain lines
(step, loss, img/s, ETA) in logs and in notebooks run headless by papermill, where a bar is carriage-return noise
or a blank widget in the saved file, and one closing line per run.
"""
from __future__ import annotations

import sys
import time


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel (papermill's, or a live JupyterLab's: the two look alike)."""
    shell = sys.modules.get("IPython") and getattr(sys.modules["IPython"], "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class Progress:
    """`update(step, loss, images)` after each step; `close(...)` prints the run's closing line.

    `bar`: a tqdm bar (a widget in a kernel). `every`: seconds between text lines (0: none); the first line
    comes after the first step, so a slow start is visible at once."""

    def __init__(self, name: str, steps: int, start: int, *, bar: bool, every: float, out=print):
        self.name, self.steps, self.start, self.every, self.out = name, steps, start, every, out
        self.t0 = self.last = time.time()
        self.printed = False
        self.bar = None
        if bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=steps, initial=start, mininterval=2.0, desc="train")

    @classmethod
    def auto(cls, name: str, steps: int, start: int) -> "Progress":
        """A bar on a terminal; lines in logs and pipes; both in a kernel (the widget for a live view, the lines
        for the saved notebook, since a kernel cannot tell whether anyone is watching)."""
        tty = sys.stderr.isatty()
        kernel = in_kernel()
        return cls(name, steps, start, bar=tty or kernel, every=60.0 if kernel else 0.0 if tty else 30.0)

    def update(self, step: int, loss: float, images: int) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        now = time.time()
        if self.every and (not self.printed or now - self.last >= self.every or step == self.steps):
            self.last, self.printed = now, True
            done, elapsed = step - self.start, now - self.t0
            eta = (self.steps - step) * elapsed / max(done, 1)
            self.out(f"[{self.name}] step {step}/{self.steps}  loss {loss:.4f}  {images / max(elapsed, 1e-9):.1f} img/s"
                     f"  elapsed {_clock(elapsed)}  ETA {_clock(eta)}", flush=True)

    def close(self, step: int, loss: float | None, images: int, run_dir, failed: bool = False) -> None:
        if self.bar is not None:
            self.bar.close()
        wall = time.time() - self.t0
        final = f"final loss {loss:.4f}" if loss is not None else "no step trained"
        self.out(f"[{self.name}] {'stopped by an error' if failed else 'done'}: steps {self.start}->{step} in {wall / 60:.1f} min, "
                 f"{images / max(wall, 1e-9):.1f} img/s, {final}; run directory {run_dir}", flush=True)
