"""The one training configuration: every setting, its default and what it means.

The CLI builds its `train` flags from these fields (the `help` text below is the flag's help), and the
notebooks build the same object from their parameters cell. A run records it as `config.json`.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .checks import check_number, check_path, check_run_name, shown_number
from .errors import SettingError, UserError
from .presets import PRESETS
from .registry import DATASETS, DISCRIMINATORS, GENERATORS, LOSSES, METRICS, REGISTERED_NAME, is_object_name

AUGMENTATIONS = ("translation", "cutout", "color")  # DiffAugment's policies
SWITCH = ("auto", "on", "off")  # settings that default to what the device favours
NAMED = {"generator": GENERATORS, "discriminator": DISCRIMINATORS}  # settings naming a registered spec ("" = --arch)
PARTS = {**NAMED, "loss": LOSSES}  # the settings a run may be given an object for instead of a name


def setting(default: Any, help: str, *, choices: tuple[str, ...] = (), architecture: bool = False,
            follows_data: bool = False, place: str = "", limits: tuple[float, float | None] | None = None,
            exported: int = 0, session: bool = False, penalty: bool = False) -> Any:
    """A config field: its default, the help text the CLI shows for it, and its roles (fields_with asks them):
        choices       the words it takes
        architecture  it shapes the networks (and their checkpoint): a resumed run must keep it
        follows_data  0 means "whatever the data (or, on resume, the run) has"
        place         "folder" or "file": where the machine kept things, never taken from a checkpoint
        limits        (lowest, highest) of a number setting, highest None for no bound: beyond, a run cannot work
        exported      an export records it, since that export format (models/export.py's EXPORT_VERSION)
        session       it describes this invocation, not the run: never inherited from a checkpoint on --resume
        penalty       it weighs a loss's penalty: only the loss whose spec names it (penalty_setting) reads it
    """
    roles = {"choices": choices, "architecture": architecture, "follows_data": follows_data, "place": place,
             "limits": limits, "exported": exported, "session": session, "penalty": penalty}
    return field(default=default, metadata={"help": help, **{role: value for role, value in roles.items() if value}})


@dataclass
class TrainConfig:
    # data
    data: str = setting("fashion-mnist", f"dataset: {DATASETS.listed()}, or a folder of images searched "
                        "recursively (jpg, jpeg, png, webp, bmp)")
    image_size: int = setting(64, "side of the square training images in pixels, one that G and D support (see "
                              "--generator and --discriminator)", architecture=True, limits=(1, 1024), exported=1)
    channels: int = setting(0, "image channels: 1 (grayscale) or 3 (RGB); 0 follows the data", architecture=True,
                            follows_data=True, limits=(0, 3), exported=1)
    flip: bool = setting(False, "randomly flip real images horizontally (augmentation)")
    limit: int = setting(0, "use only the first N images of the dataset; 0 uses all", limits=(0, 10**12))
    download: bool = setting(True, "download a named dataset that torchvision can fetch (Fashion-MNIST, MNIST) "
                             "when it is not found locally")
    data_dir: str = setting("", "folder for datasets and the decoded cache; empty means the repo's data/",
                            place="folder")
    # model
    arch: str = setting("dcgan", "network family: G and D of one design (dcgan: convolutional; resnet: residual "
                        "up-blocks in G, dropout 0.4 in D, the 96x96 anime recipe; mlp: the plain fully connected "
                        "GAN), unless --generator or --discriminator choose another", architecture=True, exported=1)
    generator: str = setting("", "G's architecture; empty follows --arch", architecture=True, exported=2)
    discriminator: str = setting("", "D's architecture; empty follows --arch", architecture=True)
    nz: int = setting(100, "length of the noise vector z", architecture=True, limits=(1, 4096), exported=1)
    ngf: int = setting(64, "generator width: channels of its last hidden layer", architecture=True,
                       limits=(1, 1024), exported=1)
    ndf: int = setting(64, "discriminator width: channels of its first layer", architecture=True, limits=(1, 1024))
    hidden: int = setting(128, "mlp only: width of the hidden layer of G and D (the write-ups use 128 or 200)",
                          architecture=True, limits=(1, 16384), exported=1)
    conditional: bool = setting(False, "class-conditional G and D (CGAN: labels embedded); labelled datasets only",
                                architecture=True, exported=1)
    classes: int = setting(0, "with --conditional: number of classes; 0 follows the data", architecture=True,
                           follows_data=True, limits=(0, 10_000), exported=1)
    spectral_norm: bool = setting(False, "spectral normalisation of D's weight layers", architecture=True)
    # loss and stabilisers
    loss: str = setting("bce", "GAN loss (bce is the DCGAN loss, with --real-label smoothing; wgan-gp: Wasserstein "
                        "with gradient penalty; r1: bce with the R1 penalty; docs/options.md describes each)",
                        architecture=True)
    gp_weight: float = setting(10.0, "weight of the gradient penalty (wgan-gp)", limits=(0, 1e6), penalty=True)
    r1_gamma: float = setting(10.0, "gamma of the R1 penalty, gamma / 2 * mean ||grad D(x)||^2 on real images (r1)",
                              limits=(0, 1e6), penalty=True)
    n_critic: int = setting(0, "D steps per G step; 0 = the loss's (5 with wgan-gp, else 1)", limits=(0, 100))
    ema: float = setting(0.0, "decay of an exponential moving average of G's weights, used for samples and "
                         "evaluation (e.g. 0.999); 0 = off", limits=(0, 1))
    ema_rampup: float = setting(0.02, "the moving average's warm-up: its half-life (in images) is at most this "
                                "share of the images G has trained on; 0 = no warm-up", limits=(0, 1))
    diffaugment: str = setting("", "differentiable augmentation of real and generated images before D, comma-"
                               "separated: translation, cutout, color (for small datasets); empty = none")
    # optimisation
    epochs: int = setting(25, "train until this many epochs are done (with --resume: the new total)",
                          limits=(1, 1_000_000))
    batch_size: int = setting(128, "images per step; the last incomplete batch of an epoch is dropped",
                              limits=(1, 65_536))
    lr: float = setting(2e-4, "Adam learning rate, for both networks unless --lr-g / --lr-d are set",
                        limits=(0, None))
    lr_g: float = setting(0.0, "G's learning rate (TTUR: two time-scale update rule); 0 = --lr", limits=(0, None))
    lr_d: float = setting(0.0, "D's learning rate (TTUR, e.g. 4e-4 with --lr-g 1e-4); 0 = --lr", limits=(0, None))
    beta1: float = setting(-1.0, "Adam beta1; -1 = the loss's (0.5, or 0.0 with wgan-gp)")
    beta2: float = setting(-1.0, "Adam beta2; -1 = the loss's (0.999, or 0.9 with wgan-gp)")
    real_label: float = setting(1.0, "D's target for real images (0.9 = one-sided label smoothing)", limits=(0, 1))
    fake_label: float = setting(0.0, "D's target for generated images (e.g. 0.1)", limits=(0, 1))
    seed: int = setting(0, "seed for weights, noise, data order and flips: same seed, same run",
                        limits=(0, 2**32 - 1))
    device: str = setting("auto", "auto (CUDA when present, else CPU), cpu or cuda", choices=("auto", "cpu", "cuda"),
                          session=True)
    # speed
    precision: str = setting("auto", "auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32), "
                             "bf16 or fp32", choices=("auto", "bf16", "fp32"))
    channels_last: str = setting("auto", "channels-last memory layout for G, D and images: auto (on), on or off",
                                 choices=SWITCH, session=True)
    data_on_device: str = setting("auto", "keep the decoded dataset on the training device: auto (when it fits: "
                                  "half the free GPU memory, a quarter of the RAM), on or off (stream it)",
                                  choices=SWITCH, session=True)
    compile: bool = setting(False, "torch.compile G and D (slow first steps; on CUDA it turns channels-last auto "
                            "off; a compiler failure falls back to eager in one line; see docs/benchmarks.md)",
                            session=True)
    cuda_graphs: str = setting("auto", "capture the whole training step in CUDA graphs after a few eager steps and "
                               "replay it: auto (on for CUDA, one process), on or off", choices=SWITCH, session=True)
    sync_bn: bool = setting(False, "under torchrun on GPUs: BatchNorm statistics over the global batch "
                            "(SyncBatchNorm) instead of each process's share", session=True)
    # outputs
    run: str = setting("", "run name: samples/<run>/ and checkpoints/<run>/; empty derives one from data and size")
    samples_dir: str = setting("", "root folder for sample grids; empty means the repo's samples/", place="folder")
    checkpoints_dir: str = setting("", "root folder for checkpoints; empty means the repo's checkpoints/",
                                   place="folder")
    keep_last: int = setting(0, "keep only the newest K epoch_NNN.pt files (last.pt always stays); 0 keeps all",
                             limits=(0, 1_000_000))
    log_every: int = setting(50, "add a row to history.csv every N steps; non-finite losses are caught and "
                             "(under torchrun) stop signals agreed on this often", limits=(1, 10**12))
    checkpoint_every_steps: int = setting(0, "also write last.pt every N steps, mid-epoch (for long epochs); 0 "
                                          "only at the end of each epoch", limits=(0, 10**12))
    eval_every: int = setting(0, "every K epochs measure --eval-metrics (by default FID, KID, precision and recall), "
                              "add them to history.csv, losses.png and TensorBoard, keep best.pt; 0 never",
                              limits=(0, 1_000_000))
    eval_n: int = setting(2000, "with --eval-every: images on each side", limits=(0, 1_000_000))
    eval_metrics: str = setting("fid,kid,precision,recall", "with --eval-every (and in evaluate): the metrics "
                                f"measured, comma-separated, from {METRICS.listed()}; fid keeps best.pt")
    eval_features: str = setting("auto", "with --eval-every: feature space; auto is Inception when its weights are "
                                 "on disk, else the dataset's classifier", choices=("auto", "classifier", "inception"))
    inception_weights: str = setting("", "Inception FID weights file; empty looks in $TORCH_HOME/hub/checkpoints/",
                                     place="file", session=True)
    resume: bool = setting(False, "continue the run from checkpoints/<run>/last.pt (or --checkpoint)", session=True)
    checkpoint: str = setting("", "with --resume: the checkpoint file to continue from instead of last.pt",
                              place="file", session=True)
    overwrite: bool = setting(False, "start the run afresh, deleting the samples and checkpoints it wrote (by their "
                              "exact names: files of your own stay)", session=True)
    tensorboard: bool = setting(False, "also write TensorBoard logs: curves every --log-every steps, FID, the epoch "
                                "grids and the config (needs pip install -e \".[tensorboard]\")")
    logdir: str = setting("", "with --tensorboard: root folder of the logs, each run in <logdir>/<run>/; empty "
                          "writes checkpoints/<run>/tb/", place="folder")
    progress: bool = setting(True, "show progress bars", session=True)

    def validate(self) -> TrainConfig:
        """Raise a SettingError naming the first setting that cannot work; return self. The flags, the notebooks'
        parameters and every checkpoint's saved config all pass through here."""
        for spec in dataclasses.fields(self):  # types first: a checkpoint's values come unchecked
            setattr(self, spec.name, typed_setting(spec.name, getattr(self, spec.name), spec.default))
        for name in fields_with("limits"):
            check_number(name, getattr(self, name), *limits_of(name))
        if not self.lr > 0:
            raise SettingError("lr", f"--lr must be positive, got {self.lr}")
        if self.eval_every:
            check_number("eval_n", self.eval_n, 2, limits_of("eval_n")[1])
        if not self.data.strip():
            raise SettingError("data", f"--data is empty: name a dataset ({DATASETS.listed()}) or a folder of images")
        check_path("--data", self.data)
        for name in self.metrics():
            METRICS.check(name)
        if "fid" not in self.metrics():
            raise SettingError("eval_metrics", f"--eval-metrics '{self.eval_metrics}' lacks fid: best.pt and "
                               "history.csv follow FID, so keep fid in the list")
        if self.run:
            check_run_name(self.run)
        if self.logdir and not self.tensorboard:
            raise SettingError("logdir", "--logdir applies to --tensorboard runs only: add --tensorboard or drop "
                               "--logdir")
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise SettingError(name, f"unknown {flag(name)} '{getattr(self, name)}': use "
                                   f"{', '.join(choices)}")
        for name in ("arch", *PARTS):
            check_part_name(name, getattr(self, name))
        if self.channels not in (0, 1, 3):
            raise SettingError("channels", f"unsupported channel count {self.channels}: use 1 (grayscale), 3 "
                               "(RGB) or 0 to follow the data")
        for name in ("beta1", "beta2"):
            if not (0.0 <= getattr(self, name) <= 1.0 or getattr(self, name) == -1):
                raise SettingError(name, f"--{flag(name)} must lie in [0, 1] (or be -1 for the loss's default), "
                                   f"got {getattr(self, name)}")
        self.validate_stabilisers()
        return self

    def architectures(self) -> tuple[str, str]:
        """The names of G's and D's specs (registry.GENERATORS, DISCRIMINATORS): --generator and --discriminator,
        each following --arch when empty."""
        return self.generator or self.arch, self.discriminator or self.arch

    def part_names(self) -> dict[str, str]:
        """The loss's, G's and D's names (G and D following --arch when empty), or their objects' classes."""
        generator, discriminator = self.architectures()
        return {"generator": generator, "discriminator": discriminator, "loss": self.loss}

    def check_parts(self) -> None:
        """When the parts are used: the loss, G and D that do not name an object's class (models/parts.py: Parts.named
        puts the objects given there) name registered specs (a name registered at run time counts), and image_size
        is one that the named G's and D's specs support."""
        for name, value in self.part_names().items():
            if is_object_name(value):  # (checked against the object given, when one is)
                continue
            if name in NAMED and not getattr(self, name) and value not in families():
                raise SettingError("arch", f"unknown --arch '{value:.60}': use {', '.join(families())}")
            spec = PARTS[name].spec(value)
            if name in NAMED and self.image_size not in spec.sizes:
                takes = [family for family in families()
                         if all(self.image_size in each.spec(family).sizes for each in NAMED.values())]
                hint = f" (--arch {' or '.join(takes)} takes {self.image_size})" if takes else ""
                raise SettingError("image_size", f"unsupported image size {self.image_size} for the {value} "
                                   f"{name}: use {spec.sizes_text()}{hint}")

    def check_loss_settings(self, loss: Any) -> None:
        """The settings that only some losses read (`loss`: a models.losses.Loss): the targets, and the weight of each
        penalty."""
        if not loss.targets and (self.real_label, self.fake_label) != (1.0, 0.0):
            raise SettingError("real_label", f"--real-label / --fake-label are targets of the losses that have "
                               f"them ({', '.join(names_of_losses(targets=True))}); --loss {self.loss} has none: "
                               "drop them")
        for name in fields_with("penalty"):
            if getattr(self, name) != SETTINGS[name].default and loss.penalty_setting != name:
                users = [each for each in LOSSES.names if LOSSES.spec(each).penalty_setting == name]
                raise SettingError(name, f"--{flag(name)} weighs the penalty of --loss {' or '.join(users)} only: "
                                   "drop it or use that loss")

    def validate_stabilisers(self) -> None:
        """The conditioning and stabiliser settings: known values, and combinations that make sense."""
        if not 0.0 <= self.ema < 1.0:
            raise SettingError("ema", f"--ema must lie in [0, 1) (e.g. 0.999; 0 = off), got {self.ema}")
        unknown = [name for name in self.augmentations() if name not in AUGMENTATIONS]
        if unknown:
            raise SettingError("diffaugment", f"unknown --diffaugment policy '{unknown[0]}': use a comma-separated "
                               f"list of {', '.join(AUGMENTATIONS)}")
        if self.classes and not self.conditional:
            raise SettingError("classes", "--classes applies to --conditional runs only: drop it or add --conditional")

    def metrics(self) -> list[str]:
        """The metrics --eval-every measures, in the order given: "fid, kid" -> ["fid", "kid"]."""
        return [name.strip() for name in self.eval_metrics.split(",") if name.strip()]

    def augmentations(self) -> list[str]:
        """The DiffAugment policies, in the order given: "translation,color" -> ["translation", "color"]."""
        return [name.strip() for name in self.diffaugment.split(",") if name.strip()]

    def resolved(self, loss: Any) -> TrainConfig:
        """A copy with every "follow the loss" default made concrete from the run's loss (a models.losses.Loss: its
        n_critic and betas; what config.json records); a SettingError for a setting this loss does not read."""
        self.check_loss_settings(loss)
        return dataclasses.replace(
            self, n_critic=self.n_critic or loss.n_critic, lr_g=self.lr_g or self.lr, lr_d=self.lr_d or self.lr,
            beta1=loss.betas[0] if self.beta1 == -1 else self.beta1,
            beta2=loss.betas[1] if self.beta2 == -1 else self.beta2,
            diffaugment=",".join(self.augmentations()))

    def over_saved(self, saved: TrainConfig, flags: Collection[str] | None = None) -> TrainConfig:
        """With --resume: this request over the run's saved config. A setting of the run that the request does not
        give is the saved one; `flags` names the settings given (the CLI's flags); None: those that differ from
        their defaults (Python and the notebooks). Settings of the invocation (the session role) are never inherited."""
        defaults = TrainConfig()
        if flags is None:
            flags = [name for name, value in dataclasses.asdict(self).items() if value != getattr(defaults, name)]
        requested = {name: getattr(self, name) for name in flags}
        inherited = {name: value for name, value in dataclasses.asdict(saved).items()
                     if name not in fields_with("session")}
        session = {name: getattr(self, name) for name in fields_with("session")}
        return dataclasses.replace(self, **{**inherited, **session, **requested})

    @classmethod
    def from_preset(cls, name: str, **settings: Any) -> TrainConfig:
        """A config from a named recipe (see presets.py), `settings` overriding it."""
        return cls(**{**preset_settings(name), **settings})

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any], **settings: Any) -> TrainConfig:
        """A config from the names in `namespace` that are settings, `settings` overriding them; other names are
        ignored. In a notebook, `TrainConfig.from_namespace(globals())` turns the parameters cell into the config,
        so a new knob there is one line. A value of the wrong type is a UserError naming it."""
        defaults = {spec.name: spec.default for spec in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - set(defaults))
        if unknown:
            raise UserError(f"unknown setting(s) {', '.join(unknown)}: use the names of TrainConfig's fields "
                            "(e.g. epochs, image_size)")
        values = {**{name: namespace[name] for name in defaults if name in namespace}, **settings}
        return cls(**{name: typed_setting(name, value, defaults[name]) for name, value in values.items()})


