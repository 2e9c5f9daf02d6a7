"""Metrics: how good a generator is, in numbers.

    features          feature spaces, and a run's chosen metrics in one of them (the Evaluator of --eval-every)
    evaluate          `dcgan evaluate`: the chosen metrics, face rate and class accuracy of a run, with their scale
    recorded          the numbers recorded for the README's runs, shown beside a run's in the same feature space
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
