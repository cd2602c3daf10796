"""A5, hidden: closed-form counts of one layer on layers the student has not seen.

These tests never ship. Random configurations (not in any fixture, so a table of stored
answers cannot pass) against the library's layers, built here by the test, never inside
the student's code; bad groups; the int and pair forms of the arguments; Python ints.
"""
import numpy as np
import pytest

import tinynets as tn
from tinynets.nn import counting

pytestmark = [pytest.mark.A5, pytest.mark.hidden, pytest.mark.numpy_only]


def _random_convs(n=40, seed=5):
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < n:
        g = int(rng.choice([1, 1, 2, 3, 4]))
        c_in, c_out = g * int(rng.integers(1, 7)), g * int(rng.integers(1, 7))
        if rng.random() < 0.25:                             # depthwise, sometimes a multiplier
            g = c_in = int(rng.integers(2, 9))
            c_out = c_in * int(rng.choice([1, 2]))
        kh, kw = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        s, ph, pw = int(rng.integers(1, 4)), int(rng.integers(0, 4)), int(rng.integers(0, 4))
        H, W = int(rng.integers(kh, 40)), int(rng.integers(kw, 40))
        cases.append((c_in, c_out, (kh, kw), s, (ph, pw), g, bool(rng.random() < 0.5), H, W))
    return cases


def test_conv_counts_random_layers(a5):
    for c_in, c_out, k, s, p, g, bias, H, W in _random_convs():
        conv = tn.Conv2d(c_in, c_out, k, stride=s, padding=p, groups=g, bias=bias)
        _, _, OH, OW = conv.output_shape((1, c_in, H, W))
        want_params, want_macs = tn.count_params(conv), conv.macs((1, c_in, H, W))
        where = f"C_in={c_in}, C_out={c_out}, kernel {k}, stride {s}, padding {p}, groups {g}, bias {bias}, input {H}x{W}"
        with a5.by_hand("the conv counts", own="counting.py"):
            oh = counting.conv_output_size(H, k[0], s, p[0])
            ow = counting.conv_output_size(W, k[1], s, (p[1], p[1]))
            params = counting.conv2d_params(c_in, c_out, k, g, bias)
            macs = counting.conv2d_macs(c_in, c_out, k, (OH, OW), g)
        a5.expect_equal(f"conv_output_size along H ({where})", oh, OH)
        a5.expect_equal(f"conv_output_size along W ({where})", ow, OW)
        a5.expect_equal(f"conv2d_params ({where})", params, want_params)
        a5.expect_equal(f"conv2d_macs ({where})", macs, want_macs)


def test_conv_counts_int_and_pair_forms(a5):
    """An int kernel or output size means a square; NumPy integers in, Python ints out."""
    with a5.by_hand("the conv counts", own="counting.py"):
        got = [counting.conv2d_params(6, 12, 3, 3, True), counting.conv2d_params(6, 12, (3, 3), 3, True),
               counting.conv2d_macs(6, 12, 5, 7, 2), counting.conv2d_macs(6, 12, (5, 5), (7, 7), 2),
               counting.conv2d_macs(np.int64(8), np.int64(8), np.int64(3), np.int64(4), np.int64(8)),
               counting.conv_output_size(np.int64(224), np.int64(3), np.int64(2), np.int64(1)),
               counting.conv2d_macs(4, 6, (1, 3), (5, 2))]
    want = [12 * 2 * 9 + 12, 12 * 2 * 9 + 12, 12 * 3 * 25 * 49, 12 * 3 * 25 * 49, 8 * 9 * 16, 112,
            6 * 4 * 3 * 10]
    for i, (g, w) in enumerate(zip(got, want)):
        a5.expect_equal(f"case {i} of the int/pair forms", g, w)


def test_conv_output_size_drops_a_partial_window(a5):
    with a5.by_hand("conv_output_size", own="counting.py"):
        got = [counting.conv_output_size(8, 3, 3), counting.conv_output_size(7, 7, 1),
               counting.conv_output_size(10, 4, 3, (0, 2)), counting.conv_output_size(1, 1, 5)]
    for case, g, w in zip(["8, k3 s3", "7, k7", "10, k4 s3 pad (0, 2)", "1, k1 s5"], got, [2, 1, 3, 1]):
        a5.expect_equal(f"conv_output_size({case})", g, w)


def test_conv_counts_reject_bad_groups(a5):
    for fn, args in [(counting.conv2d_params, (6, 4, 3, 4)), (counting.conv2d_params, (6, 9, 3, 2)),
                     (counting.conv2d_macs, (6, 9, 3, 5, 2)), (counting.conv2d_macs, (5, 10, 1, 5, 2))]:
        try:
            with a5.by_hand(fn.__name__, own="counting.py"):
                fn(*args)
        except ValueError:
            continue
        raise AssertionError(f"{fn.__name__}{args}: groups={args[3] if fn is counting.conv2d_params else args[4]} "
                             "does not divide both channel counts, so it should raise ValueError")


def test_bn_linear_counts_random_layers(a5):
    rng = np.random.default_rng(11)
    for _ in range(20):
        n_in, n_out, bias = int(rng.integers(1, 3000)), int(rng.integers(1, 1500)), bool(rng.random() < 0.5)
        c = int(rng.integers(1, 2000))
        want = (tn.count_params(tn.Linear(n_in, n_out, bias=bias)),
                tn.Linear(n_in, n_out, bias=bias).macs((1, n_in)), tn.count_params(tn.BatchNorm2d(c)))
        with a5.by_hand("the BN and linear counts", own="counting.py"):
            got = (counting.linear_params(n_in, n_out, bias), counting.linear_macs(n_in, n_out),
                   counting.batchnorm2d_params(c))
        a5.expect_equal(f"linear_params({n_in}, {n_out}, bias={bias})", got[0], want[0])
        a5.expect_equal(f"linear_macs({n_in}, {n_out})", got[1], want[1])
        a5.expect_equal(f"batchnorm2d_params({c})", got[2], want[2])
    with a5.by_hand("the BN and linear counts", own="counting.py"):
        got = (counting.linear_params(np.int64(1280), np.int64(1000)), counting.linear_macs(np.int64(3), 2),
               counting.batchnorm2d_params(np.int64(7)), counting.linear_params(5, 7, False))
    for what, g, w in zip(["linear_params(1280, 1000) (bias by default)", "linear_macs(3, 2)",
                           "batchnorm2d_params(7)", "linear_params(5, 7, bias=False)"],
                          got, [1_281_000, 6, 14, 35]):
        a5.expect_equal(what + ", NumPy ints in", g, w)
