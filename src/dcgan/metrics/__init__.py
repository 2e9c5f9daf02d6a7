"""Metrics: how good a generator is, in numbers.

    evaluate          a run's chosen metrics in one feature space (`dcgan evaluate`, --eval-every)
    metric            what a metric is: named values from real and generated features (and class probabilities)
    fid, kid          Frechet and kernel distances between two feature sets
    precision_recall  k-nearest-neighbour precision and recall
    inception_score   the Inception Score of the generated images' class probabilities
    inception         the standard Inception-v3 FID features
    classifier        a small CNN trained on a labelled dataset, as a feature space
    face_rate         the share of images in which a face detector finds a face
    nearest           the memorization check: generated images against their nearest training images

May import: the shared top-level modules, data, models and pictures. Nothing of training.
"""
