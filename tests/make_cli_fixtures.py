#!/usr/bin/python3
"""tests/make_cli_fixtures.py: small HDF5 files for tests/test_cli.sh, written by h5py.

    tests/fixtures/checkpoint_v2.h5       a valid 2-3-2 checkpoint except
                                          format_version = 2 (must be refused)
    tests/fixtures/checkpoint_bad_shape.h5  /model/layer1/weight is (2, 4),
                                          layer_sizes says (2, 3)
    tests/fixtures/other_format.h5        format "effdim.example" version 1 with
                                          root attributes and two data sets: what
                                          a format effdim inspect has never seen
                                          looks like

Run: /usr/bin/python3 tests/make_cli_fixtures.py
"""

import os

import h5py
import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def checkpoint(path, version=1, w1_shape=(2, 3)):
    rng = np.random.default_rng(2385)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "effdim.checkpoint"
        f.attrs["format_version"] = np.int64(version)
        g = f.create_group("model")
        g.attrs["layer_sizes"] = np.array([2, 3, 2], dtype=np.int64)
        g.attrs["activations"] = np.array(["tanh", "identity"], dtype=h5py.string_dtype())
        g.attrs["loss"] = "cross_entropy"
        g["layer0/weight"] = rng.standard_normal((3, 2))
        g["layer0/bias"] = rng.standard_normal(3)
        g["layer1/weight"] = rng.standard_normal(w1_shape)
        g["layer1/bias"] = rng.standard_normal(2)


def other_format(path):
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "effdim.example"
        f.attrs["format_version"] = np.int64(1)
        f.attrs["checkpoint"] = "model.h5"
        f.attrs["seed"] = np.int64(7)
        f.attrs["tol"] = 2.385e-6
        f["spectrum/eigenvalues"] = np.linspace(3.5, 0.25, 12)
        f["effdim/n_eff"] = np.arange(5, dtype=np.float64)


def main():
    checkpoint(os.path.join(HERE, "checkpoint_v2.h5"), version=2)
    checkpoint(os.path.join(HERE, "checkpoint_bad_shape.h5"), w1_shape=(2, 4))
    other_format(os.path.join(HERE, "other_format.h5"))


if __name__ == "__main__":
    main()
