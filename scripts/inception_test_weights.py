"""The deterministic stand-in weights of pytorch-fid's FID Inception, shared by
scripts/make-inception-fixture and (re-implemented, same formula) by the Swift test
InceptionFixtureTests.testWeights. Not real Inception weights: they only make the two
implementations compute the same function, with activations of order 1.

For a tensor named NAME with n elements, element i is drawn from
    h = FNV-1a-64(NAME as UTF-8)
    z = splitmix64(h + i * 0x9E3779B97F4A7C15)      (all mod 2^64)
    u = (z >> 11) / 2^53                              (uniform in [0, 1), double)
and becomes, in double and then rounded to float32:
    *.conv.weight         (2u - 1) * sqrt(6 / fan_in)      fan_in = in * kh * kw (He-uniform)
    *.bn.weight           0.8 + 0.4u
    *.bn.bias             0.1 * (2u - 1)
    *.bn.running_mean     0.1 * (2u - 1)
    *.bn.running_var      0.8 + 0.4u
    fc.weight / fc.bias   0.01 * (2u - 1)                  (unused by pool3)
"""

import numpy as np

GOLDEN = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for byte in name.encode("utf-8"):
        h = ((h ^ byte) * 0x100000001B3) & MASK
    return h


def uniforms(name, n):
    with np.errstate(over="ignore"):
        i = np.arange(n, dtype=np.uint64)
        z = np.uint64(fnv1a64(name)) + i * np.uint64(GOLDEN)
        z = z + np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def tensor(name, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    u = uniforms(name, n)
    if name.endswith("conv.weight"):
        fan_in = int(np.prod(shape[1:]))
        v = (2 * u - 1) * np.sqrt(6.0 / fan_in)
    elif name.endswith("bn.weight") or name.endswith("bn.running_var"):
        v = 0.8 + 0.4 * u
    elif name.endswith("bn.bias") or name.endswith("bn.running_mean"):
        v = 0.1 * (2 * u - 1)
    else:
        v = 0.01 * (2 * u - 1)
    return v.astype(np.float32).reshape(shape)
