"""Small real class-conditional generators of scikit-learn's digits: trainprove's offline default."""

__version__ = "0.1.0"

HOUSE_STYLES = {
    "digits-ddpm": "bold",
    "digits-cfg": "thin",
    "digits-vae": "rotated",
    "digits-gmm": "slant",
    "digits-gan": "blur",
}
"""Each generative model's house style (see `styles.py`): the look of the data it was trained on."""
