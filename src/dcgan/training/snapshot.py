"""What one training step changes, copied, and put back in place: the weights and buffers of G, D and the EMA,
both optimizers' states (moments and step counts), the EMA share and every random stream.

In place, because a CUDA graph holds the addresses of these tensors: a step replayed after a restore must find
the same tensors, with the old values. Used to undo a step that failed under torch.compile, and for
the graphs' self-check (both in execution.py): one step run twice from the same state and static input, replayed and
eager, and the two results compared (`compare_steps`).

Exact: the random streams (a replay advances each generator by the graph's whole offset, which is the sum of
the eager increments), Adam's step counts and integer buffers. Within a tolerance: the step's metrics and the
update of every network and optimizer state, as the direction (1 - cosine) and the norm ratio of
(after - before). The only legitimate difference between a replay and the eager step is the order of
floating-point sums (atomics in convolution and scatter backward): about 1e-6 relative in fp32, which Adam's
normalised update keeps near 1e-6 except where a gradient is itself near that noise; in bf16, an fp32 sum that
lands on the other side of a rounding step moves a value by 2^-8 (0.4 %). What a broken graph does is far
larger: a frozen Python value (an EMA share, an lr, a step count) changes an update's norm by several per cent
within 100 steps, a stale or replaced tensor changes its direction entirely, and a frozen step count or a
generator drawn twice is caught exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .state import TrainState, rank_streams, set_rank_streams


@dataclass
class StepSnapshot:
    """Copies of the tensors a step changes, by name, beside the live tensors they were copied from."""

    live: dict[str, torch.Tensor]  # name -> the state's own tensor (network.*, opt_g.*, opt_d.*)
    copies: dict[str, torch.Tensor]
    streams: dict[str, torch.Tensor]  # rank_streams: the noise generator and torch's global generators
    with_state: dict[str, list[torch.Tensor]]  # optimizer -> the parameters that already had Adam state


def step_tensors(state: TrainState) -> dict[str, torch.Tensor]:
    """Every tensor a step writes, by a stable name: `generator.net.0.weight`, `opt_d.3.exp_avg`."""
    tensors = {}
    nets = state.nets
    for name, network in (("generator", nets.generator), ("discriminator", nets.discriminator),
                          ("ema", nets.ema_generator)):
        if network is not None:
            tensors.update({f"{name}.{key}": value for key, value in network.state_dict(keep_vars=True).items()})
    for name, optimizer in optimizers(state).items():
        for index, parameter in enumerate(p for group in optimizer.param_groups for p in group["params"]):
            for key, value in optimizer.state.get(parameter, {}).items():
                if isinstance(value, torch.Tensor):
                    tensors[f"{name}.{index}.{key}"] = value
    return {name: tensor.detach() for name, tensor in tensors.items()}


def optimizers(state: TrainState) -> dict[str, torch.optim.Optimizer]:
    return {"opt_g": state.nets.opt_g, "opt_d": state.nets.opt_d}


def take_snapshot(state: TrainState) -> StepSnapshot:
    live = step_tensors(state)
    return StepSnapshot(live=live, copies={name: tensor.clone() for name, tensor in live.items()},
                        streams=rank_streams(state),
                        with_state={name: list(optimizer.state) for name, optimizer in optimizers(state).items()})


@torch.no_grad()
def restore_snapshot(state: TrainState, snapshot: StepSnapshot) -> None:
    """Put every copied value back into the tensor it came from; forget Adam state the step created (a first
    step creates it); reset the random streams; D trainable again (a step that failed in G's part leaves it
    frozen)."""
    for name, optimizer in optimizers(state).items():
        kept = {id(parameter) for parameter in snapshot.with_state[name]}
        for parameter in [p for p in optimizer.state if id(p) not in kept]:
            del optimizer.state[parameter]
    for name, tensor in snapshot.live.items():
        tensor.copy_(snapshot.copies[name])
    set_rank_streams(state, snapshot.streams)
    state.nets.discriminator.requires_grad_(True)


@dataclass(frozen=True)
class Tolerance:
    metrics: float  # |replayed - eager| <= metrics * max(1, |eager|), for each of the step's statistics
    direction: float  # 1 - cos(replayed update, eager update), for each network and optimizer state
    norm: float  # | |replayed update| / |eager update| - 1 |


TOLERANCES = {"fp32": Tolerance(metrics=1e-4, direction=1e-3, norm=1e-3),
              "bf16": Tolerance(metrics=1e-2, direction=1e-2, norm=1e-2)}
GROUPS = {"generator": "G", "discriminator": "D", "ema": "the EMA", "opt_g": "G's Adam",
          "opt_d": "D's Adam"}  # snapshot name prefix -> words


@dataclass(frozen=True)
class Verdict:
    matches: bool
    difference: float  # the measured value of the difference that is largest against its tolerance
    largest: str  # that difference, in words: "D's update direction, 1 - cos 3.1e-07"


def compare_steps(state: TrainState, before: StepSnapshot, replayed: StepSnapshot,
                  replayed_metrics: dict[str, torch.Tensor], eager_metrics: dict[str, torch.Tensor],
                  tolerance: Tolerance) -> Verdict:
    """The replayed step (`replayed`, `replayed_metrics`) against the eager one (the state as it is now), both
    taken from `before`."""
    eager_streams = rank_streams(state)
    for name, saved in replayed.streams.items():
        if not torch.equal(saved, eager_streams[name]):
            return Verdict(False, float("inf"), f"the {name} random stream's state")
    found = [(difference / tolerance.metrics, difference, "the step's metrics")
             for difference in [metrics_difference(replayed_metrics, eager_metrics)]]
    for prefix, words in GROUPS.items():
        names = [name for name in before.live if name.split(".")[0] == prefix]
        for name in names:  # before.live: the state's tensors, which now hold the eager result
            if not is_update(name, before.live[name]) and not torch.equal(replayed.copies[name], before.live[name]):
                return Verdict(False, float("inf"), f"{words}: {name} (must be equal)")
        updates = [name for name in names if is_update(name, before.live[name])]
        if updates:
            direction, norm = update_difference(before, replayed, updates)
            found += [(direction / tolerance.direction, direction, f"{words}'s update direction, 1 - cos"),
                      (norm / tolerance.norm, norm, f"{words}'s update norm, ratio - 1")]
    ratio, difference, words = max(((nan_as_inf(ratio), nan_as_inf(value), words) for ratio, value, words in found),
                                   key=lambda finding: finding[0])  # (the first of equals: the metrics)
    return Verdict(ratio <= 1, difference, f"{words} {difference:.1e}")


def nan_as_inf(value: float) -> float:
    return float("inf") if value != value else value


def is_update(name: str, tensor: torch.Tensor) -> bool:
    """Compared as an update within a tolerance (floating, not a step count); else compared exactly."""
    return tensor.is_floating_point() and not name.endswith(".step")


def metrics_difference(replayed: dict[str, torch.Tensor], eager: dict[str, torch.Tensor]) -> float:
    """The largest relative difference of the two steps' statistics (infinite when they name different ones)."""
    if replayed.keys() != eager.keys():
        return float("inf")
    replayed_values, eager_values = torch.stack(list(replayed.values())), torch.stack(list(eager.values()))
    return float(((replayed_values - eager_values).abs() / eager_values.abs().clamp(min=1)).max())


def update_difference(before: StepSnapshot, replayed: StepSnapshot, names: list[str]) -> tuple[float, float]:
    """(1 - cos, |norm ratio - 1|) of the replayed against the eager update of these tensors, in float64; both
    0 when they are equal, infinite when only one of them moved."""
    with torch.no_grad():
        replay = torch.cat([(replayed.copies[name] - before.copies[name]).double().flatten() for name in names])
        eager = torch.cat([(before.live[name] - before.copies[name]).double().flatten() for name in names])
    replay_norm, eager_norm = float(replay.norm()), float(eager.norm())
    if torch.equal(replay, eager):  # (also when neither moved; a cosine of equal vectors may round below 1)
        return 0.0, 0.0
    if min(replay_norm, eager_norm) == 0:
        return float("inf"), float("inf")
    cosine = float(replay @ eager) / (replay_norm * eager_norm)
    return max(0.0, 1.0 - cosine), abs(replay_norm / eager_norm - 1.0)
