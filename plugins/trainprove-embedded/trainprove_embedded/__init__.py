"""Small real class-conditional generators, offline: scikit-learn's digits (trainprove's default) and
Fashion-MNIST in colour."""

__version__ = "0.1.0"

HOUSE_STYLES = {
    "digits-ddpm": "bold",
    "digits-cfg": "thin",
    "digits-vae": "rotated",
    "digits-gmm": "slant",
    "digits-gan": "blur",
    "fashion-ddpm": "neon",
    "fashion-cfg": "pastel",
    "fashion-vae": "sepia",
    "fashion-gmm": "sunset",
    "fashion-gan": "grain",
}
"""Each generative model's house style (`styles.py`, `fashion.py`): the look of the data it was trained on."""
