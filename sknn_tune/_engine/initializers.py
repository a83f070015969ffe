"""Weight initialiser registry: name -> function of (standard draws, fan_in, fan_out, activation).

Each function receives a callable returning uniform ``[0, 1)`` or standard normal draws of the
parameter's shape for every member (drawn from the member's own seed) and scales them. Biases start
at zero unless the initialiser is also in ``BIAS_INITIALIZERS``.
"""

import math

NORMAL_STD = 0.05  # Keras' RandomNormal default, the "small random numbers" of the tutorials


def _uniform(draw, limit):
    return (2.0 * draw("uniform") - 1.0) * limit


def _sklearn_bound(fan_in, fan_out, activation):
    # scikit-learn's MLP (_init_coef): Glorot's factor 6, 2 for the logistic sigmoid
    return math.sqrt((2.0 if activation == "sigmoid" else 6.0) / (fan_in + fan_out))


def _sklearn(draw, fan_in, fan_out, activation):
    return _uniform(draw, _sklearn_bound(fan_in, fan_out, activation))


INITIALIZERS = {
    "sklearn": _sklearn,
    "xavier_uniform": lambda draw, fan_in, fan_out, activation: _uniform(
        draw, math.sqrt(6.0 / (fan_in + fan_out))
    ),
    "xavier_normal": lambda draw, fan_in, fan_out, activation: draw("normal")
    * math.sqrt(2.0 / (fan_in + fan_out)),
    "he_uniform": lambda draw, fan_in, fan_out, activation: _uniform(draw, math.sqrt(6.0 / fan_in)),
    "he_normal": lambda draw, fan_in, fan_out, activation: draw("normal") * math.sqrt(2.0 / fan_in),
    "normal": lambda draw, fan_in, fan_out, activation: draw("normal") * NORMAL_STD,
}

# Initialisers that draw the biases too (same signature, the layer's fans); the others zero them.
BIAS_INITIALIZERS = {"sklearn": _sklearn}

# What init='auto' resolves to, by the activation's family: scikit-learn's MLP initialisation for
# every activation, measured to match or beat scikit-learn's default accuracy
# (benchmarks/bench_accuracy.py).
AUTO_INIT = {"he": "sklearn", "xavier": "sklearn"}
