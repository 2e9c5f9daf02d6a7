"""Pictures: drawing images from a generator and showing them.

    sampling  images from a generator (fixed noise, conditional labels), a run's G loaded from its checkpoint
    grids     many images in one PNG, and the cells back out of it
    plots     figures: training curves, progression, real vs generated, rows of images
    latent    walks through the latent space: interpolations, loops, single coordinates ranked by influence
    animation  GIFs: training as an animation of the epoch grids, loops through the latent space
    notebook  inline display in Jupyter, and a callback that shows each epoch's grid
    model_card  `dcgan export`: G's folder with a sample grid and a model card

May import: the shared top-level modules, data and models. Nothing of metrics or training.
"""
