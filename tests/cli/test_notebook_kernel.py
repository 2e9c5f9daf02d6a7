"""What a notebook's cells show, in a real Jupyter kernel: a mistake is one line naming the parameters and fails the
cell (Run All stops); the interrupt button ends training with one line, the run saved and `state` holding it, so
the cells below work and the run resumes; an epoch is one line, and no bar is left at its first frame."""

import queue
import re
import time

import pytest
import torch

from tests.helpers import tiny_settings

pytestmark = pytest.mark.slow
# a notebook's first cells: the extension that shows the package's errors as one line, then the imports
IMPORTS = "%load_ext dcgan\nfrom dcgan import TrainConfig, train\nfrom dcgan.pictures.notebook import ShowEpochGrids"
jupyter_client = pytest.importorskip("jupyter_client")


class Kernel:
    """A python3 kernel, and what each cell sent back (outputs as the notebook keeps them, and the reply)."""

    def __init__(self):
        self.manager, self.client = jupyter_client.manager.start_new_kernel(kernel_name="python3")

    def run(self, code: str, interrupt_when: str = "", timeout: float = 300) -> tuple[str, list[dict]]:
        """Run `code`; with `interrupt_when`, press ■ once an output holds that text. (status, outputs)."""
        msg_id, outputs, interrupted, start = self.client.execute(code), [], False, time.monotonic()
        while time.monotonic() - start < timeout:
            if interrupt_when and not interrupted and interrupt_when in str(outputs):
                self.manager.interrupt_kernel()
                interrupted = True
            try:
                message = self.client.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                continue
            if message["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind == "update_display_data":  # as the notebook keeps it: the output with that id replaced
                display_id = content["transient"]["display_id"]
                for output in outputs:
                    if output.get("display_id") == display_id:
                        output["data"] = content["data"]
            elif kind in ("stream", "display_data", "error", "execute_result"):
                outputs.append({"kind": kind, "display_id": content.get("transient", {}).get("display_id"),
                                **content})
        reply = self.client.get_shell_msg(timeout=30)
        return reply["content"]["status"], outputs

    def close(self):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture
def kernel():
    started = Kernel()
    yield started
    started.close()


def text_of(outputs: list[dict]) -> str:
    """The outputs' text as a reader sees it: streams as written, every display on its own line."""
    return "".join(output["text"] if "text" in output else output.get("data", {}).get("text/plain", "") + "\n"
                   for output in outputs)


def training_cell(tmp_path, **overrides) -> str:
    settings = tiny_settings(tmp_path, progress=True, **overrides)
    return (f"state = train(TrainConfig(**{settings!r}), callbacks=[ShowEpochGrids()])")


def test_a_mistake_is_one_line_in_the_parameters_words_and_fails_the_cell(kernel, tmp_path):
    assert kernel.run(IMPORTS)[0] == "ok"
    assert kernel.run(training_cell(tmp_path, epochs=1))[0] == "ok"
    status, outputs = kernel.run(training_cell(tmp_path, epochs=1))  # the same cell again, unchanged
    assert status == "error"  # Run All stops here
    [error] = [output for output in outputs if output["kind"] == "error"]
    [line] = error["traceback"]  # one line, no traceback through the package
    assert "set resume = True to continue it, overwrite = True to start it again, or choose another run name" in line
    assert "--" not in line and error["ename"] == "UserError"


def test_the_interrupt_button_saves_the_run_and_leaves_state_for_the_next_cells(kernel, tmp_path):
    kernel.run(IMPORTS)
    status, outputs = kernel.run(training_cell(tmp_path, epochs=200, limit=512), interrupt_when="epoch 1/200: loss_D")
    assert status == "ok" and not [output for output in outputs if output["kind"] == "error"]
    text = text_of(outputs)
    [stop] = [line for line in text.splitlines() if line.startswith("stopped by")]
    assert stop.startswith("stopped by the interrupt (■) at ") and stop.endswith("continue with resume = True")
    assert "Traceback" not in text and "KeyboardInterrupt" not in text

    status, outputs = kernel.run("print(state.step, state.epoch, state.paths.last_checkpoint)")
    step, epoch, last = text_of(outputs).split()
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert status == "ok" and int(step) == saved["step"] > 0 and int(epoch) >= 1
    assert kernel.run("from dcgan.training.history import history_figure\n"
                      "figure = history_figure(state.history, 'run', loss=state.cfg.loss)")[0] == "ok"
    status, outputs = kernel.run(training_cell(tmp_path, epochs=int(epoch) + 1, limit=512, resume=True))
    assert status == "ok" and f"epoch {int(epoch) + 1}/{int(epoch) + 1}: loss_D" in text_of(outputs)


def test_each_epoch_is_one_line_and_no_bar_stays_at_its_first_frame(kernel, tmp_path):
    kernel.run(IMPORTS)
    status, outputs = kernel.run(training_cell(tmp_path, epochs=3))
    assert status == "ok"
    lines = text_of(outputs).splitlines()
    for epoch in (1, 2, 3):
        assert sum(line.startswith(f"epoch {epoch}/3") for line in lines) == 1, lines
    widgets = [output for output in outputs if "application/vnd.jupyter.widget-view+json" in output.get("data", {})]
    assert not widgets  # every bar ended as text (its widget state is not saved with a notebook)
    assert not any(re.search(r"(?<!\d)0%\|", line) for line in lines)
