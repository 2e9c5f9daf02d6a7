"""Models: the networks, and the checkpoint files that hold them.

    dcgan        the DCGAN generator and discriminator (32, 64, 96, 128 pixels)
    resnet       the residual generator and dropout discriminator (the 96x96 anime recipe)
    mlp          the plain fully connected GAN
    conditional  class-conditional wrappers (CGAN)
    architectures  one spec per design of G and of D: sizes, settings read, help, how it is built
    losses       the GAN losses, one spec each: D's and G's loss, what D outputs, the optimiser defaults, penalty
    statistics   report(name, value): statistics reported by name from the step, a loss or a network
    standing     BatchNorm statistics of a G's own weights (the moving average's), recomputed from fixed noise
    parts        G, D and the loss of a run: built from their specs, or objects given; checked before use
    flops        multiply-adds and parameter counts
    checkpoint   writing and reading checkpoint files (weights_only), and the networks rebuilt from one
    contents     what a loaded checkpoint must hold: its config checked like the flags, bookkeeping, finite weights
    export       G alone as model.safetensors + config.json (the Hugging Face layout), written and checked on load
    runs         RunReference: the run sample, evaluate, nearest, export and the notebooks name, loaded in one way

May import: the shared top-level modules (config, presets, registry, checks, errors, files, lock, paths,
device). Nothing of data, pictures, metrics or training.
"""
