"""The class's own handwriting: storage, data for training and scoring, export, scores."""
