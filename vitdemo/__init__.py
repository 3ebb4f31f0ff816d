"""vitdemo: a Vision Transformer and a CNN side by side on MNIST and Fashion-MNIST.

Everything here runs without Streamlit; only `vitdemo.ui` imports it.
"""

__version__ = "0.1.0"
