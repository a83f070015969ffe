"""scikit-learn's multilayer perceptrons, trained by sknn_tune's engine.

``sknn_tune.neural_network.MLPClassifier`` and ``MLPRegressor`` take scikit-learn's exact
constructor and give scikit-learn's numbers (on the CPU in float64, the same ``random_state``
trains the same network), so that switching is changing one import::

    from sknn_tune.neural_network import MLPClassifier  # was: from sklearn.neural_network ...

and add sknn_tune's ``device`` (the GPU) and ``dtype``, and fused search over them.
"""

from ._multilayer_perceptron import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
