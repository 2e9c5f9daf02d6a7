"""Progress bars: tqdm.auto's, which are widgets in a notebook and text in a terminal. A widget's state is not
saved with the notebook, so a saved or exported notebook would show every bar at its first frame (0 %); in a
notebook a bar therefore ends as the text of its last frame (finished, or where it stopped), live and in the file."""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm
from tqdm.notebook import tqdm as widget_bar


class SavedBar(widget_bar):
    """A notebook's bar (a widget while it runs) whose output becomes its last frame as text when it closes."""

    def __init__(self, *args: Any, **kwargs: Any):
        from IPython.display import display

        super().__init__(*args, display=False, **kwargs)
        self.handle = None
        if not self.disable:
            self.handle = display(self.container, display_id=True)
            self.displayed = True

    def close(self) -> None:
        super().close()
        if self.handle is not None:  # (a bar that does not stay, leave=False, ends as nothing)
            last_frame = self.format_meter(**self.format_dict) if self.leave else ""
            self.handle.update({"text/plain": last_frame}, raw=True)
            self.handle = None
            self.container.close()


def progress_bar(iterable: Any = None, **options: Any) -> tqdm:
    """tqdm.auto's bar over `iterable`; in a notebook, a SavedBar (close it, or use it as a context manager)."""
    return (SavedBar if issubclass(tqdm, widget_bar) else tqdm)(iterable, **options)


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (what tqdm.auto asks too): its caller is a notebook's cell."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and "IPKernelApp" in shell.config
