"""Small real class-conditional generators of scikit-learn's digits: trainprove's offline default."""

__version__ = "0.1.0"
