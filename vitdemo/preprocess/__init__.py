"""Any drawing, scan or photo -> the 28x28 model input, with its stages."""
