"""Synthetic handwriting: drawn-digit check sets, training styles, digits on paper."""