CHOICES = {spec.name: spec.metadata["choices"] for spec in dataclasses.fields(TrainConfig)
           if "choices" in spec.metadata}  # settings that take one of a few words


@cache
def fields_with(role: str, value: Any = None) -> tuple[str, ...]:
    """The settings that have `role` (see `setting`), or where given, that have it as `value` (fields_with("place",
    "folder")), in the order of TrainConfig's fields."""
    return tuple(spec.name for spec in dataclasses.fields(TrainConfig) if spec.metadata.get(role)
                 and value in (None, spec.metadata[role]))


def role_of(name: str, role: str) -> Any:
    """The value of one role of a setting: its limits, its place kind, its export format; None when it has none."""
    return SETTINGS[name].metadata.get(role)


def limits_of(name: str) -> tuple[float, float | None]:
    """(lowest, highest) of a number setting; highest None: no upper bound."""
    return role_of(name, "limits")


def help_of(name: str) -> str:
    """A setting's help text; for a setting that names a spec, followed by the names registered now (G's and D's
    with each spec's help)."""
    text = SETTINGS[name].metadata["help"]
    if name == "loss":
        return f"{text}: {LOSSES.listed()}"
    if name == "arch":
        return f"{text}: {', '.join(families())}"
    if name not in NAMED:
        return text
    registry = NAMED[name]
    choices = "; ".join(f"{choice}: {spec.help} ({spec.sizes_text()} pixels)"
                        for choice, spec in zip(registry.names, map(registry.spec, registry.names)))
    return f"{text}. {choices}"


