"""Pictures: drawing images from a generator and showing them.

    sampling  images from a generator (fixed noise, conditional labels)
    grids     many images in one PNG, and the cells back out of it
    plots     figures: training curves, progression, real vs generated, rows of images
    latent    walks through the latent space: interpolations, loops, single coordinates ranked by influence
    animation  GIFs: training as an animation of the epoch grids, loops through the latent space
    notebook  inline display in Jupyter, and a callback that shows each epoch's grid
    messages  the package's messages in a notebook's words, and `%load_ext dcgan` showing them as one line
    model_card  the sample grid and the model card beside G in an export folder
    commands  `dcgan sample` and `dcgan export`: drawing from the run a RunReference names

May import: the shared top-level modules, data and models. Nothing of metrics or training.
"""
