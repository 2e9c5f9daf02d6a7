"""Data: from a dataset name or a folder to batches of real images on the training device.

    datasets    the named datasets, one spec each: source, classes, test split, face kind
    sources     where images come from (a named dataset's files, or any folder)
    decode      files to fixed-size uint8 arrays in parallel, bad files skipped and counted
    cache       the decoded uint8 cache on disk (memory-mapped, checksummed), ImageData, a run's real images
    transforms  square crops, channels, [0, 255] <-> [-1, 1], flips
    batches     each epoch's order and flips, and batches gathered on the device or streamed
    synthetic   small generated images of shapes, for tests and smoke runs
    faces       face detectors (anime, human)
    prepare     `dcgan prepare`: training folders of faces cropped out of raw pictures

May import: the shared top-level modules (config, checks, errors, files, lock, paths, device). Nothing of
models, pictures, metrics or training.
"""