def families() -> tuple[str, ...]:
    """What --arch names: the designs registered both as a G and as a D (built in: dcgan, resnet, mlp)."""
    return tuple(name for name in GENERATORS.names if name in DISCRIMINATORS.names)


def check_part_name(name: str, value: str) -> None:
    """A loss, G, D or family setting holds a name that can be registered, or an object's class; whether the name is
    registered is checked when the part is used (check_parts)."""
    if value == "" and name in NAMED:
        return
    if REGISTERED_NAME.fullmatch(value) or (name in PARTS and is_object_name(value) and len(value) <= 300):
        return
    shown = value if len(value) <= 60 else value[:57] + "..."
    names = ", ".join(families()) if name == "arch" else PARTS[name].listed()
    raise SettingError(name, f"--{flag(name)} '{shown}' is not a name: use one of {names}")


SETTINGS = {spec.name: spec for spec in dataclasses.fields(TrainConfig)}


def preset_settings(name: str) -> dict[str, Any]:
    """The settings of a preset (a copy); a UserError naming the presets for an unknown name."""
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}': use one of {', '.join(PRESETS)}")
    return dict(PRESETS[name][1])


def typed_setting(name: str, value: Any, default: Any) -> Any:
    """`value` as the type of the setting's default (whole numbers are taken for a float); a SettingError
    otherwise."""
    kind = type(default)
    wanted = {bool: (bool, "True or False"), int: (numbers.Integral, "a whole number"),
              float: (numbers.Real, "a number"), str: (str, "a string")}
    accepted, description = wanted[kind]
    if isinstance(value, accepted) and (kind is bool or not isinstance(value, bool)):
        try:
            return kind(value)
        except OverflowError:  # a whole number too large for a float
            raise SettingError(name, f"{name} = {shown_number(value)} is far too large") from None
    shown = shown_number(value) if isinstance(value, int) and not isinstance(value, bool) else repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    raise SettingError(name, f"{name} = {shown} is not {description} (e.g. {name} = {default!r})")


def names_of_losses(**facts: Any) -> list[str]:
    """The registered losses whose specs have these facts: names_of_losses(targets=True) -> ["bce", "lsgan", "r1"]."""
    return [name for name in LOSSES.names
            if all(getattr(LOSSES.spec(name), fact) == value for fact, value in facts.items())]


def flag(name: str) -> str:
    """The CLI flag of a config field: image_size -> image-size."""
    return name.replace("_", "-")
