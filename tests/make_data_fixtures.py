#!/usr/bin/python3
"""tests/make_data_fixtures.py: write the h5py data-set fixtures that tests/test_data.c reads.

Run with Debian's python3 (h5py, numpy):  /usr/bin/python3 tests/make_data_fixtures.py
It writes, the way a researcher would by hand with h5py:
  tests/fixtures/data_h5py_labels.h5   /X float32 (5, 3), /y int64 (5)
  tests/fixtures/data_h5py_targets.h5  /X float64 (4, 2), /y float32 (4, 2)
The values are exactly representable in float32; test_data.c holds the same
numbers, so the fixtures check the layout, the types and the row order.
"""
import os

import h5py
import numpy as np

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

X1 = np.array([[0.125, -2.5, 3.75],
               [1.5, 0.0625, -7.25],
               [-0.375, 4.5, 2.125],
               [6.0, -1.875, 0.5],
               [-3.25, 2.75, -0.625]], dtype=np.float32)
y1 = np.array([2, 0, 3, 1, 2], dtype=np.int64)

X2 = np.array([[2.385, -1.125],
               [0.5, 3.0],
               [-4.75, 1.0625],
               [7.5, -0.25]], dtype=np.float64)
y2 = np.array([[0.5, -1.25],
               [2.0, 0.375],
               [-3.5, 1.5],
               [0.0, -0.0625]], dtype=np.float32)

with h5py.File(os.path.join(here, "data_h5py_labels.h5"), "w") as f:
    f["X"] = X1
    f["y"] = y1
with h5py.File(os.path.join(here, "data_h5py_targets.h5"), "w") as f:
    f["X"] = X2
    f["y"] = y2
