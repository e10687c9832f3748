"""glocal: self-supervised global-local audio-visual video representation learning."""

__version__ = "0.1.0"
