"""Are a class-conditional digits model's samples of the asked-for class?

Draws ``--num_per_class`` samples of every class from a trained conditional run
(``data.conditional=True``), labels them with a scikit-learn classifier trained on the
digits training split (an RBF support vector machine on the 64 pixel levels; its accuracy
on the test split is reported next to it), and prints one JSON line: the rate at which the
classifier returns the asked-for class, overall and per class, and the conditional and
(when ``--unconditional`` names the same model's unconditional run) the unconditional test
NLL in bits/dim.

    python -m experiments.class_samples --workdir runs/x_conditional [--unconditional runs/x]
"""
from __future__ import annotations

import argparse
import json

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.evaluate import evaluate_run
from experiments.load import load_run


def digits_classifier(dataset):
    """An RBF SVM on the flattened training images (levels 0..16) and its test accuracy."""
    from sklearn.svm import SVC

    flat = lambda x: np.asarray(x).reshape(len(x), -1).astype(np.float64)
    clf = SVC(gamma=0.001, C=10.0).fit(flat(dataset.train), dataset.train_labels)
    accuracy = float(np.mean(clf.predict(flat(dataset.test)) == dataset.test_labels))
    return (lambda x: clf.predict(flat(x))), accuracy


def class_sample_rates(workdir: str, num_per_class: int = 100, seed: int = 0,
                       temperature: float = 1.0) -> dict:
    """Samples ``num_per_class`` images of every class and classifies them (module
    docstring); returns the record."""
    run = load_run(workdir)
    if not getattr(run.dataset, "is_conditional", False):
        raise ValueError(f"{workdir!r} is not a conditional run (config.data.conditional)")
    classify, accuracy = digits_classifier(run.dataset)
    k = run.dataset.num_classes
    labels = jnp.repeat(jnp.arange(k), num_per_class)  # [k * n]
    graphdef, state = nnx.split(run.model)
    extra = {} if temperature == 1.0 else {"temperature": temperature}
    sample = jax.jit(lambda s, key, y: nnx.merge(graphdef, s).sample(key, y.shape[0],
                                                                      context=y, **extra))
    samples = run.preprocessing.to_data(sample(state, jax.random.key(seed), labels))
    predicted = classify(samples)
    hits = predicted == np.asarray(labels)
    per_class = {int(c): float(hits[np.asarray(labels) == c].mean()) for c in range(k)}
    return dict(workdir=workdir, model=run.settings.model_name, num_per_class=num_per_class,
                temperature=temperature,
                classifier="sklearn SVC(rbf, gamma=0.001, C=10) on digits train",
                classifier_test_accuracy=accuracy, rate_asked_for_class=float(hits.mean()),
                rate_per_class=per_class, min_class_rate=min(per_class.values()),
                conditional_test_bits_per_dim=evaluate_run(run)["bits_per_dim"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--unconditional", default=None)
    parser.add_argument("--num_per_class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="sampling temperature (models whose sample() takes one)")
    args = parser.parse_args(argv)
    record = class_sample_rates(args.workdir, args.num_per_class, args.seed,
                                args.temperature)
    if args.unconditional:
        record["unconditional_workdir"] = args.unconditional
        record["unconditional_test_bits_per_dim"] = evaluate_run(
            load_run(args.unconditional))["bits_per_dim"]
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
