"""Weight initialiser registry: name -> function of (standard draws, fan_in, fan_out).

Each function receives a callable returning uniform ``[0, 1)`` or standard normal draws of the weight
shape for every member (drawn from the member's own seed) and scales them. Biases start at zero.
"""

import math

NORMAL_STD = 0.05  # Keras' RandomNormal default, the "small random numbers" of the tutorials


def _uniform(draw, limit):
    return (2.0 * draw("uniform") - 1.0) * limit


INITIALIZERS = {
    "xavier_uniform": lambda draw, fan_in, fan_out: _uniform(
        draw, math.sqrt(6.0 / (fan_in + fan_out))
    ),
    "xavier_normal": lambda draw, fan_in, fan_out: draw("normal")
    * math.sqrt(2.0 / (fan_in + fan_out)),
    "he_uniform": lambda draw, fan_in, fan_out: _uniform(draw, math.sqrt(6.0 / fan_in)),
    "he_normal": lambda draw, fan_in, fan_out: draw("normal") * math.sqrt(2.0 / fan_in),
    "normal": lambda draw, fan_in, fan_out: draw("normal") * NORMAL_STD,
}

# What init='auto' resolves to, by the activation's family.
AUTO_INIT = {"he": "he_uniform", "xavier": "xavier_uniform"}
