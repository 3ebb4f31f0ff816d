"""The training loop and what it is made of: resume files, warm starts, recipes, augmentation, watched digits."""
